"""The intake side: store first, then normalise → enrich → complete → rules → convert → validate → record.

:class:`Pipeline` is the :class:`~gateway.contracts.Intake` every source
gets. ``submit`` returns once the raw bytes are committed, and queues them
(:mod:`gateway.admission`); processing
follows in batches: the stages without I/O (:mod:`gateway.processor`) in
worker processes when ``[gateway] workers`` > 0 (:mod:`gateway.stage_calls`), enrichment (person
state, :mod:`gateway.enrich`) in the event loop. Everything a batch causes
(message states, person states, deliveries each with its payload, answer
correlations, journal entries) is recorded in one transaction
(transactional outbox), while the next two batches are finished, one in each
worker (:meth:`Pipeline.run`). While senders
wait for answers (``submit(..., wait=False)``, a push) the next batch
waits, at most ``[gateway] answers_first``: the answers get the event loop
and the cores first.
A partner's eCH-0223 message is not decided by the rules: it takes the way
back to the registry (:mod:`gateway.inbound`).
While the store cannot
write (disk full), those writes wait and are tried again
(:mod:`gateway.intake_pause`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pluggy

from gateway.admission import Admission
from gateway.batching import BATCH_BYTES, QUEUED_BYTES, Batch, Waiting, cut
from gateway.contracts import Normalised, RawInput
from gateway.enrich import Recording, enrich
from gateway.errors import StoreLost, StoreUnavailable
from gateway.inbound import WayBack
from gateway.intake_pause import IntakePause
from gateway.person_state import PersonChange
from gateway.processor import Processor
from gateway.stage_calls import Normalising, Stages
from gateway.store import MessageState, Processed, Store
from gateway.workers import WorkerPool

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Decided:
    """A batch decided, not recorded yet.

    :param order: its message ids, in input order.
    :param outcome: each message's outcome, by id.
    :param todo: the inputs that took enrichment and finishing (to be decided again
        if the person states they saw changed meanwhile).
    :param worker: the worker that normalised the batch (``None``: this process).
    """

    order: list[int]
    outcome: dict[int, Processed]
    todo: list[tuple[int, RawInput, Normalised]]
    worker: int | None

    @property
    def results(self) -> list[Processed]:
        """The outcomes in input order."""
        return [self.outcome[mid] for mid in self.order]

    def persons(self) -> set[str]:
        """The keys of the persons the enriched inputs are about, and those they state."""
        return {key for mid, _raw, n in self.todo
                for key in (*n.subject, *(key for c in self.outcome[mid].persons
                                          if isinstance(c, PersonChange) for key in c.keys))}


class Pipeline:
    """Stores what sources submit, then processes it in batches."""

    def __init__(self, store: Store, pm: pluggy.PluginManager, proc: Processor,
                 on_routed: Callable[[], None], *, pause: IntakePause, batch_size: int = 500,
                 pool: WorkerPool | None = None, answers_first: float = 0.0,
                 batch_bytes: int = BATCH_BYTES, queued_bytes: int = QUEUED_BYTES) -> None:
        """:param batch_size: the most inputs one batch takes.
        :param answers_first: how long a batch may wait while senders wait for
            answers (:meth:`Admission.answers_first_wait`); 0: never.
        :param batch_bytes: the most input bytes one batch takes, beyond its first input.
        :param queued_bytes: the input bytes waiting in the queue at which it is full."""
        self._store = store
        self._pm = pm
        self.processor = proc
        self.way_back = WayBack(store, pm, proc)
        self._on_routed = on_routed
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self.pool = pool or WorkerPool(0)
        self.stages = Stages(proc, self.pool)
        self._waiting = Waiting(batch_size, batch_bytes, queued_bytes)
        self.pause = pause
        self.admission = Admission(store, pause, self._waiting, proc.context,
                                   batch_size=batch_size, batch_bytes=batch_bytes,
                                   answers_first=answers_first)
        #: the batches :meth:`run` took from the queue and has not recorded yet, oldest first
        self._taken: deque[Batch] = deque()

    # -- Intake -----------------------------------------------------------------
    async def submit(self, raws: Sequence[RawInput], *, wait: bool = True) -> list[int]:
        """Store ``raws`` durably, queue them for processing, return their ids
        (:meth:`Admission.submit <gateway.admission.Admission.submit>`)."""
        return await self.admission.submit(raws, wait=wait)

    async def quarantine(self, raw: RawInput, reason: str, *, wait: bool = True) -> int:
        """Store ``raw`` as quarantined with ``reason`` (``wait``: as for :meth:`submit`)."""
        return await self.admission.quarantine(raw, reason, wait=wait)

    # -- processing ---------------------------------------------------------------
    async def start(self) -> None:
        """Start the worker processes now rather than with the first input."""
        await self.pool.start()

    async def recover(self, stop: asyncio.Event | None = None) -> int:
        """Process inputs that were stored but never processed (after a crash); an input whose
        processing fails is quarantined, so that none keeps the daemon from starting.

        :param stop: once set, no further batch is begun (a TERM during a long recovery:
            the rest waits for the next start).
        """
        count = 0
        while stop is None or not stop.is_set():
            pending = await self._store.pending(self._batch_size, max_bytes=self._batch_bytes)
            if not pending:
                return count
            await self._process_or_each([(p.message, RawInput(p.source, p.ref, p.data, p.meta))
                                         for p in pending])
            count += len(pending)
        return count

    async def run(self) -> None:
        """Process queued inputs until :meth:`stop` was called and all is processed.

        Four batches are under way at a time: while batch *k* is recorded (in
        this process), batches *k+1* and *k+2* are finished (one in each
        worker) and batch *k+3* is normalised when a worker is free. Finishing is
        most of the work, so two workers finish at once: batch *k+2* is decided before
        batch *k+1* is, with the person states known then. Before it is
        recorded, it is decided again if it turns out to be about a person whom
        *k+1* changed (:meth:`_confirmed`), which is rare: a person's events seldom
        come in consecutive batches. Normalising needs no person state;
        finishing sees the states the batch before leaves
        (:class:`~gateway.enrich.Recording`) before they are committed. A batch
        that splits (an export) is recorded, and its parts processed, before
        the next batch is recorded, which is then decided again. With fewer than
        two workers, a batch is decided only once the one before it is.

        A run that fails (the daemon starts it again) leaves the batches it took
        and did not record; the next run takes them up first (:meth:`_take_up`).
        """
        await self._take_up()
        batch = self._took(await self._waiting.next())
        ahead = self._normalise_ahead(batch)
        recorded: asyncio.Task[list[Processed]] | None = None
        recording: Recording | None = None
        #: batches being decided, oldest first, each with the number of batches
        #: recorded when its decision started
        deciding: deque[tuple[asyncio.Task[Decided], int]] = deque()
        taken = 0
        # one batch decided ahead where another worker can finish it meanwhile
        ahead_of = 1 if self.pool.size > 1 else 0
        try:
            while batch is not None:
                await self.admission.answers_first_wait()
                normalised = await ahead if ahead is not None else None
                following = self._took(self._waiting.next_nowait())
                # not in the worker that is about to finish this batch
                ahead = self._normalise_ahead(following, normalised[0] if normalised else None)
                deciding.append((asyncio.create_task(
                    self._decide(batch, normalised, recording)), taken))
                while deciding and (len(deciding) > ahead_of or following is None):
                    task, seen = deciding.popleft()
                    decided = await task
                    if seen != taken:  # decided before the batch ahead of it was recorded
                        decided = await self._confirmed(decided, recording)
                    results = decided.results
                    if recorded is not None:
                        await recorded
                    recorded = asyncio.create_task(self._record(results, taken=True))
                    recording = Recording([c for p in results for c in p.persons
                                           if isinstance(c, PersonChange)])
                    taken += 1
                    if any(p.state is MessageState.SPLIT for p in results):
                        await recorded
                        recorded = recording = None
                        await self._process_parts(results)
                if following is None:
                    following = await self._next_batch(recorded)
                    ahead = self._normalise_ahead(following)
                batch = following
            if recorded is not None:
                try:
                    await recorded
                except BaseException:
                    self._waiting.stop_again()  # taken already: the next run takes up, then stops
                    raise
        except asyncio.CancelledError:  # a stop cut short: what is under way waits, stored,
            if recorded is not None:    # for the next start (a commit may wait for disk space)
                recorded.cancel()
            raise
        finally:
            if ahead is not None:
                ahead.cancel()
            for task, _seen in deciding:
                task.cancel()
            if recorded is not None:  # a failure elsewhere: its batch is taken up only if
                await asyncio.wait((recorded,))  # it fails too, and after it, in order
                if not recorded.cancelled():
                    recorded.exception()  # (said by the failure that ends this run, if any)

    def _took(self, batch: Batch | None) -> Batch | None:
        """``batch``, noted as taken from the queue by :meth:`run` until it is recorded."""
        if batch is not None:
            self._taken.append(batch)
        return batch

    async def _next_batch(self, recorded: asyncio.Task[list[Processed]] | None) -> Batch | None:
        """The next batch (``None``: the stop), taken (:meth:`_took`) once it comes; raises at
        once if ``recorded``, the recording of the batch before, fails meanwhile, so that
        its inputs are taken up now, not when the next input arrives."""
        if recorded is None or recorded.done():
            return self._took(await self._waiting.next())
        coming = asyncio.ensure_future(self._waiting.next())
        try:
            await asyncio.wait((coming, recorded), return_when=asyncio.FIRST_COMPLETED)
        finally:
            coming.cancel()  # a wait on the queue cancelled takes nothing from it
            with contextlib.suppress(asyncio.CancelledError):
                await coming
        if coming.cancelled():  # the recording ended first
            recorded.result()  # raises if it failed
            return self._took(await self._waiting.next())
        batch = self._took(coming.result())
        if recorded.done() and not recorded.cancelled() and recorded.exception() is not None:
            if batch is None:  # the stop came: the next run takes up, then stops
                self._waiting.stop_again()
            recorded.result()  # raises (a batch that came is taken up)
        return batch

    async def _take_up(self) -> None:
        """Process what a failed :meth:`run` took from the queue and did not record, an input
        at a time: an input whose processing fails again is quarantined with the error, so
        that none waits for the next start and none holds up the others."""
        if not self._taken:
            return
        log.warning("processing the %d inputs a failed run left, one at a time",
                    sum(map(len, self._taken)))
        while self._taken:
            await self._each_alone(self._taken[0])
            self._taken.popleft()

    async def _process_or_each(self, batch: Batch) -> None:
        """Process ``batch``; if that fails, each of its inputs alone (:meth:`_each_alone`)."""
        try:
            await self.process(batch)
        except (StoreUnavailable, StoreLost):
            raise
        except Exception:
            log.exception("processing a batch of %d failed; each of its inputs alone now",
                          len(batch))
            await self._each_alone(batch)

    async def _each_alone(self, batch: Batch) -> None:
        """Process each input of ``batch`` alone; one whose processing fails is quarantined
        with the error, so that it holds up no other. A store that cannot write (or is lost)
        is no fault of the input's: that error goes on, and the input stays to be processed.

        An input whose outcome is recorded already is not processed again: the batch failed
        after its commit (reading the rows of an export among it, which wait, stored).
        """
        waiting = {p.message for p in await self._store.inputs([mid for mid, _raw in batch])}
        if len(waiting) < len(batch):
            log.info("%d of these inputs have their outcome recorded already: not processed"
                     " again", len(batch) - len(waiting))
        for mid, raw in batch:
            if mid not in waiting:
                continue
            try:
                await self.process([(mid, raw)])
            except (StoreUnavailable, StoreLost):
                raise
            except Exception as exc:
                log.exception("processing message %d failed; it is quarantined", mid)
                await self._record([Processed(mid, MessageState.QUARANTINED,
                                              f"processing failed: {exc!r}")])

    def _normalise_ahead(self, batch: Batch | None,
                         avoid: int | None = None) -> asyncio.Task[Normalising] | None:
        """Start normalising ``batch`` now, in a worker (if there is a choice, not ``avoid``);
        ``None`` without workers or batch."""
        if batch is None or not self.pool.size:
            return None
        return asyncio.create_task(self.stages.normalise(batch, avoid))

    async def stop(self) -> None:
        """Let :meth:`run` finish what is queued (the backlog, and what submits whose callers
        were cancelled still queue, too), then return."""
        await self.admission.settle()
        await self._waiting.put(None)

    def close(self, *, at_once: bool = False) -> None:
        """Stop the worker processes (``at_once``: :meth:`WorkerPool.close`), and queueing the
        backlog: it is taken at the next start."""
        self.admission.close()
        self.pool.close(at_once=at_once)

    async def process(self, batch: Batch, normalised: Normalising | None = None) -> list[Processed]:
        """Run stored inputs through every stage and record the outcome; the outcomes.

        The one processing path: the daemon's batches (:meth:`run`, which
        overlaps the recording of one batch with deciding the next), recovery
        after a crash, and the operator's ``messages replay``/``resubmit`` all come here.

        :param normalised: the batch already normalised.
        """
        results = await self._record((await self._decide(batch, normalised)).results)
        await self._process_parts(results)
        return results

    async def _decide(self, batch: Batch, normalised: Normalising | None = None,
                      recording: Recording | None = None) -> Decided:
        """What becomes of each input of ``batch``, not recorded yet, with what it takes to
        decide the batch again (:meth:`_confirmed`).

        :param recording: the person states the batch before leaves, if it is still
            being recorded.
        """
        worker, steps = normalised if normalised is not None else await self.stages.normalise(batch)
        outcome: dict[int, Processed] = {}
        todo: list[tuple[int, RawInput, Normalised]] = []
        for step, (mid, raw) in zip(steps, batch, strict=True):
            if isinstance(step, Processed):
                outcome[mid] = step
            else:
                todo.append((mid, raw, step))
        todo, back = self.way_back.take(todo)
        for result in await self.way_back.process(back):
            outcome[result.message] = result
        decided = Decided([mid for mid, _raw in batch], outcome, todo, worker)
        await self._finish_todo(decided, recording)
        return decided

    async def _finish_todo(self, decided: Decided, recording: Recording | None) -> None:
        """Enrich and finish the inputs of ``decided`` that take the rules' way, seeing
        the person states ``recording`` leaves over the store's."""
        if not decided.todo:
            return
        found = await enrich(self._store, self._pm, self.processor.settings,
                             [(mid, n) for mid, _raw, n in decided.todo], recording)
        finished = await self.stages.finish(decided.todo, found.known, decided.worker)
        for result, (mid, _raw, n) in zip(finished, decided.todo, strict=True):
            result.persons = found.looked_up_for(n.subject) + tuple(result.persons)
            decided.outcome[mid] = result

    async def _confirmed(self, decided: Decided, recording: Recording | None) -> Decided:
        """``decided``, decided again if the batch recorded meanwhile changed one of its persons.

        ``decided`` was finished with the person states known before the batch
        ahead of it was decided; ``recording`` is what that batch leaves
        (``None``: it split, and its parts were processed: unknown). Where that
        touches none of ``decided``'s persons (those its messages are about, and
        those its inputs state, a ``baseDelivery``'s), its decision stands; else
        it is enriched and finished again, the whole batch, since its inputs may
        see each other's states.
        """
        if recording is not None and not recording.touches(decided.persons()):
            return decided
        log.debug("deciding a batch of %d again: the batch before changed one of its persons",
                  len(decided.todo))
        await self._finish_todo(decided, recording)
        return decided

    async def _record(self, results: list[Processed], *, taken: bool = False) -> list[Processed]:
        """Record ``results`` in one transaction (waiting while the disk is full); them.

        :param taken: they are the oldest batch :meth:`run` took, which it then no longer holds.
        """
        await self.pause.write(lambda: self._store.record_processing(results))
        if taken:
            self._taken.popleft()
        if any(p.state is MessageState.ROUTED for p in results):
            self._on_routed()
        return results

    async def _process_parts(self, results: list[Processed]) -> None:
        """Process the parts (an export's rows) of the inputs that split, as inputs of their own."""
        split = [p.message for p in results if p.state is MessageState.SPLIT]
        if split:  # an export's rows: stored with it, processed now like any input
            parts = await self._store.parts_of(split)
            for batch in cut([(p.message, RawInput(p.source, p.ref, p.data, p.meta)) for p in parts],
                             self._batch_size, self._batch_bytes):
                await self._process_or_each(batch)
