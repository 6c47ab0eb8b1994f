"""The sedex transport: hands messages to the local sedex client through its folders.

``send`` writes ``data_<ref>.xml`` (or ``.zip`` with attachments) and then
``envl_<ref>.xml`` into the outbox, where ``<ref>`` is the attempt's
``attempt_ref`` and the envelope ``messageId``. ``flush`` makes a batch of
sends durable with one ``syncfs``. ``run`` records receipts and takes
inbound pairs from the inbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from gateway.archive import build_zip
from gateway.contracts import Intake, OutboundItem, PluginContext, ReceiptSink, SendResult
from gateway.dirwatch import DirWatcher
from gateway.errors import GatewayError, PermanentError, TransientError
from plugins.sedex._files import sync_filesystem, write_then_rename
from plugins.sedex._inbound import InboxScanner
from plugins.sedex._receipts import ReceiptScanner
from plugins.sedex.envelope import MESSAGE_ID, EnvelopeTemplate
from plugins.sedex.options import SedexOptions

log = logging.getLogger(__name__)

#: Name of the eCH-0223 message inside a zip payload (attachments are under ``files/``).
ZIP_MESSAGE_NAME = "message.xml"
#: The most files one scan handles; a full scan is followed at once by the next.
SCAN_LIMIT = 1000


class SedexTransport:
    """The sedex file interface for one partner (``context.name``)."""

    def __init__(self, options: SedexOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        limits = context.normalise
        self.receipt_scanner = ReceiptScanner(
            options.receipts, options.receipts_done,
            source=context.name, max_bytes=limits.max_bytes, limit=SCAN_LIMIT,
            offload=context.offload,
        )
        self.inbox_scanner = InboxScanner(
            options.inbox, options.processed, source=context.name, max_bytes=limits.max_bytes,
            max_payload=max(limits.max_bytes, limits.max_zip_bytes),
            grace=options.pair_grace, limit=SCAN_LIMIT,
        )
        self._unsynced = False
        _clear_staging(options.staging_dir)
        self._template = EnvelopeTemplate(options.message_type, options.message_class,
                                          options.sender_id, (options.recipient_id,),
                                          options.envelope_version)

    def _envelope(self, item: OutboundItem, now: datetime) -> bytes:
        event = item.event_date or now
        if event.tzinfo is None:
            event = event.astimezone()
        return self._template.render(item.attempt_ref, event, now)

    async def send(self, item: OutboundItem) -> SendResult:
        """Put the attempt into the outbox (see :meth:`write`)."""
        return self.write(item)

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        """Put a batch into the outbox, in a thread: the event loop goes on meanwhile."""
        return await asyncio.to_thread(self._write_all, items)

    def _write_all(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        results: list[SendResult | GatewayError] = []
        now = datetime.now().astimezone()  # the batch's messageDate
        for item in items:
            try:
                results.append(self.write(item, now))
            except (TransientError, PermanentError) as exc:
                results.append(exc)
        return results

    def write(self, item: OutboundItem, now: datetime | None = None) -> SendResult:
        """Put the attempt into the outbox: payload first, envelope last.

        A repeated attempt (``item.resumed``) whose envelope is already in the
        outbox or in ``processed`` is not written again.

        :raises PermanentError: the envelope or zip cannot be built.
        :raises TransientError: the outbox cannot be written (disk full, permissions).
        """
        ref = item.attempt_ref
        if not MESSAGE_ID.fullmatch(ref):
            raise PermanentError(f"attempt_ref {ref!r} cannot be a sedex messageId")
        outbox = self.options.outbox
        envl_name = f"envl_{ref}.xml"
        if item.resumed and ((outbox / envl_name).exists()
                             or (self.options.processed / envl_name).exists()):
            return SendResult(awaits_receipt=True, detail=f"{envl_name} already handed to sedex")
        try:
            envelope = self._envelope(item, now or datetime.now().astimezone())
            if item.attachments:
                payload, ext = build_zip(ZIP_MESSAGE_NAME, item.payload, item.attachments), "zip"
            else:
                payload, ext = item.payload, "xml"
        except ValueError as exc:
            raise PermanentError(f"sedex would refuse this message: {exc}") from exc
        try:
            self._unsynced = True
            staging = self.options.staging_dir
            write_then_rename(outbox, f".tmp-{ref}-data", f"data_{ref}.{ext}", payload,
                              staging=staging)
            write_then_rename(outbox, f".tmp-{ref}-envl", envl_name, envelope, staging=staging)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TransientError(f"cannot write to the sedex outbox {outbox}: {reason}") from exc
        return SendResult(awaits_receipt=True, detail=f"{envl_name} in the sedex outbox")

    async def flush(self) -> None:
        """Make every file ``send`` wrote durable (one ``syncfs``), if ``sync`` is on.

        :raises TransientError: the kernel reported a write-back error.
        """
        if not (self.options.sync and self._unsynced):
            return
        self._unsynced = False
        try:
            await asyncio.to_thread(sync_filesystem, self.options.outbox)
        except OSError as exc:
            self._unsynced = True
            raise TransientError(f"cannot make the sedex outbox durable: {exc}") from exc

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
        """Record receipts and take inbound messages until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                self._loop(self.options.receipts, lambda: self.scan_receipts(receipts, intake)))
            tasks.create_task(self._loop(self.options.inbox, lambda: self.scan_inbox(intake)))

    async def _loop(self, folder: Path, scan: Callable[[], Awaitable[int]]) -> None:
        watcher = DirWatcher(folder, self.options.poll_interval)
        watcher.start()
        try:
            while True:
                try:
                    full = await scan() >= SCAN_LIMIT
                except (OSError, GatewayError) as exc:
                    log.error("sedex partner %s: scanning %s failed: %s", self.name, folder, exc)
                    full = False
                if not full:
                    await watcher.wait()
        finally:
            watcher.stop()


def _clear_staging(staging: Path) -> None:
    """Create the staging folder; remove what a previous run left half-written."""
    staging.mkdir(parents=True, exist_ok=True)
    for leftover in staging.iterdir():
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
