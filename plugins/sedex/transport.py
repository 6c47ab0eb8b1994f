"""The sedex transport: hands messages to the local sedex client through its folders.

``send`` writes ``data_<ref>.xml`` (or ``.zip`` with attachments) and then
``envl_<ref>.xml`` into the outbox, where ``<ref>`` is the attempt's
``attempt_ref`` and the envelope ``messageId``. ``flush`` makes a batch of
sends durable with one ``syncfs``. ``run`` records receipts and takes
inbound pairs from the inbox.

The outbox is often a network share, which may hang: a batch that is not
written, or not made durable, within ``write_timeout`` is given up on, and its
attempts are unsure (they may have arrived; see ``send_many``): a
:class:`~gateway.api.LocalHang`, which pauses the partner until ``probe`` finds
the outbox answering again. The worker process or thread stuck in the write is
left behind, never waited for. So are the clearing of the staging folder at
start and the syncs of ``receipts_archive`` and ``processed``: each is given
up on after ``write_timeout`` and tried again later, and nothing else waits
for it.

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
    BoundedCalls,
    DirWatcher,
    GatewayError,
    Intake,
    LocalFault,
    LocalHang,
    OutboundItem,
    PluginContext,
    ReceiptSink,
    RepeatedProblem,
    SendResult,
    TransientError,
    WorkerLost,
    in_thread,
    sync_filesystem,
)
from plugins.sedex._inbound import InboxScanner
from plugins.sedex._outbox import (
    clear_staging,
    template,
    try_outbox,
    write_attempt,
    write_attempts,
)
from plugins.sedex._receipts import ReceiptScanner
from plugins.sedex.inbox_partners import inbox_partners
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
    def join(self, key: Path, transport: SedexTransport) -> Iterator[Callable[[], bool]]:
        """Count ``transport`` among the readers of the folder ``key`` (resolved) while in
        the block.

        Yields a test of whether it is the one reading the folder now.
        """
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


class _FolderSync:
    """Making the files moved into a folder durable (one ``syncfs``), for up to ``timeout``
    seconds: a sync that failed or was given up on is tried again at the next scan."""

    def __init__(self, folder: Path, what: str, timeout: float) -> None:
        self.folder = folder
        self.what = what
        self.calls = BoundedCalls(timeout)
        self.due = False

    async def __call__(self, moved: int) -> None:
        """Sync if files were ``moved`` in, or the last sync failed.

        :raises TransientError: it failed, or did not finish in time (its file system hangs).
        """
        if not (moved or self.due):
            return
        self.due = True
        try:
            await self.calls(sync_filesystem, self.folder)
        except TimeoutError as exc:
            raise TransientError(f"syncfs of the {self.what} {self.folder}: {exc}; tried again"
                                 " at the next scan") from None
        except OSError as exc:
            raise TransientError(f"cannot make the {self.what} {self.folder} durable: {exc};"
                                 " tried again at the next scan") from exc
        self.due = False


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
            timeout=options.write_timeout,
        )
        self.inbox_scanner = InboxScanner(
            options.inbox, options.processed,
            partners=inbox_partners(context.settings, context.name, options),
            max_bytes=limits.max_bytes,
            max_kept=limits.max_kept_bytes, settle=options.settle, grace=options.grace,
            pair_grace=options.pair_grace, limit=SCAN_LIMIT, timeout=options.write_timeout,
        )
        self._offload = context.offload
        #: Batches written, and how many of them the last successful sync covered.
        self._written = self._synced = 0
        self._writing = RepeatedProblem(log, f"sedex partner {self.name}: writing into the"
                                             f" outbox {options.outbox}")
        #: Calls into the outbox's file system in threads of this process, bounded.
        self._outbox = BoundedCalls(options.write_timeout)
        self._staging_cleared = False
        self._staging_lock = asyncio.Lock()
        self._sync_receipts_done = _FolderSync(options.receipts_done, "receipts archive",
                                               options.write_timeout)
        self._sync_processed = _FolderSync(options.processed, "processed folder",
                                           options.write_timeout)
        template(options)  # a configuration sedex would refuse fails here, at start
        #: The receipts folder and the inbox, resolved: which other transports read them too.
        #: Here, at start, as the options were checked: on the event loop, a share that
        #: hangs would hold it up.
        self._receipts_key, self._inbox_key = options.receipts.resolve(), options.inbox.resolve()

    async def _clear_staging(self) -> None:
        """Clear the staging folder once, before anything is written into it: what an
        earlier run left there half-written goes.

        :raises LocalFault: it cannot be cleared, or not within ``write_timeout`` (the
            outbox hangs); the next call tries again.
        """
        async with self._staging_lock:
            if self._staging_cleared:
                return
            staging, outbox = self.options.staging_dir, self.options.outbox
            try:
                await self._outbox(clear_staging, staging)
            except TimeoutError as exc:
                raise LocalFault(f"the sedex outbox {outbox} does not answer: clearing its"
                                 f" staging folder {staging}: {exc}") from None
            except OSError as exc:
                raise LocalFault(f"cannot clear the staging folder {staging} of the sedex"
                                 f" outbox {outbox}: {exc.strerror or exc}") from exc
            self._staging_cleared = True

    async def _prepare_outbox(self) -> None:
        """At start: clear the staging folder, or say why the partner waits."""
        try:
            await self._clear_staging()
        except LocalFault as exc:
            log.error("sedex partner %s waits: %s; it is paused at its next send and probed"
                      " until the outbox answers (the other partners and the intake go on)",
                      self.name, exc)

    async def probe(self) -> None:
        """Whether the outbox takes files again (:func:`~plugins.sedex._outbox.try_outbox`),
        within ``write_timeout``, in a thread: a paused partner's probe sends nothing
        before it does. A check that hung is not repeated before it returned.

        :raises LocalFault: the outbox is missing, cannot take a file, or does not answer.
        """
        await self._clear_staging()
        outbox = self.options.outbox
        try:
            await self._outbox(try_outbox, self.options)
        except TimeoutError as exc:
            raise LocalFault(f"the sedex outbox {outbox} does not answer: writing a test file"
                             f" into {self.options.staging_dir}: {exc}") from None
        except OSError as exc:
            raise LocalFault(f"cannot write to the sedex outbox {outbox}:"
                             f" {exc.strerror or exc}") from exc

    async def send(self, item: OutboundItem) -> SendResult:
        """Put one attempt into the outbox (see :func:`~plugins.sedex._outbox.write_attempt`)."""
        await self._clear_staging()
        try:
            return write_attempt(self.options, item)
        finally:
            self._written += 1

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        """Put a batch into the outbox, in a worker process: the event loop goes on meanwhile.

        If the worker dies, the batch is written in a thread of this process, as the
        same attempts: files it wrote already count as sent (see ``resumed``), none
        twice. A batch not written within ``write_timeout`` (a file system that
        hangs) is given up on: each attempt is a :class:`LocalHang` (unsure), the partner
        is paused, and the attempt is repeated as the same one once the outbox answers,
        skipping what arrived meanwhile.

        :raises LocalFault: the staging folder cannot be cleared (nothing is written).
        """
        await self._clear_staging()
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
                                 " the partner is paused until the outbox answers, then the"
                                 " attempts are repeated, none written twice")
            hang = LocalHang(f"the sedex outbox {self.options.outbox} did not take the"
                             f" files within {limit:g}s; they may have arrived")
            return [hang] * len(items)
        finally:
            self._written += 1
        self._writing.ok()
        return results

    async def flush(self) -> None:
        """Make every file sent so far durable (one ``syncfs``), if ``sync`` is on.

        Batches may overlap (dispatch rounds in flight): a flush syncs what
        was written before it was called, unless a later sync already has.

        :raises TransientError: the kernel reported a write-back error.
        :raises LocalHang: the sync did not finish within ``write_timeout`` (its thread is
            left behind), or one given up on before has not returned yet.
        """
        target = self._written
        if not self.options.sync or self._synced >= target:
            return
        try:
            await self._outbox(sync_filesystem, self.options.outbox)
        except TimeoutError as exc:
            raise LocalHang(f"syncfs of the sedex outbox {self.options.outbox}: {exc}") from None
        except OSError as exc:
            raise TransientError(f"cannot make the sedex outbox durable: {exc}") from exc
        self._synced = max(self._synced, target)

    async def scan_receipts(self, receipts: ReceiptSink, intake: Intake) -> int:
        """One pass over the receipts folder; returns the number of files handled."""
        count = await self.receipt_scanner.scan(receipts, intake)
        if self.options.sync:
            await self._sync_receipts_done(count)
        return count

    async def scan_inbox(self, intake: Intake) -> int:
        """One pass over the inbox; returns the number of pairs and lone files handled."""
        count = await self.inbox_scanner.scan(intake)
        if self.options.sync:
            await self._sync_processed(count)
        return count

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Record receipts and take inbound messages until cancelled.

        A receipts folder or inbox that another running transport of this
        process reads already (a partner of the same sedex client) is left to
        it, until it stops. The staging folder is cleared meanwhile (an outbox
        that hangs holds up neither).
        """
        with (_RECEIPT_READERS.join(self._receipts_key, self) as reads_receipts,
              _INBOX_READERS.join(self._inbox_key, self) as reads_inbox):

            async def scan_receipts() -> int:
                return await self.scan_receipts(receipts, intake) if reads_receipts() else 0

            async def scan_inbox() -> int:
                return await self.scan_inbox(intake) if reads_inbox() else 0

            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._prepare_outbox())
                tasks.create_task(self._loop(self.options.receipts, scan_receipts,
                                             lambda: self.receipt_scanner.taker.wake,
                                             self.receipt_scanner.calls))
                tasks.create_task(self._loop(self.options.inbox, scan_inbox,
                                             lambda: self.inbox_scanner.taker.wake,
                                             self.inbox_scanner.calls))

    async def _loop(self, folder: Path, scan: Callable[[], Awaitable[int]],
                    wake: Callable[[], float | None], calls: BoundedCalls) -> None:
        """Scan ``folder`` until cancelled; a failure is said once (and every 5 minutes), its
        end once ``calls`` into the folder are no longer in doubt."""
        watcher = DirWatcher(folder, self.options.poll_interval)
        problem = RepeatedProblem(log, f"sedex partner {self.name}: scanning {folder}")
        try:
            while True:
                try:
                    await watcher.start(calls)
                    full = await scan() >= SCAN_LIMIT
                    if not calls.in_doubt:
                        problem.ok()
                except (OSError, GatewayError) as exc:
                    problem.failed(exc)
                    full = False
                if not full:
                    await watcher.wait(wake())
        finally:
            watcher.stop()
