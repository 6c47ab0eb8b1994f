"""The default retry schedule lasts as long as ``max_age`` says, with the wait capped."""

from __future__ import annotations

import itertools

from gateway.config import RetrySettings
from gateway.retry import RetryPolicy


def _schedule(policy: RetryPolicy) -> list[float]:
    """The times of every attempt a delivery that always fails gets, from 0."""
    times = [0.0]
    while (at := policy.next_attempt_at(len(times), 0.0, times[-1])) is not None:
        times.append(at)
    return times


def test_default_schedule_spans_max_age_with_waits_capped_at_an_hour() -> None:
    policy = RetryPolicy()
    times = _schedule(policy)
    waits = [b - a for a, b in itertools.pairwise(times)]
    # it gives up because of max_age (2 days), not after a few minutes of attempts
    assert policy.max_age - 3600 - policy.jitter <= times[-1] <= policy.max_age
    assert len(times) < policy.max_attempts
    assert max(waits) <= 3600 + policy.jitter
    assert waits[0] <= 1 + policy.jitter  # the first retry still comes quickly
    assert policy.why_not(len(times)).startswith("maximum age")


def test_configured_defaults_are_the_policy_defaults() -> None:
    r, p = RetrySettings(), RetryPolicy()
    assert (r.max_attempts, r.max_age, r.initial, r.maximum, r.multiplier, r.jitter) == (
        p.max_attempts, p.max_age, p.initial, p.maximum, p.multiplier, p.jitter)
