"""Partners paused by a fault on this machine (this node), not theirs.

When a transport raises :class:`~gateway.errors.LocalFault` (its outbox is
missing, read-only or full) or :class:`~gateway.errors.LocalHang` (its outbox
did not answer in time: a share that hangs), the partner is paused: its
attempts stay ``sending`` with the same reference (no attempt is counted), no
new ones are claimed, and one journal entry, so one event (``partner.paused``),
tells the operator.
A probe repeats one waiting attempt after 2 s, then after twice as long each
time up to a minute; the first probe that does not meet the fault resumes the
partner (``partner.resumed``) and its deliveries flow again; the time it
was paused does not count toward their ``max_age``. A transport that can tell
whether the fault is over without sending (:class:`~gateway.plugin_types.Probeable`)
is asked first, and a probe it fails sends nothing: no probe waits on a folder
that still hangs.

The pause is the store's (:meth:`Store.pause_partner
<gateway.store.Store.pause_partner>`), committed with its journal entry, so
``ech-gateway status`` tells it and a daemon that starts while a partner is
paused keeps it paused (:meth:`PartnerPauses.load`): its first probe comes
after 2 s, and its resumption takes the whole pause, before the restart too,
off its deliveries' ``max_age``. Only the probes' schedule is this process's.

A pause is this node's (``[gateway] node_id``): with several nodes on one
database, a fault on one machine pauses the partner on that node only (the
others keep sending to it), only that node's probe ends it, and a daemon takes
up only its own node's pauses. Its resumption still moves all the partner's
open deliveries (a waiting delivery belongs to no node): the pause extends
their ``max_age`` though the other nodes kept sending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import StoreConflict
from gateway.store import Outcome, Store

log = logging.getLogger(__name__)

#: Seconds before the first probe of a paused partner, doubling up to the maximum.
PROBE_FIRST, PROBE_MAX = 2.0, 60.0


@dataclass(slots=True)
class _Pause:
    since: float
    error: str
    delay: float
    probe_at: float
    probing: bool = False


class PartnerPauses:
    """Which partners are paused, when to probe them, and the events of both."""

    def __init__(self, store: Store, node: str, *, first: float = PROBE_FIRST,
                 longest: float = PROBE_MAX) -> None:
        self._store = store
        self._node = node
        self.first = first
        self.longest = longest
        self._paused: dict[str, _Pause] = {}

    async def load(self, partners: Collection[str]) -> None:
        """Take up the pauses the store keeps of this node (a restart while paused) of
        ``partners`` (those this process sends to): each is probed first after :attr:`first`
        seconds. Another node's pauses are its own: its fault is not this machine's."""
        for (node, partner), (since, error) in (await self._store.paused_partners()).items():
            if node == self._node and partner in partners and partner not in self._paused:
                self._paused[partner] = _Pause(since, error, self.first,
                                               time.time() + self.first)
                log.info("partner %s paused since %s by a fault on this machine (%s): probing"
                         " it again", partner, _when(since), error)

    def paused(self) -> frozenset[str]:
        """The partners paused now (probing or not)."""
        return frozenset(self._paused)

    def next_probe(self) -> float | None:
        """When the next probe is due (a time), if any partner is paused."""
        waiting = [p.probe_at for p in self._paused.values() if not p.probing]
        return min(waiting, default=None)

    def due_probe(self) -> str | None:
        """A paused partner whose probe is due now, marked as being probed."""
        now = time.time()
        for partner, pause in self._paused.items():
            if not pause.probing and pause.probe_at <= now:
                pause.probing = True
                return partner
        return None

    def unprobe(self, partner: str | None) -> None:
        """The probe of ``partner`` told nothing (the round failed): probe again later."""
        pause = self._paused.get(partner) if partner is not None else None
        if pause is not None:
            pause.probing = False
            pause.probe_at = time.time() + pause.delay

    async def after_round(self, outcomes: Mapping[str, Sequence[Outcome]],
                          probe: str | None, refused: str | None = None) -> None:
        """Pause, keep paused or resume partners after a round's outcomes were recorded.

        :param outcomes: each partner's outcomes in the round (empty: nothing to send).
        :param probe: the partner this round probed, if it was a probe.
        :param refused: why the probed partner's transport said it cannot send yet
            (:meth:`~gateway.plugin_types.Probeable.probe`): it stays paused.
        """
        for partner, outs in outcomes.items():
            local = next((o.detail for o in outs if o.kind == "local" or o.hung), None)
            if partner == probe and refused is not None:
                local = refused
            pause = self._paused.get(partner)
            if local is not None and pause is None:
                await self._pause(partner, local)
            elif partner != probe or pause is None:
                continue  # a round begun before the pause tells nothing new
            elif local is not None:
                pause.delay = min(pause.delay * 2, self.longest)
                pause.probe_at = time.time() + pause.delay
                pause.probing = False
                log.debug("partner %s still paused (%s); next probe in %.0fs",
                          partner, local, pause.delay)
            else:
                await self._resume(partner, pause)

    async def _pause(self, partner: str, error: str) -> None:
        # (since: store time, as the deliveries' first attempts; probes: this process's)
        since = await self._store.pause_partner(self._node, partner, error)
        if partner in self._paused:  # a round in flight beside this one met the fault too
            return
        self._paused[partner] = _Pause(since, error, self.first, time.time() + self.first)
        log.info("partner %s paused by a fault on this machine; probing every %.0f-%.0fs",
                 partner, self.first, self.longest)

    async def _resume(self, partner: str, pause: _Pause) -> None:
        try:
            await self._store.resume_partner(self._node, partner, pause.since, pause.error)
        except StoreConflict:  # another process with this node_id resumed it first
            log.debug("partner %s was resumed elsewhere", partner)
        del self._paused[partner]


def _when(at: float) -> str:
    """A store time for the log, in UTC."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
