"""Reading the sedex receipts folder: record every finished receipt, then move it away.

Listing, reading and parsing the files, and moving them once recorded, run
through the plugin context's ``offload`` (a worker process): per receipt
that is several times the work of recording it, and the event-loop process
is the one every message passes through. The functions that run there are
module-level and return what went wrong instead of logging it, so the
daemon's own log says it.

The receipts folder is often a network share, which may hang: each of those
calls is given up on after ``timeout`` seconds (its worker killed and
replaced; :class:`~gateway.api.BoundedCalls`), and the scan with it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from gateway.api import (
    DOCUMENT_LIMIT,
    MOVED_TO,
    BoundedCalls,
    FileTaker,
    InputRejected,
    Intake,
    Offload,
    RawInput,
    Receipt,
    ReceiptOutcome,
    ReceiptSink,
    Stored,
    TooLarge,
    TransientError,
    Unfinished,
    WorkerLost,
    counted,
    display_name,
    finish,
)
from plugins.sedex.envelope import SedexReceipt, parse_receipt
from plugins.sedex.status import lookup

log = logging.getLogger(__name__)


def to_receipt(r: SedexReceipt, raw: bytes, fallback_at: datetime) -> Receipt:
    """The core's view of a sedex receipt: its ``statusCode`` decides.

    It answers the attempt of its ``messageId`` if that attempt was addressed to
    its ``recipientId`` (one receipts folder may serve several partners). A schema
    problem needs review; a schema warning is only said in ``info``.
    """
    status = lookup(r.status_code)
    said = f": {r.status_info}" if r.status_info and r.status_info != status.meaning else ""
    info = f"{r.status_code or '?'} {status.meaning}{said} (recipient {r.recipient_id})"
    outcome = status.outcome
    if r.problem is not None:
        outcome = ReceiptOutcome.NEEDS_REVIEW
        info = f"receipt is not valid eCH-0090 v{r.version} ({r.problem}); {info}"
    elif r.warning is not None:
        info = f"{info}; schema warning, eCH-0090 v{r.version}: {r.warning}"
    return Receipt(r.message_id, outcome, r.status_code, info, r.event_date or fallback_at, raw,
                   alert=status.alert, recipient=r.recipient_id or None)


@dataclass(slots=True)
class ReadBatch:
    """What one pass over the receipts folder found, with the files they came from.

    ``taker`` is the folder's :class:`~gateway.api.FileTaker` as the pass
    left it (the pass runs in a worker process).
    """

    taker: FileTaker
    found: list[tuple[Stored, Receipt]] = field(default_factory=list)
    rejected: list[tuple[Stored, RawInput, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_receipts(taker: FileTaker, limit: int, source: str, max_bytes: int) -> ReadBatch:
    """Read and parse up to ``limit`` settled receipt files, oldest name first."""
    batch = ReadBatch(taker)
    listing = taker.scan()
    batch.problems += listing.notes
    for ready in sorted(listing.ready, key=lambda r: r.name)[:limit]:
        try:
            got = taker.read(ready, max_bytes)
        except OSError as exc:
            batch.problems.append(f"cannot read sedex receipt {ready.where}: {exc}")
            continue
        if got is None:
            continue
        meta = {"transport": "sedex", "kind": "receipt", "file_name": ready.shown}
        if isinstance(got, TooLarge):
            try:
                kept = taker.evidence(ready, 0)
            except OSError as exc:
                batch.problems.append(f"cannot keep evidence of sedex receipt {ready.where}"
                                      f" (larger than the limit): {exc}")
                continue
            if kept is not None:
                evidence, stored = kept
                batch.rejected.append((stored, RawInput(source, ready.shown, b"",
                                                        {**meta, **evidence.meta()}),
                                       f"receipt file larger than {DOCUMENT_LIMIT}"
                                       f" ({max_bytes} bytes)"))
            continue
        raw = RawInput(source, ready.shown, got.data, meta)
        if isinstance(got, Unfinished):
            batch.rejected.append((got.stored, raw, f"unreadable sedex receipt: {got.reason}"))
            continue
        try:
            parsed = parse_receipt(got.data, max_bytes=max_bytes)
        except InputRejected as exc:
            batch.rejected.append((got.stored, raw, f"unreadable sedex receipt: {exc}"))
            continue
        if parsed.warning is not None:
            batch.problems.append(f"sedex receipt {ready.where} for {parsed.message_id} is taken"
                                  f" despite a schema warning: {parsed.warning}")
        # without a readable eventDate, the file's time stands in for it
        at = parsed.event_date or datetime.fromtimestamp(ready.version.mtime_ns / 1e9, UTC)
        batch.found.append((got.stored, to_receipt(parsed, got.data, at)))
    return batch


class ReceiptScanner:
    """One partner's receipts folder.

    Receipt files are taken once settled and finished (see
    :class:`~gateway.api.FileTaker`). Matched receipts go to ``archive``,
    unmatched ones (a messageId of no attempt of ours, or of one addressed to
    another recipientId) to ``archive/unmatched``, unreadable or unfinished ones
    (after quarantine) to ``archive/rejected``. A stored receipt that cannot
    be moved, or whose move was given up on, is skipped until the next start,
    so it is not recorded again on every scan.
    """

    def __init__(self, folder: Path, archive: Path, *, source: str, max_bytes: int, limit: int,
                 settle: float, grace: float, offload: Offload, timeout: float) -> None:
        self.folder = folder
        self.archive = archive
        self.source = source
        self.max_bytes = max_bytes
        self.limit = limit
        #: Calls into the receipts folder and the archive, in worker processes, bounded.
        self.calls = BoundedCalls(timeout, offload)
        self.taker = FileTaker(folder, ("*.xml",), settle, grace)

    async def scan(self, sink: ReceiptSink, intake: Intake) -> int:
        """Handle up to ``limit`` receipt files with one ``record`` call; return how many.

        :raises TransientError: the folder did not answer within ``timeout``.
        """
        try:
            batch: ReadBatch = await self.calls.offload(
                read_receipts, self.taker, self.limit, self.source, self.max_bytes,
                doing=f"reading the receipts in {self.folder}")
        except TimeoutError as exc:
            raise TransientError(str(exc)) from None
        self.taker = batch.taker
        for problem in batch.problems:
            log.warning("%s", problem)
        moves: list[tuple[list[Stored], Path | None]] = []
        for stored, raw, reason in batch.rejected:
            rejected = self.archive / "rejected"
            await intake.quarantine(replace(raw, meta={**raw.meta, MOVED_TO: str(rejected)}),
                                    reason)
            moves.append(([stored], rejected))
        if batch.found:
            matched = await sink.record([receipt for _, receipt in batch.found])
            for (stored, _receipt), ok in zip(batch.found, matched, strict=True):
                if not ok:  # the core journals it and alerts (receipt.unmatched) once
                    log.debug("sedex receipt %s answers no attempt of ours: kept in %s",
                              display_name(os.path.basename(stored.path)),
                              self.archive / "unmatched")
                moves.append(([stored], self.archive if ok else self.archive / "unmatched"))
        await self._move(moves)
        return len(batch.found) + len(batch.rejected)

    async def _move(self, moves: list[tuple[list[Stored], Path | None]]) -> None:
        """Move recorded receipts away; ones whose move was given up on are not taken again."""
        if not moves:
            return
        doing = f"moving {counted(sum(len(m[0]) for m in moves), 'receipt')} into {self.archive}"
        try:
            try:
                lefts = await self.calls.offload(finish, moves, doing=doing)
            except WorkerLost:  # recorded already: move them here rather than record them again
                lefts = await self.calls(finish, moves, doing=doing)
        except TimeoutError as exc:
            self.taker.skip.update(os.path.basename(s.path) for stored, _ in moves for s in stored)
            raise TransientError(str(exc)) from None
        for message in self.taker.left(lefts):
            log.error("sedex receipts: %s", message)
