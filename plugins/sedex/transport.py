"""The sedex transport: hands messages to the local sedex client through its folders.

``send`` writes ``data_<ref>.xml`` (or ``.zip`` with attachments) and then
``envl_<ref>.xml`` into the outbox, where ``<ref>`` is the attempt's
``attempt_ref`` and the envelope ``messageId``. ``flush`` makes a batch of
sends durable with one ``syncfs``. ``run`` records receipts and takes
inbound pairs from the inbox.

The outbox is often a network share, which may hang: a batch that is not
written, or not made durable, within ``write_timeout`` is given up on, and its
attempts are unsure (they may have arrived; see ``send_many``). The worker
process or thread stuck in the write is left behind, never waited for.

Partners served by one sedex client may share its receipts folder and its
inbox. Both are read by content, whoever reads them: a receipt by its
``messageId`` and ``recipientId``, an inbound pair by its envelope's
``senderId`` and ``recipientId`` (:class:`~plugins.sedex._inbound.InboxScanner`).
So a shared folder is read by one of its transports at a time (the first
running; another when it stops), not once per partner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from gateway.api import (
    DirWatcher,
    GatewayError,
    Intake,
    OutboundItem,
    PluginContext,
    ReceiptSink,
    RepeatedProblem,
    SendResult,
    TransientError,
    UnsureError,
    WorkerLost,
    in_thread,
    sync_filesystem,
)
from plugins.sedex._inbound import InboxScanner, inbox_partners
from plugins.sedex._outbox import clear_staging, template, write_attempt, write_attempts
from plugins.sedex._receipts import ReceiptScanner
from plugins.sedex.options import SedexOptions

log = logging.getLogger(__name__)

#: The most files one scan handles; a full scan is followed at once by the next.
SCAN_LIMIT = 1000


class _SharedFolders:
    """Folders that running transports of this process may share, each read by one at a time."""

    def __init__(self) -> None:
        #: Each folder (resolved) with its running transports in start order: the first reads it.
        self.readers: dict[Path, list[SedexTransport]] = {}

    @contextmanager
    def join(self, folder: Path, transport: SedexTransport) -> Iterator[Callable[[], bool]]:
        """Count ``transport`` among the readers of ``folder`` while in the block.

        Yields a test of whether it is the one reading the folder now.
        """
        key = folder.resolve()
        readers = self.readers.setdefault(key, [])
        readers.append(transport)
        try:
            yield lambda: readers[0] is transport
        finally:
            readers.remove(transport)
            if not readers:
                del self.readers[key]


#: The receipts folders and the inboxes of running transports.
_RECEIPT_READERS, _INBOX_READERS = _SharedFolders(), _SharedFolders()


class SedexTransport:
    """The sedex file interface for one partner (``context.name``)."""

    def __init__(self, options: SedexOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        limits = context.normalise
        self.receipt_scanner = ReceiptScanner(
            options.receipts, options.receipts_done,
            source=context.name, max_bytes=limits.max_bytes, limit=SCAN_LIMIT,
            settle=options.settle, grace=options.grace, offload=context.offload,
        )
        self.inbox_scanner = InboxScanner(
            options.inbox, options.processed,
            partners=inbox_partners(context.settings, context.name, options),
            max_bytes=limits.max_bytes,
            max_kept=limits.max_kept_bytes, settle=options.settle, grace=options.grace,
            pair_grace=options.pair_grace, limit=SCAN_LIMIT,
        )
        self._offload = context.offload
        #: Batches written, and how many of them the last successful sync covered.
        self._written = self._synced = 0
        self._writing = RepeatedProblem(log, f"sedex partner {self.name}: writing into the"
                                             f" outbox {options.outbox}")
        clear_staging(options.staging_dir)
        template(options)  # a configuration sedex would refuse fails here, at start

    async def send(self, item: OutboundItem) -> SendResult:
        """Put one attempt into the outbox (see :func:`~plugins.sedex._outbox.write_attempt`)."""
        try:
            return write_attempt(self.options, item)
        finally:
            self._written += 1

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        """Put a batch into the outbox, in a worker process: the event loop goes on meanwhile.

        If the worker dies, the batch is written in a thread of this process, as the
        same attempts: files it wrote already count as sent (see ``resumed``), none
        twice. A batch not written within ``write_timeout`` (a file system that
        hangs) is given up on: each attempt is an :class:`UnsureError`, repeated
        later as the same attempt, which skips what arrived meanwhile.
        """
        limit = self.options.write_timeout
        try:
            try:
                results = await self._offload(write_attempts, self.options, items, timeout=limit)
            except WorkerLost as exc:
                log.error("sedex partner %s: %s; writing the batch in this process", self.name, exc)
                results = await in_thread(write_attempts, self.options,
                                          [replace(i, resumed=True) for i in items], timeout=limit)
        except TimeoutError:
            self._writing.failed(f"not done within {limit:g}s (does its file system hang?);"
                                 " the attempts are repeated later, none written twice")
            unsure = UnsureError(f"the sedex outbox {self.options.outbox} did not take the"
                                 f" files within {limit:g}s; they may have arrived")
            return [unsure] * len(items)
        finally:
            self._written += 1
        self._writing.ok()
        return results

    async def flush(self) -> None:
        """Make every file sent so far durable (one ``syncfs``), if ``sync`` is on.

        Batches may overlap (dispatch rounds in flight): a flush syncs what
        was written before it was called, unless a later sync already has.

        :raises TransientError: the kernel reported a write-back error, or the sync
            did not finish within ``write_timeout`` (its thread is left behind).
        """
        target = self._written
        if not self.options.sync or self._synced >= target:
            return
        limit = self.options.write_timeout
        try:
            await in_thread(sync_filesystem, self.options.outbox, timeout=limit)
        except TimeoutError:
            raise TransientError(f"syncfs of the sedex outbox {self.options.outbox} did not"
                                 f" finish within {limit:g}s (does its file system hang?)") from None
        except OSError as exc:
            raise TransientError(f"cannot make the sedex outbox durable: {exc}") from exc
        self._synced = max(self._synced, target)

    async def scan_receipts(self, receipts: ReceiptSink, intake: Intake) -> int:
        """One pass over the receipts folder; returns the number of files handled."""
        count = await self.receipt_scanner.scan(receipts, intake)
        if count and self.options.sync:
            await asyncio.to_thread(sync_filesystem, self.options.receipts_done)
        return count

    async def scan_inbox(self, intake: Intake) -> int:
        """One pass over the inbox; returns the number of pairs and lone files handled."""
        count = await self.inbox_scanner.scan(intake)
        if count and self.options.sync:
            await asyncio.to_thread(sync_filesystem, self.options.processed)
        return count

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Record receipts and take inbound messages until cancelled.

        A receipts folder or inbox that another running transport of this
        process reads already (a partner of the same sedex client) is left to
        it, until it stops.
        """
        with (_RECEIPT_READERS.join(self.options.receipts, self) as reads_receipts,
              _INBOX_READERS.join(self.options.inbox, self) as reads_inbox):

            async def scan_receipts() -> int:
                return await self.scan_receipts(receipts, intake) if reads_receipts() else 0

            async def scan_inbox() -> int:
                return await self.scan_inbox(intake) if reads_inbox() else 0

            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._loop(self.options.receipts, scan_receipts,
                                             lambda: self.receipt_scanner.taker.wake))
                tasks.create_task(self._loop(self.options.inbox, scan_inbox,
                                             lambda: self.inbox_scanner.taker.wake))

    async def _loop(self, folder: Path, scan: Callable[[], Awaitable[int]],
                    wake: Callable[[], float | None]) -> None:
        watcher = DirWatcher(folder, self.options.poll_interval)
        watcher.start()
        problem = RepeatedProblem(log, f"sedex partner {self.name}: scanning {folder}")
        try:
            while True:
                try:
                    full = await scan() >= SCAN_LIMIT
                    problem.ok()
                except (OSError, GatewayError) as exc:
                    problem.failed(exc)
                    full = False
                if not full:
                    await watcher.wait(wake())
        finally:
            watcher.stop()
