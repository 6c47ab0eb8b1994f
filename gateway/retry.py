"""The retry policy: one place decides when a failed delivery is tried again.

The delays come from tenacity's wait strategies (exponential with jitter);
the decision is persisted as the delivery's ``next_attempt_at``, so a
restart continues the schedule instead of starting it over. Transports
never sleep: they raise TransientError or PermanentError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import tenacity


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again and when to give up, for one partner.

    The defaults keep trying for ``max_age`` (2 days): the waits double up to
    an hour, and 100 attempts take longer than that.

    :param max_attempts: attempts in all, the first included.
    :param max_age: seconds after the first attempt after which no new one starts.
    :param initial: the first delay in seconds, doubled (``multiplier``) each time.
    :param maximum: the longest delay in seconds.
    :param jitter: up to this many seconds are added at random.
    :param max_retry_after: the longest wait a partner's ``Retry-After`` imposes;
        a longer one is cut to this.
    """

    max_attempts: int = 100
    max_age: float = 2 * 86400
    initial: float = 1.0
    maximum: float = 3600.0
    multiplier: float = 2.0
    jitter: float = 1.0
    max_retry_after: float = 3600.0

    def _wait(self) -> tenacity.wait.wait_base:
        return tenacity.wait_exponential(
            multiplier=self.initial, exp_base=self.multiplier, max=self.maximum
        ) + tenacity.wait_random(0, self.jitter)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempts
        return float(self._wait()(state))

    def next_attempt_at(self, attempts: int, first_attempt_at: float, now: float,
                        retry_after: float | None = None) -> float | None:
        """When to try next after ``attempts`` failures, or ``None`` to give up.

        :param retry_after: seconds the partner asked us to wait (capped by
            ``max_retry_after``): the next attempt is no earlier than that.
        """
        if attempts >= self.max_attempts:
            return None
        delay = self.delay(attempts)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        at = now + delay
        if at - first_attempt_at > self.max_age:
            return None
        return at

    def resume_at(self, attempts: int, first_attempt_at: float, now: float,
                  repeats: int = 0) -> float | None:
        """When to repeat an attempt whose outcome is unknown, or ``None`` to give up.

        The attempt is the same one again, so only ``max_age`` limits it; it is
        not counted, so the delay grows with its ``repeats`` instead: the first
        waits as a retry after ``attempts`` failures would, each further one
        twice as long, up to ``maximum`` (plus the jitter).

        :param repeats: how often this attempt was unsure before.
        """
        at = now + self.delay(attempts + repeats)
        return None if at - first_attempt_at > self.max_age else at

    def why_not(self, attempts: int) -> str:
        """Why :meth:`next_attempt_at` gave up, for the journal."""
        if attempts >= self.max_attempts:
            return f"retries exhausted after {attempts} attempts"
        return f"maximum age of {self.max_age:.0f}s reached after {attempts} attempts"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds an HTTP ``Retry-After`` header asks for, or ``None`` if it says nothing valid.

    :param value: the header: delay-seconds (``"120"``) or an HTTP date; a date in
        the past means ``0.0``.
    :param now: the time a date is measured from (default: the current time, UTC).
    :return: the seconds to wait, ``None`` for a missing, empty or malformed header.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
