"""Running the processing stages in the worker processes, and what a crash leaves.

:class:`Stages` runs :mod:`gateway.worker_stages` in the pipeline's workers
(in this process without any): normalising in a free worker, finishing in
the worker that normalised the batch, which still holds it. A batch that
kills its worker is run again one input at a time; an input that kills a
worker alone is quarantined, saying so. A worker that cannot start is no
input's fault: the work waits for one (:meth:`~gateway.workers.WorkerPool.run`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from gateway import worker_stages
from gateway.batching import Batch
from gateway.contracts import Normalised, RawInput
from gateway.person_state import StoredPerson
from gateway.processor import Processor, Step
from gateway.store import MessageState, Processed
from gateway.workers import WorkerPool

log = logging.getLogger(__name__)

#: A normalised batch: the worker that normalised it (``None``: this process), and its steps.
Normalising = tuple[int | None, list[Step]]
T = TypeVar("T")
R = TypeVar("R")


class Stages:
    """The two stages without I/O, in ``pool``'s workers, or run by ``processor`` here."""

    def __init__(self, processor: Processor, pool: WorkerPool) -> None:
        self.processor = processor
        self.pool = pool

    async def normalise(self, batch: Batch, avoid: int | None = None) -> Normalising:
        """The worker that normalises ``batch`` (``None``: this process), and its steps."""
        return await self._in_workers(self.processor.normalise_batch, worker_stages.normalise_work,
                                      _normalise_crashed, batch,
                                      worker=self.pool.pick(avoid) if self.pool.size else None)

    async def finish(self, todo: list[tuple[int, RawInput, Normalised]],
                      known: dict[str, StoredPerson], worker: int | None) -> list[Processed]:
        """Stage three of ``todo``, normalised by ``worker``, given the persons ``known``.

        In that worker if it is free, or, if the batch has drafts or a base delivery's
        states, when it is: it still holds the inputs and their steps (the drafts parsed,
        the states), so they are named by id only (:func:`~gateway.worker_stages.finish_kept`);
        elsewhere, or where it no longer holds them, they are sent (and normalised again).
        """
        insist = any(worker_stages.held(n) for _mid, _raw, n in todo)
        if worker is not None and (insist or self.pool.is_free(worker)):
            try:
                _, finished = await self.pool.run_where(
                    worker_stages.finish_kept, [mid for mid, _raw, _n in todo], known,
                    worker=worker, insist=insist)
            except BrokenProcessPool:
                log.error("processing this batch again one input at a time")
                return await self._one_at_a_time(worker_stages.finish_work, _finish_crashed,
                                                 todo, known)
            if finished is not None:
                return finished
        _, finished = await self._in_workers(
            self.processor.finish_batch, worker_stages.finish_work, _finish_crashed, todo, known,
            worker=worker, insist=insist)
        return finished

    async def _in_workers(self, here: Callable[..., list[R]], there: Callable[..., list[R]],
                          crashed: Callable[[T], R], items: list[T], *args: Any,
                          worker: int | None = None, insist: bool = False
                          ) -> tuple[int | None, list[R]]:
        """``here(items, *args)`` in this process, or ``there(items, *args)`` in a worker
        (``worker`` if free, or when it is, with ``insist``); which worker ran it, and the results.

        A batch that kills its worker is run again one item at a time; an item
        that kills a worker alone becomes ``crashed(item)``.
        """
        if not self.pool.size:
            return None, here(items, *args)
        try:
            return await self.pool.run_where(there, items, *args, worker=worker, insist=insist)
        except BrokenProcessPool:
            log.error("processing this batch again one input at a time")
        return None, await self._one_at_a_time(there, crashed, items, *args)

    async def _one_at_a_time(self, there: Callable[..., list[R]], crashed: Callable[[T], R],
                             items: list[T], *args: Any) -> list[R]:
        """``there([item], *args)`` in a worker for each item; ``crashed(item)`` for one that
        kills its worker."""
        results: list[R] = []
        for item in items:
            try:
                results.extend(await self.pool.run(there, [item], *args))
            except BrokenProcessPool:
                results.append(crashed(item))
        return results


_CRASHED = "processing this input crashed the worker process"


def _normalise_crashed(item: tuple[int, RawInput]) -> Step:
    return Processed(item[0], MessageState.QUARANTINED, _CRASHED)


def _finish_crashed(item: tuple[int, RawInput, Normalised]) -> Processed:
    return Processed(item[0], MessageState.QUARANTINED, _CRASHED)
