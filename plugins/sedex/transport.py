"""The sedex transport: hands messages to the local sedex client through its folders.

``send`` writes ``data_<ref>.xml`` (or ``.zip`` with attachments) and then
``envl_<ref>.xml`` into the outbox, where ``<ref>`` is the attempt's
``attempt_ref`` and the envelope ``messageId``. ``flush`` makes a batch of
sends durable with one ``syncfs``. ``run`` records receipts and takes
inbound pairs from the inbox.

Partners served by one sedex client may share its receipts folder: receipts
are matched by content (``messageId`` and ``recipientId``), whoever reads
them, so the folder is read by one of them at a time (the first running), not
recorded once per partner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
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
    WorkerLost,
    sync_filesystem,
)
from plugins.sedex._inbound import InboxScanner
from plugins.sedex._outbox import clear_staging, template, write_attempt, write_attempts
from plugins.sedex._receipts import ReceiptScanner
from plugins.sedex.options import SedexOptions

log = logging.getLogger(__name__)

#: The most files one scan handles; a full scan is followed at once by the next.
SCAN_LIMIT = 1000

#: The receipts folders of running transports (resolved), each with its transports in
#: start order: the first reads it.
_RECEIPT_READERS: dict[Path, list[SedexTransport]] = {}


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
            options.inbox, options.processed, source=context.name, max_bytes=limits.max_bytes,
            max_kept=limits.max_kept_bytes, settle=options.settle, grace=options.grace,
            pair_grace=options.pair_grace, limit=SCAN_LIMIT,
        )
        self._offload = context.offload
        #: Batches written, and how many of them the last successful sync covered.
        self._written = self._synced = 0
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

        If the worker dies, the batch is written here, as the same attempts:
        files it wrote already count as sent (see ``resumed``), none twice.
        """
        try:
            return await self._offload(write_attempts, self.options, items)
        except WorkerLost as exc:
            log.error("sedex partner %s: %s; writing the batch in this process", self.name, exc)
            return write_attempts(self.options, [replace(i, resumed=True) for i in items])
        finally:
            self._written += 1

    async def flush(self) -> None:
        """Make every file sent so far durable (one ``syncfs``), if ``sync`` is on.

        Batches may overlap (dispatch rounds in flight): a flush syncs what
        was written before it was called, unless a later sync already has.

        :raises TransientError: the kernel reported a write-back error.
        """
        target = self._written
        if not self.options.sync or self._synced >= target:
            return
        try:
            await asyncio.to_thread(sync_filesystem, self.options.outbox)
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

        A receipts folder another running transport of this process reads
        already (a partner of the same sedex client) is left to it, until it stops.
        """
        folder = self.options.receipts.resolve()
        readers = _RECEIPT_READERS.setdefault(folder, [])
        readers.append(self)

        async def scan_receipts() -> int:
            return await self.scan_receipts(receipts, intake) if readers[0] is self else 0

        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._loop(self.options.receipts, scan_receipts,
                                             lambda: self.receipt_scanner.taker.wake))
                tasks.create_task(self._loop(
                    self.options.inbox, lambda: self.scan_inbox(intake),
                    lambda: self.inbox_scanner.taker.wake))
        finally:
            readers.remove(self)
            if not readers:
                del _RECEIPT_READERS[folder]

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
