"""The delivery side: claim due deliveries, call transports, record outcomes.

Each round claims a batch (lease + expiry) and sends each partner's claims
through its transport, every partner's part at the same time: the part asks
a transport that buffers to flush once and records its outcomes in one
transaction. Up to ``rounds`` parts of each partner are in flight at once,
so its next batch is claimed and sent while the previous one waits for its
transport; their claims never overlap. A partner whose parts all hang (until
its transport's timeout) is left out of the claims meanwhile: it holds up
no other partner. A crash anywhere leaves deliveries
``sending`` with an expiring lease; the next start repeats those attempts
with the same attempt reference, which transports treat idempotently.
A :class:`~gateway.errors.LocalFault` pauses its partner instead of
counting an attempt (:mod:`gateway.partner_pause`); an
:class:`~gateway.errors.UnsureError` (a send that may have arrived) repeats
the same attempt later, as a failed flush does, and a
:class:`~gateway.errors.LocalHang` (the same, because something on this machine
hangs) pauses its partner too: no further round waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from gateway.batching import BATCH_BYTES
from gateway.errors import (
    LocalFault,
    LocalHang,
    PermanentError,
    StoreUnavailable,
    TransientError,
    UnsureError,
)
from gateway.intake_pause import IntakePause
from gateway.logs import RepeatedProblem
from gateway.outbound import OutboundItem, Receipt, SendResult, attempt
from gateway.partner_pause import PartnerPauses
from gateway.plugin_types import BatchTransport, Flushable, Probeable, Transport
from gateway.retry import RetryPolicy
from gateway.store import Claim, Outcome, Store

log = logging.getLogger(__name__)


class Dispatcher:
    """Moves due deliveries to their partners' transports."""

    def __init__(self, store: Store, transports: Mapping[str, Transport], policies: Mapping[str, RetryPolicy],
                 receipt_timeouts: Mapping[str, float], *, node: str, lease: float,
                 batch_size: int, idle_poll: float, rounds: int = 1) -> None:
        self._store = store
        self._transports = transports
        self._policies = policies
        self._timeouts = dict(receipt_timeouts)
        self._node = node
        self._lease = lease
        self._batch_size = batch_size
        self._idle_poll = idle_poll
        self._rounds = rounds
        #: each partner's parts of rounds in flight (a partner at ``rounds`` is not claimed for)
        self._parts: dict[str, int] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        #: A transport that cannot flush fails every round: logged once, then now and then.
        self._flush_problems: dict[str, RepeatedProblem] = {}
        self.pauses = PartnerPauses(store, node)

    def policy_for(self, partner: str) -> RetryPolicy:
        """The retry policy of ``partner``."""
        return self._policies.get(partner) or RetryPolicy()

    def wake(self) -> None:
        """New deliveries were queued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the round in progress, then return from :meth:`run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until :meth:`stop` is called; return once the rounds in flight are done."""
        await self._release_leases()
        await self.pauses.load(self._transports)  # a partner paused before a restart stays so
        try:
            while not self._stopping:
                probe = self.pauses.due_probe()
                free = self._free()
                if probe is None and not free:  # every partner's parts in flight: wait for one
                    await self._idle(free)
                    continue
                try:
                    if probe is not None:  # one waiting attempt tells whether the fault cleared
                        claims = await self._store.claim_due(self._node, self._lease, 1, [probe])
                    else:
                        claims = await self._store.claim_due(
                            self._node, self._lease, self._batch_size, free, max_bytes=BATCH_BYTES)
                except StoreUnavailable:  # disk full: the intake alerts; claim again later
                    self.pauses.unprobe(probe)
                    await asyncio.sleep(self._idle_poll)
                    continue
                except BaseException:  # a locked database, a bug: the restarted run probes it again
                    self.pauses.unprobe(probe)
                    raise
                if claims or probe is not None:
                    self._start_round(claims, probe)
                else:
                    await self._idle(free)
        except asyncio.CancelledError:  # cut short: the rounds in flight stop too
            for task in self._in_flight:
                task.cancel()
            raise
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _release_leases(self) -> None:
        """Release the leases this node held before it (re)started, so that their deliveries
        are claimed at once; while the store cannot write, try again every ``idle_poll``
        (nothing could be claimed meanwhile either)."""
        while not self._stopping:
            try:
                await self._store.release_leases(self._node)
                return
            except StoreUnavailable:
                await asyncio.sleep(self._idle_poll)

    def _free(self) -> list[str]:
        """The partners to claim for: not paused, and with fewer than ``rounds`` parts in flight."""
        paused = self.pauses.paused()
        return [p for p in self._transports
                if p not in paused and self._parts.get(p, 0) < self._rounds]

    def _start_round(self, claims: Sequence[Claim], probe: str | None) -> list[asyncio.Task[None]]:
        """Send each partner's part of a round in a task of its own; the tasks."""
        by_partner: dict[str, list[Claim]] = {probe: []} if probe is not None else {}
        for c in claims:
            by_partner.setdefault(c.partner, []).append(c)
        tasks = []
        for partner, group in by_partner.items():
            self._parts[partner] = self._parts.get(partner, 0) + 1
            task = asyncio.create_task(self._part(partner, group, probe))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            tasks.append(task)
        return tasks

    async def _part(self, partner: str, claims: Sequence[Claim], probe: str | None) -> None:
        """One partner's part of a round; a failure leaves its claims to their lease."""
        try:
            await self._dispatch_to(partner, claims, probe)
        except StoreUnavailable as exc:  # the same attempts are repeated after their lease
            self.pauses.unprobe(probe if probe == partner else None)
            log.error("could not record a dispatch round (%s); its attempts are repeated"
                      " after their lease", exc)
        except Exception:  # the claims' leases expire and they are taken again
            self.pauses.unprobe(probe if probe == partner else None)
            log.exception("a dispatch round failed; its deliveries are retried after their lease")
        finally:
            self._parts[partner] -= 1
            self.wake()

    async def _idle(self, free: list[str]) -> None:
        """Wait for a wake-up (a part done, a message routed), the next due delivery of a
        ``free`` partner, or the next probe, whichever comes first."""
        timeout = self._idle_poll
        try:
            due = await self._store.next_due(free) if free else None
        except StoreUnavailable:  # its read shared a commit that met a full disk: poll again
            due = None
        probe = self.pauses.next_probe()
        for at in (due, probe):
            if at is not None:
                timeout = min(timeout, max(0.0, at - self._store.now()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _dispatch(self, claims: Sequence[Claim], probe: str | None = None) -> None:
        """Send a round's claims now, as :meth:`run` does, and wait until every partner's
        part of it is recorded."""
        await asyncio.gather(*self._start_round(claims, probe))

    async def _dispatch_to(self, partner: str, claims: Sequence[Claim], probe: str | None) -> None:
        """Send one partner's claims of a round, make them durable, record the outcomes.

        A probe whose transport says it cannot send yet sends nothing: its claim waits,
        uncounted, for the next probe."""
        refused = await self._refusal(partner) if partner == probe else None
        if refused is not None:
            outcomes = [Outcome(c.delivery, c.attempt_ref, "local", refused) for c in claims]
        else:
            outcomes = await self._send_group(partner, claims)
        if any(o.kind in ("sent", "delivered") for o in outcomes):
            problem = await self._flush(partner)
            if problem is not None:
                # the files may be with the partner already: the same attempts go again
                # later (skipping what arrived), never new ones that would duplicate them
                outcomes = [Outcome(o.delivery, o.attempt_ref, "unsure", f"flush failed: {problem}",
                                    hung=isinstance(problem, LocalHang))
                            if o.kind in ("sent", "delivered") else o for o in outcomes]
        if outcomes:
            await self._store.record_outcomes(outcomes, self.policy_for, self._timeouts)
        await self.pauses.after_round({partner: outcomes}, probe, refused)

    async def _refusal(self, partner: str) -> str | None:
        """Why the transport of paused ``partner`` cannot send yet, if it can tell
        (:class:`~gateway.plugin_types.Probeable`) and says so."""
        transport = self._transports[partner]
        if not isinstance(transport, Probeable):
            return None
        failed = await attempt(transport.probe())
        return str(failed) if isinstance(failed, Exception) else None

    async def _flush(self, partner: str) -> Exception | None:
        """Let a buffering transport make the batch durable; the problem if it cannot."""
        transport = self._transports[partner]
        if not isinstance(transport, Flushable):
            return None
        problem = self._flush_problems.setdefault(partner, RepeatedProblem(
            log, f"transport {partner}: making its batch durable"))
        try:
            await transport.flush()
        except Exception as exc:  # nothing of the batch counts as sent: repeat it all
            problem.failed(exc)
            return exc
        problem.ok()
        return None

    async def _send_group(self, partner: str, claims: Sequence[Claim]) -> list[Outcome]:
        """Send one partner's claims: in one ``send_many`` call where the transport has it."""
        transport = self._transports[partner]
        identity = self._store.identity()
        items = [_item(c, identity) for c in claims]
        if not isinstance(transport, BatchTransport):
            return [_outcome(c, await attempt(transport.send(item)))
                    for c, item in zip(claims, items, strict=True)]
        results: list[SendResult | Exception] | Exception = await attempt(
            transport.send_many(items))
        if isinstance(results, Exception):  # the whole batch failed
            results = [results] * len(claims)
        elif len(results) != len(claims):
            log.error("transport %s returned %d results for %d items", partner, len(results),
                      len(claims))
            results = [RuntimeError("send_many returned the wrong number of results")] * len(claims)
        return [_outcome(c, r) for c, r in zip(claims, results, strict=True)]


class ReceiptRecorder:
    """The :class:`~gateway.outbound.ReceiptSink` transports report to.

    Receipts come in as inputs do: while the store cannot write, their recording
    waits with the intake's (``pause``), and the transport's receipt files wait.
    """

    def __init__(self, store: Store, dispatcher: Dispatcher, pause: IntakePause) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._pause = pause

    async def record(self, receipts: Sequence[Receipt]) -> list[bool]:
        """Record receipts durably; ``True`` where one matched an attempt."""
        if not receipts:
            return []
        matched = await self._pause.write(
            lambda: self._store.record_receipts(receipts, self._dispatcher.policy_for))
        self._dispatcher.wake()
        return matched


def _item(claim: Claim, identity: str) -> OutboundItem:
    """The attempt of ``claim``; ``identity`` (the store's) makes its delivery_ref unique."""
    return OutboundItem(
        delivery_id=claim.delivery, partner=claim.partner, attempt=claim.attempt,
        attempt_ref=claim.attempt_ref, message_id=claim.message_id,
        payload=claim.payload, attachments=claim.attachments, resumed=claim.resumed,
        delivery_ref=f"{identity}-{claim.delivery}",
    )


def _outcome(claim: Claim, result: object) -> Outcome:
    """What one send achieved, from its result or the exception it ended with."""
    if isinstance(result, SendResult):
        kind = "sent" if result.awaits_receipt else "delivered"
        return Outcome(claim.delivery, claim.attempt_ref, kind, result.detail,
                       recipient=result.recipient)
    if isinstance(result, UnsureError):
        return Outcome(claim.delivery, claim.attempt_ref, "unsure", str(result),
                       hung=isinstance(result, LocalHang))
    if isinstance(result, LocalFault):
        return Outcome(claim.delivery, claim.attempt_ref, "local", str(result))
    if isinstance(result, PermanentError):
        return Outcome(claim.delivery, claim.attempt_ref, "permanent", str(result))
    if isinstance(result, TransientError):
        return Outcome(claim.delivery, claim.attempt_ref, "transient", str(result),
                       result.retry_after)
    return Outcome(claim.delivery, claim.attempt_ref, "transient",
                   f"unexpected transport error: {result!r}")
