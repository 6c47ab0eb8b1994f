"""Batches of stored inputs, bounded by their count and by their bytes, and the queue they wait in.

What processing a batch holds in memory grows with its inputs' bytes, not
with their number: a ``baseDelivery`` of 16.8 MB states 3,680 persons, an
event of 7 KB one. Counting inputs alone let 20 base deliveries (336 MB) go
through as one batch, which took the daemon 2.2 GB and a worker 1.5 GB.
So a batch also stops at :data:`BATCH_BYTES` (beyond its first input, which
goes through whatever its size), and the queue of batches waiting is full at
:data:`QUEUED_BYTES`. The dispatcher's claims stop at :data:`BATCH_BYTES` of
payloads and attachments in the same way: a partner's backlog of messages
with scanned documents is sent a few at a time, not 500.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

from gateway.contracts import RawInput

#: The input bytes one batch holds at most, beyond its first input (and the bytes of
#: payloads and attachments one claim of deliveries holds).
BATCH_BYTES = 16 << 20
#: The input bytes of the batches waiting to be processed at which their queue is full.
QUEUED_BYTES = 16 << 20
#: Submits queued at most, waiting to be processed (each a batch, often of one input).
QUEUED_BATCHES = 64

Batch = list[tuple[int, RawInput]]


def batch_bytes(batch: Batch | None) -> int:
    """The input bytes of ``batch`` (0 for the stop marker ``None``)."""
    return sum(len(raw.data) for _mid, raw in batch) if batch else 0


def fitting(sizes: Iterable[int], max_bytes: int, count: int | None = None) -> int:
    """How many of the leading ``sizes`` fit into ``max_bytes`` (and ``count``): the first
    always does, whatever its size; 0 only for no sizes. The one rule for batches of
    inputs, the backlog, recovery and claims of deliveries."""
    taken = held = 0
    for size in sizes:
        held += size
        if taken and (held > max_bytes or taken == count):
            break
        taken += 1
    return taken


def cut(items: Sequence[tuple[int, RawInput]], count: int | None,
        max_bytes: int) -> Iterator[Batch]:
    """``items`` in order, cut into batches of at most ``count`` inputs (``None``: any
    number) and ``max_bytes`` bytes (an input larger than that is a batch of its own)."""
    start = 0
    while start < len(items):
        taken = fitting((len(items[i][1].data) for i in range(start, len(items))), max_bytes, count)
        yield list(items[start:start + taken])
        start += taken


class BatchQueue(asyncio.Queue["Batch | None"]):
    """Batches waiting to be processed (``None``: stop), full at ``max_batches`` batches or
    once they hold ``max_bytes`` of input. An empty queue takes a batch of any size."""

    def __init__(self, max_batches: int, max_bytes: int) -> None:
        super().__init__(max_batches)
        self._max_bytes = max_bytes
        self._bytes = 0

    def full(self) -> bool:
        """Whether a put would wait: too many batches, or too many bytes."""
        return super().full() or self._bytes >= self._max_bytes

    def _put(self, item: Batch | None) -> None:
        self._bytes += batch_bytes(item)
        super()._put(item)

    def _get(self) -> Batch | None:
        item = super()._get()
        self._bytes -= batch_bytes(item)
        return item


class Waiting:
    """The batches waiting to be processed, handed out gathered: what is queued behind a
    batch joins it up to ``count`` inputs and ``max_bytes`` (beyond its first input).

    ``None`` is the stop: once put, it is handed out after everything before it.
    """

    def __init__(self, count: int, max_bytes: int, queued_bytes: int) -> None:
        self._queue = BatchQueue(QUEUED_BATCHES, queued_bytes)
        #: batches (and the stop) taken from the queue but not handed out yet, next first
        self._carry: deque[Batch | None] = deque()
        self._count = count
        self._max_bytes = max_bytes

    def full(self) -> bool:
        """Whether :meth:`put` would wait."""
        return self._queue.full()

    async def put(self, batch: Batch | None) -> None:
        """Queue ``batch`` (or the stop), waiting while the queue is full."""
        await self._queue.put(batch)

    def put_nowait(self, batch: Batch) -> None:
        """Queue ``batch`` now (:meth:`full` must be false)."""
        self._queue.put_nowait(batch)

    async def next(self) -> Batch | None:
        """The next batch (waiting for one); ``None``: the stop."""
        first = self._carry.popleft() if self._carry else await self._queue.get()
        return None if first is None else self._gather(first)

    def stop_again(self) -> None:
        """Hand out the stop once more: the run that took it failed before it could stop."""
        self._carry.appendleft(None)

    def next_nowait(self) -> Batch | None:
        """The next batch if one is queued already, else ``None`` (a stop stays queued)."""
        if not self._queued():
            return None
        first = self._take_nowait()
        if first is None:
            self._carry.appendleft(None)
            return None
        return self._gather(first)

    def _gather(self, batch: Batch) -> Batch:
        """``batch`` topped up with what is queued behind it, within the bounds; what does
        not fit is the next batch's start."""
        held = batch_bytes(batch)
        while len(batch) < self._count and self._queued():
            more = self._take_nowait()
            size = batch_bytes(more)
            if more is None or held + size > self._max_bytes:
                self._carry.appendleft(more)
                break
            batch.extend(more)
            held += size
        return batch

    def _queued(self) -> bool:
        """Whether a batch (or the stop) is carried over or queued."""
        return bool(self._carry) or not self._queue.empty()

    def _take_nowait(self) -> Batch | None:
        """The batch carried over, else the next queued one (:meth:`_queued` must be true)."""
        return self._carry.popleft() if self._carry else self._queue.get_nowait()
