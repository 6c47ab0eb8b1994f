"""The intake side: store first, then normalise → route → validate → record.

:class:`Pipeline` is the :class:`~gateway.contracts.Intake` every source
gets. ``submit`` returns once the raw bytes are committed; processing
follows in batches (in worker processes when ``[gateway] workers`` > 0),
and its results are recorded in one transaction per batch together with
the deliveries they create (transactional outbox). While the store cannot
write (disk full), those writes wait and are tried again
(:mod:`gateway.intake_pause`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool

from gateway import processor
from gateway.contracts import RawInput
from gateway.intake_pause import IntakePause
from gateway.processor import Processor
from gateway.store import MessageState, Processed, Store
from gateway.workers import WorkerPool

log = logging.getLogger(__name__)

Batch = list[tuple[int, RawInput]]


class Pipeline:
    """Stores what sources submit, then processes it in batches."""

    def __init__(self, store: Store, proc: Processor,
                 on_routed: Callable[[], None], *, pause: IntakePause, batch_size: int = 500,
                 pool: WorkerPool | None = None) -> None:
        self._store = store
        self.processor = proc
        self._on_routed = on_routed
        self._batch_size = batch_size
        self.pool = pool or WorkerPool(0)
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=64)
        self.pause = pause

    # -- Intake -----------------------------------------------------------------
    async def submit(self, raws: Sequence[RawInput]) -> list[int]:
        """Store ``raws`` durably, queue them for processing, return their ids."""
        if not raws:
            return []
        rows = await self.pause.write(lambda: self._store.add_raw(raws))
        fresh = [(mid, raw) for (mid, new), raw in zip(rows, raws, strict=True) if new]
        if fresh:
            await self._queue.put(fresh)
        return [mid for mid, _new in rows]

    async def quarantine(self, raw: RawInput, reason: str) -> int:
        """Store ``raw`` as quarantined with ``reason``."""
        return await self.pause.write(lambda: self._store.quarantine_raw(raw, reason))

    # -- processing ---------------------------------------------------------------
    async def start(self) -> None:
        """Start the worker processes now rather than with the first input."""
        await self.pool.start()

    async def recover(self) -> int:
        """Process inputs that were stored but never processed (after a crash)."""
        count = 0
        while True:
            pending = await self._store.pending(self._batch_size)
            if not pending:
                return count
            await self._process([(p.message, RawInput(p.source, p.ref, p.data, p.meta))
                                 for p in pending])
            count += len(pending)

    async def run(self) -> None:
        """Process queued inputs until :meth:`stop` was called and all is processed."""
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            while len(batch) < self._batch_size and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    self._queue.put_nowait(None)
                    break
                batch.extend(more)
            await self._process(batch)

    async def stop(self) -> None:
        """Let :meth:`run` finish what is queued, then return."""
        await self._queue.put(None)

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.close()

    async def _process(self, batch: Batch) -> None:
        results = await self._run_batch(batch)
        await self.pause.write(lambda: self._store.record_processing(results))
        if any(p.state is MessageState.ROUTED for p in results):
            self._on_routed()

    async def _run_batch(self, batch: Batch) -> list[Processed]:
        if not self.pool.size:
            return self.processor.process_batch(batch)
        try:
            return await self.pool.run(processor.work, batch)
        except BrokenProcessPool:
            log.error("processing this batch again one input at a time")
        results = []
        for item in batch:
            try:
                results.extend(await self.pool.run(processor.work, [item]))
            except BrokenProcessPool:
                results.append(Processed(item[0], MessageState.QUARANTINED,
                                         "processing this input crashed the worker process"))
        return results
