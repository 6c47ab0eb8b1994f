"""Admission: what sources submit is stored first, then queued for the pipeline's batches.

:class:`Admission` does :meth:`Pipeline.submit <gateway.pipeline.Pipeline.submit>`'s
work: it stores the inputs (waiting while the store cannot write:
:mod:`gateway.intake_pause`) and queues them, or, for a sender that does not
wait (a push), remembers them by id while the queue is full and queues them
later, read back from the store. It also holds the pipeline's next batch
back while senders wait for their answers (``[gateway] answers_first``).
An input a source quarantines itself keeps its eCH-0223 header's messageId and
senderId (:mod:`gateway.header_ids`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections import deque
from collections.abc import Sequence

from gateway.batching import Batch, Waiting, cut, fitting
from gateway.contracts import NormaliseContext, RawInput
from gateway.errors import StoreUnavailable
from gateway.header_ids import header_ids
from gateway.intake_pause import IntakePause
from gateway.logs import RepeatedProblem
from gateway.store import Store

log = logging.getLogger(__name__)

#: Seconds without a sender waiting for an answer before the next batch is processed.
SENDERS_QUIET = 0.05
#: Seconds before the backlog's read from the store is tried again after it failed.
FEED_RETRY = 1.0
#: The most bytes of a quarantined input whose header is read in the event loop (a third
#: of a millisecond at most); a larger one is read in a thread.
READ_HERE = 64 << 10


class Admission:
    """Stores and queues what sources submit (the intake half of the pipeline)."""

    def __init__(self, store: Store, pause: IntakePause, waiting: Waiting,
                 limits: NormaliseContext, *, batch_size: int, batch_bytes: int,
                 answers_first: float) -> None:
        """:param waiting: the queue the pipeline takes its batches from.
        :param limits: the input limits in force (reading a quarantined input's header).
        :param batch_size: the most inputs one batch of the backlog takes.
        :param batch_bytes: the most input bytes one batch takes, beyond its first input.
        :param answers_first: how long a batch may wait while senders wait for
            answers (:meth:`answers_first_wait`); 0: never."""
        self._store = store
        self.pause = pause
        self._waiting = waiting
        self._limits = limits
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._answers_first = answers_first
        #: ids and sizes of inputs stored with ``wait=False`` while the queue was full, oldest first
        self._backlog: deque[tuple[int, int]] = deque()
        self._feeder: asyncio.Task[None] | None = None
        #: when (event-loop time) a sender last waited for its answer (``submit(wait=False)``)
        self._answered_at = float("-inf")
        #: submits whose caller was cancelled, storing and queueing on (:meth:`submit`)
        self._finishing: set[asyncio.Task[list[int]]] = set()

    async def submit(self, raws: Sequence[RawInput], *, wait: bool = True) -> list[int]:
        """Store ``raws`` durably, queue them for processing, return their ids.

        ``wait=False`` never waits for room in the queue: what does not fit is
        remembered by id (the bytes stay in the store only) and queued, read back
        from the store, as room frees up; later such inputs queue behind it, so
        they are processed in the order they were stored. What is remembered when
        the process stops is ``received`` in the store: recovery takes it
        (:meth:`Pipeline.recover <gateway.pipeline.Pipeline.recover>`).
        Nor does it wait while the store cannot write: it raises
        :class:`~gateway.errors.StoreUnavailable` (nothing stored).

        A caller cancelled meanwhile (a source stopped by the drain, or by a
        failure beside it) does not stop it: what is stored is queued all the same,
        never left ``received`` without an owner until the next start.
        """
        if not raws:
            return []
        if not wait:
            self._answered_at = asyncio.get_running_loop().time()
        task = asyncio.ensure_future(self._store_and_queue(raws, wait))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                self._finishing.add(task)
                task.add_done_callback(self._finished)
            raise

    def _finished(self, task: asyncio.Task[list[int]]) -> None:
        """A submit whose caller was cancelled is done; what failed it is said here."""
        self._finishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("inputs whose source stopped meanwhile were not stored: %s",
                        task.exception())

    async def _store_and_queue(self, raws: Sequence[RawInput], wait: bool) -> list[int]:
        """:meth:`submit`'s work: store ``raws``, queue the new ones; their ids."""
        rows = await self.pause.write(lambda: self._store.add_raw(raws), wait=wait)
        fresh = [(mid, raw) for (mid, new), raw in zip(rows, raws, strict=True) if new]
        for batch in cut(fresh, None, self._batch_bytes):
            if wait:
                await self._waiting.put(batch)
            else:
                self._queue_now(batch)
        return [mid for mid, _new in rows]

    def _queue_now(self, fresh: Batch) -> None:
        """Queue ``fresh`` if there is room and no backlog, else put it in the backlog."""
        if self._feeder is None and not self._waiting.full():
            self._waiting.put_nowait(fresh)
            return
        self._backlog.extend((mid, len(raw.data)) for mid, raw in fresh)
        if self._feeder is None:
            self._feeder = asyncio.create_task(self._feed(), name="pipeline backlog")

    async def _feed(self) -> None:
        """Queue the backlog, batch by batch, read back from the store, as room frees up.

        A read that fails (the store cannot for now) is tried again a second later, the
        backlog kept whole: those inputs were answered as taken already.
        """
        problem = RepeatedProblem(log, "queueing the inputs stored while the queue was full")
        try:
            while self._backlog:
                taken = fitting((size for _mid, size in self._backlog), self._batch_bytes,
                                self._batch_size)
                ids = [mid for mid, _size in itertools.islice(self._backlog, taken)]
                try:
                    stored = await self._store.inputs(ids)
                except (StoreUnavailable, OSError, sqlite3.Error) as exc:
                    problem.failed(exc)
                    await asyncio.sleep(FEED_RETRY)
                    continue
                problem.ok()
                for _ in ids:
                    self._backlog.popleft()
                await self._waiting.put([(p.message, RawInput(p.source, p.ref, p.data, p.meta))
                                       for p in stored])
        finally:
            self._feeder = None

    async def quarantine(self, raw: RawInput, reason: str, *, wait: bool = True) -> int:
        """Store ``raw`` as quarantined with ``reason`` (``wait``: as for :meth:`submit`),
        with the messageId and senderId its eCH-0223 header gives
        (:func:`~gateway.header_ids.header_ids`; the store keeps them where it may).

        The header of an input up to :data:`READ_HERE` bytes is read here, of a larger
        one in a thread (the parser lets the event loop run meanwhile).
        """
        message_id, sender_id = (header_ids(raw, self._limits) if len(raw.data) <= READ_HERE
                                 else await asyncio.to_thread(header_ids, raw, self._limits))
        return await self.pause.write(lambda: self._store.quarantine_raw(
            raw, reason, message_id=message_id, sender_id=sender_id), wait=wait)

    async def answers_first_wait(self) -> None:
        """Wait while senders wait for answers, at most ``answers_first`` seconds.

        A sender waiting for its 202 (a push, ``submit(wait=False)``) is answered
        once its input is stored; a batch processed meanwhile takes the event
        loop and the cores from the answers. So while senders push, a batch
        waits until no sender has waited for :data:`SENDERS_QUIET` s (counted
        from the batch's turn: the loop may have been too busy to take
        them), but never longer than
        ``answers_first``: under a steady stream of pushes the backlog is still
        worked off, a batch at a time.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        if start - self._answered_at >= self._answers_first:  # nobody pushed for a while
            return
        # the loop may have been busy until now (the batch before), so that no
        # sender could be answered: quiet counts from now at the earliest
        give_up = start + self._answers_first
        while (now := loop.time()) < give_up:
            quiet_at = max(self._answered_at, start) + SENDERS_QUIET
            if now >= quiet_at:
                return
            await asyncio.sleep(min(quiet_at, give_up) - now)

    async def settle(self) -> None:
        """Wait until what was admitted is queued: the backlog, and what submits whose callers
        were cancelled still queue."""
        await asyncio.gather(*self._finishing, return_exceptions=True)
        if self._feeder is not None:
            await self._feeder

    def close(self) -> None:
        """Stop queueing the backlog: it is taken at the next start."""
        if self._feeder is not None:
            self._feeder.cancel()
