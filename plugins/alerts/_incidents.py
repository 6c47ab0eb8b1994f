"""Incidents: many alerts of one cause told as one, with summaries and an end.

An outbox outage fails every attempt of every delivery to a partner; a
person needs to hear of the outage, of how big it grows and of its end, not
of each attempt. Alerts are grouped by their :class:`Key` (the event kind,
the partner and the fault with ids and numbers taken out):

- the first ``burst`` alerts of an incident are logged as they come;
- the others are counted and summarised: at most once per ``window`` at
  first, then the wait between summaries doubles, up to ``longest`` (an
  outage of two days is told in about a dozen lines, not once per attempt);
- an incident ends once the partner has worked again (:meth:`Incidents.resolve`)
  for a ``window`` without failing (a partner that fails now and then between
  successes, flapping, stays one incident), or after a ``window`` without a
  new alert, counted from the time its last
  alert said the next one would come at the latest (a failed attempt names
  its next attempt, an hour later at most by default: one delivery retried
  for hours is one incident); its next alert opens a new one. A state said
  once (``held``: a pause, a disk low on space) is not ended by quiet: only by
  :meth:`Incidents.resolve` when its end is said.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: What varies between alerts of one cause: references, ids, counts.
_VARYING = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d+")
#: Ids named in a summary, at most.
_NAMED = 10


def fault_of(text: str) -> str:
    """``text`` with references and numbers taken out: the same for every alert of one cause."""
    return _VARYING.sub("#", text)[:200]


@dataclass(frozen=True, slots=True)
class Key:
    """What makes alerts one incident."""

    kind: str
    partner: str | None
    fault: str


@dataclass(slots=True)
class _Incident:
    opened: float
    last: float
    every: float  # the wait between summaries now
    expected: float = 0.0  # the next alert is due by then (0: none announced)
    logged: int = 0
    counted: int = 0  # alerts since the last line, not logged one by one
    total: int = 0
    ids: list[int] = field(default_factory=list)  # of the counted alerts, each once
    unnamed: bool = False  # a counted alert's id is not among them (too many)
    summary_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    works_since: float | None = None  # the partner took a delivery then, and has not failed since
    end_timer: asyncio.TimerHandle | None = None
    ongoing: bool = False  # a partner's failure that may go on (not a verdict on one message)
    held: bool = False  # a state said once, open until resolved (quiet does not end it)
    ended_how: str = "works again"  # how its end is said (resolve)
    example: str = ""  # the last alert's fault, as said
    varied: bool = False  # an earlier alert's fault was said otherwise (another number)

    def fault(self, key: Key) -> str:
        """The fault to name in a summary: as the alerts said it, not as the key groups it."""
        if not self.example:
            return key.fault
        return f"the last: {self.example}" if self.varied else self.example


class Incidents:
    """Open incidents and what has been said of them."""

    def __init__(self, log: logging.Logger, *, window: float = 60.0, burst: int = 3,
                 longest: float = 4 * 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """:param window: the first wait between summaries, and the quiet that ends an incident.
        :param burst: alerts of an incident logged one by one before they are counted.
        :param longest: the longest wait between summaries, which doubles from ``window``."""
        self._log = log
        self.window = window
        self.burst = burst
        self.longest = longest
        self._clock = clock
        self._open: dict[Key, _Incident] = {}

    def alert(self, key: Key, text: str, ref: int | None = None,
              next_in: float | None = None, fault: str = "", *, ongoing: bool = False,
              held: bool = False) -> None:
        """One alert of incident ``key``: log ``text`` or count it towards a summary.

        :param fault: the alert's fault as said (``key.fault`` is it with the numbers
            taken out); summaries name the last one.
        :param next_in: seconds until the cause alerts again if it persists (a failed
            attempt's next attempt); the incident stays open that long, plus ``window``.
        :param ongoing: the cause is a partner's failure that may go on (failing attempts),
            not a verdict on one message (a rejection): :meth:`stop` says it is open.
        :param held: the cause is a state said once (a pause): quiet does not end the
            incident, only :meth:`resolve`; with ``ongoing``, it is open at the stop.
        """
        self.sweep()
        now = self._clock()
        incident = self._open.get(key)
        if incident is not None and incident.works_since is not None:  # it flaps: one incident
            incident.works_since = None
            _cancel(incident.end_timer)
            incident.end_timer = None
        if (incident is not None and not incident.counted and not incident.held
                and now - max(incident.last, incident.expected) > self.window):
            self._close(key, incident)
            incident = None
        if incident is None:
            incident = self._open[key] = _Incident(opened=now, last=now, every=self.window,
                                                   summary_at=now, ongoing=ongoing, held=held)
        incident.last = now
        if incident.total and fault != incident.example:
            incident.varied = True
        incident.example = fault
        if next_in is not None:
            incident.expected = max(incident.expected, now + max(next_in, 0.0))
        incident.total += 1
        if incident.logged < self.burst:
            incident.logged += 1
            more = " (more like this are summarised)" if incident.logged == self.burst else ""
            self._log.warning("%s%s", text, more)
            return
        incident.counted += 1
        if ref is not None and ref not in incident.ids:
            if len(incident.ids) < _NAMED:
                incident.ids.append(ref)
            else:
                incident.unnamed = True
        if now - incident.summary_at >= incident.every:
            self._summarise(key)
        elif incident.timer is None:
            incident.timer = _later(incident.summary_at + incident.every - now,
                                    lambda: self._summarise(key))

    def resolve(self, partner: str | None, kinds: frozenset[str],
                how: str = "works again") -> None:
        """``partner`` works again (``None``: what is no partner's, the store): its incidents
        of ``kinds`` end once it has worked for a ``window`` without failing (:meth:`sweep`),
        saying ``how`` and how long they lasted."""
        now = self._clock()
        for key, incident in self._open.items():
            if key.partner == partner and key.kind in kinds and incident.works_since is None:
                incident.works_since, incident.ended_how = now, how
                incident.end_timer = _later(self.window, self.sweep)

    def sweep(self) -> None:
        """End the incidents whose partner has worked for a ``window`` without failing (the
        daemon's timers call this; so does every alert)."""
        now = self._clock()
        for key, incident in list(self._open.items()):
            if incident.works_since is not None and now - incident.works_since >= self.window:
                self._works_again(key, incident, incident.works_since)

    def stop(self) -> None:
        """The daemon stops: say what the open incidents hold, for their state ends here.

        Alerts counted since the last summary are summarised; an incident
        whose partner works again ends as :meth:`sweep` ends it, however short
        the time since; a partner's ongoing failure whose cause may still be
        there (its last alert, or the next alert it announced, is less than a
        ``window`` ago, or it is a ``held`` state not resolved) says it is open
        at the stop, how long it lasted and how many alerts it had. Others
        (quarantined inputs, rejections: verdicts on one message, not a state of
        the partner) end quietly, each told already.
        """
        now = self._clock()
        for key, incident in list(self._open.items()):
            if incident.works_since is not None:
                self._works_again(key, incident, incident.works_since)
                continue
            self._summarise(key)
            if incident.ongoing and (incident.held or now - max(incident.last, incident.expected)
                                     <= self.window):
                self._end(key, incident, f"open at the stop, after {span(now - incident.opened)}")
            else:  # over, or no failure that goes on: it ends quietly, as at its next alert
                self._close(key, incident)

    def _works_again(self, key: Key, incident: _Incident, since: float) -> None:
        """End ``key``'s incident: its partner has worked since ``since``."""
        self._summarise(key, until=since)
        self._end(key, incident, f"{incident.ended_how} after {span(since - incident.opened)}")

    def _end(self, key: Key, incident: _Incident, how: str) -> None:
        """Say that ``key``'s incident ends (``how``) and forget it."""
        # Worth a warning only when alerts were held back: otherwise each was told already.
        level = logging.WARNING if incident.logged >= self.burst else logging.INFO
        self._log.log(level, "%s%s: %s, %d in all%s", key.kind,
                      f" for {key.partner}" if key.partner else "", how, incident.total,
                      f" ({fault})" if (fault := incident.fault(key)) else "")
        self._close(key, incident)

    def _summarise(self, key: Key, until: float | None = None) -> None:
        """Say how many alerts of ``key`` were counted since the last summary, if any.

        :param until: the time the summary covers up to (default: now).
        """
        incident = self._open.get(key)
        if incident is None:
            return
        if incident.timer is not None:
            incident.timer.cancel()
            incident.timer = None
        if not incident.counted:
            return
        now = self._clock() if until is None else until
        named = ", ".join(map(str, incident.ids))
        if incident.unnamed:
            named += ", …"
        noun = "messages" if key.kind.startswith("message.") else "deliveries"
        self._log.warning("%s%s: %d more in the last %s%s%s", key.kind,
                          f" for {key.partner}" if key.partner else "", incident.counted,
                          span(now - incident.summary_at), f" ({noun} {named})" if named else "",
                          f": {fault}" if (fault := incident.fault(key)) else "")
        incident.counted, incident.ids, incident.unnamed, incident.summary_at = 0, [], False, now
        incident.every = min(incident.every * 2, max(self.longest, self.window))

    def _close(self, key: Key, incident: _Incident) -> None:
        _cancel(incident.timer)
        _cancel(incident.end_timer)
        del self._open[key]


def span(seconds: float) -> str:
    """``seconds`` as a person reads a span: ``40s``, ``17min``, ``4.0h``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 120:
        return f"{seconds / 60:.0f}min"
    return f"{seconds:.0f}s"


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    if timer is not None:
        timer.cancel()


def _later(delay: float, call: Callable[[], None]) -> asyncio.TimerHandle | None:
    """``call`` after ``delay`` on the running event loop; ``None`` outside one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside the daemon: the next alert summarises
        return None
    return loop.call_later(delay, call)
