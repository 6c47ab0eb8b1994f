"""The default retry schedule lasts as long as ``max_age`` says, with the wait capped."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from gateway.config import RetrySettings
from gateway.retry import RetryPolicy, retry_after_seconds


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


def test_the_repeats_of_one_unsure_attempt_back_off_with_the_cap_and_jitter() -> None:
    """A flush that keeps failing repeats the same attempt (``attempts`` stays 1): the
    waits double to the hour, not every second or two for 2 days."""
    policy = RetryPolicy()
    times = [0.0]
    while (at := policy.resume_at(1, 0.0, times[-1], repeats=len(times) - 1)) is not None:
        times.append(at)
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert waits[0] <= 1 + policy.jitter  # the first repeat still comes quickly
    assert all(b > a for a, b in itertools.pairwise(waits[:10])), "each waits longer"
    assert max(waits) <= 3600 + policy.jitter
    assert policy.max_age - 3600 - policy.jitter <= times[-1] <= policy.max_age
    assert len(times) < 100


def test_configured_defaults_are_the_policy_defaults() -> None:
    r, p = RetrySettings(), RetryPolicy()
    assert (r.max_attempts, r.max_age, r.initial, r.maximum, r.multiplier, r.jitter,
            r.max_retry_after) == (p.max_attempts, p.max_age, p.initial, p.maximum,
                                   p.multiplier, p.jitter, p.max_retry_after)


def test_retry_after_delays_the_next_attempt_up_to_its_cap() -> None:
    policy = RetryPolicy(initial=1.0, jitter=0.0, max_retry_after=600.0)
    assert policy.next_attempt_at(1, 0.0, 100.0) == 101.0
    assert policy.next_attempt_at(1, 0.0, 100.0, retry_after=30.0) == 130.0
    assert policy.next_attempt_at(1, 0.0, 100.0, retry_after=0.5) == 101.0  # never sooner
    assert policy.next_attempt_at(1, 0.0, 100.0, retry_after=86400.0) == 700.0
    # a wait beyond max_age gives up, as any other would
    assert RetryPolicy(max_age=60.0).next_attempt_at(1, 0.0, 10.0, retry_after=120.0) is None


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 7 ", now) == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True),
                               now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True),
                               now) == 0.0  # a date in the past: at once
    assert retry_after_seconds("Sat, 01 Mar 2025 12:00:30 -0000", now) == 30.0  # naive: UTC
    for nothing in (None, "", "  ", "soon", "-5", "1.5", "\u00b2"):
        assert retry_after_seconds(nothing, now) is None, nothing


def test_retry_after_a_date_is_measured_from_now_by_default() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55.0 <= (retry_after_seconds(soon) or 0.0) <= 60.0


def test_the_waits_double_up_to_the_cap_and_each_gets_its_own_jitter() -> None:
    policy = RetryPolicy(initial=1.0, multiplier=2.0, maximum=60.0, jitter=5.0)
    for attempts, base in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (1000, 60.0)):
        delays = [policy.delay(attempts) for _ in range(200)]
        assert all(base <= d <= base + 5.0 for d in delays), (attempts, min(delays), max(delays))
        assert max(delays) - min(delays) > 2.5, "no jitter: failures at once retry at once"
