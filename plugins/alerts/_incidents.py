"""Incidents: many alerts of one cause told as one, with summaries and an end.

An outbox outage fails every attempt of every delivery to a partner; a
person needs to hear of the outage, of how big it grows and of its end, not
of each attempt. Alerts are grouped by their :class:`Key` (the event kind,
the partner and the fault with ids and numbers taken out):

- the first ``burst`` alerts of an incident are logged as they come;
- the others are counted and summarised at most once per ``window``;
- an incident ends when the partner works again (:meth:`Incidents.resolve`)
  or after a ``window`` without a new alert; its next alert opens a new one.
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
    logged: int = 0
    counted: int = 0  # alerts since the last line, not logged one by one
    total: int = 0
    ids: list[int] = field(default_factory=list)  # of the counted alerts
    summary_at: float = 0.0
    timer: asyncio.TimerHandle | None = None


class Incidents:
    """Open incidents and what has been said of them."""

    def __init__(self, log: logging.Logger, *, window: float = 60.0, burst: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.window = window
        self.burst = burst
        self._clock = clock
        self._open: dict[Key, _Incident] = {}

    def alert(self, key: Key, text: str, ref: int | None = None) -> None:
        """One alert of incident ``key``: log ``text`` or count it towards a summary."""
        now = self._clock()
        incident = self._open.get(key)
        if incident is not None and now - incident.last > self.window and not incident.counted:
            self._close(key, incident)
            incident = None
        if incident is None:
            incident = self._open[key] = _Incident(opened=now, last=now, summary_at=now)
        incident.last = now
        incident.total += 1
        if incident.logged < self.burst:
            incident.logged += 1
            more = " (more like this are summarised)" if incident.logged == self.burst else ""
            self._log.warning("%s%s", text, more)
            return
        incident.counted += 1
        if ref is not None and len(incident.ids) < _NAMED:
            incident.ids.append(ref)
        if now - incident.summary_at >= self.window:
            self._summarise(key)
        elif incident.timer is None:
            incident.timer = _later(incident.summary_at + self.window - now,
                                    lambda: self._summarise(key))

    def resolve(self, partner: str, kinds: frozenset[str]) -> None:
        """``partner`` works again: end its incidents of ``kinds``, saying how long they lasted."""
        for key in [k for k in self._open if k.partner == partner and k.kind in kinds]:
            incident = self._open[key]
            self._summarise(key)
            # Worth a warning only when alerts were held back: otherwise each was told already.
            level = logging.WARNING if incident.logged >= self.burst else logging.INFO
            self._log.log(level, "%s for %s: works again after %.0fs, %d in all (%s)",
                          key.kind, partner, self._clock() - incident.opened, incident.total,
                          key.fault)
            self._close(key, incident)

    def _summarise(self, key: Key) -> None:
        incident = self._open.get(key)
        if incident is None:
            return
        if incident.timer is not None:
            incident.timer.cancel()
            incident.timer = None
        if not incident.counted:
            return
        now = self._clock()
        named = ", ".join(map(str, incident.ids))
        if incident.counted > len(incident.ids) and named:
            named += ", …"
        noun = "messages" if key.kind.startswith("message.") else "deliveries"
        self._log.warning("%s%s: %d more in the last %.0fs%s%s", key.kind,
                          f" for {key.partner}" if key.partner else "", incident.counted,
                          now - incident.summary_at, f" ({noun} {named})" if named else "",
                          f": {key.fault}" if key.fault else "")
        incident.counted, incident.ids, incident.summary_at = 0, [], now

    def _close(self, key: Key, incident: _Incident) -> None:
        if incident.timer is not None:
            incident.timer.cancel()
        del self._open[key]


def _later(delay: float, call: Callable[[], None]) -> asyncio.TimerHandle | None:
    """``call`` after ``delay`` on the running event loop; ``None`` outside one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside the daemon: the next alert summarises
        return None
    return loop.call_later(delay, call)
