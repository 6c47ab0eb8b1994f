"""Reading the sedex receipts folder: record every receipt, then move it away.

Listing, reading and parsing the files, and moving them once recorded, run
through the plugin context's ``offload`` (a worker process): per receipt
that is several times the work of recording it, and the event-loop process
is the one every message passes through. The functions that run there are
module-level and return what went wrong instead of logging it, so the
daemon's own log says it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gateway.api import (
    InputRejected,
    Intake,
    Offload,
    RawInput,
    Receipt,
    ReceiptOutcome,
    ReceiptSink,
    WorkerLost,
    read_file,
    ready_files,
)
from plugins.sedex._files import move_unique
from plugins.sedex.envelope import SedexReceipt, parse_receipt
from plugins.sedex.status import lookup

log = logging.getLogger(__name__)


def to_receipt(r: SedexReceipt, raw: bytes, fallback_at: datetime) -> Receipt:
    """The core's view of a sedex receipt; a schema violation needs review."""
    status = lookup(r.status_code)
    said = f": {r.status_info}" if r.status_info and r.status_info != status.meaning else ""
    info = f"{r.status_code or '?'} {status.meaning}{said} (recipient {r.recipient_id})"
    outcome = status.outcome
    if r.problem is not None:
        outcome = ReceiptOutcome.NEEDS_REVIEW
        info = f"receipt is not valid eCH-0090 v{r.version} ({r.problem}); {info}"
    return Receipt(r.message_id, outcome, r.status_code, info, r.event_date or fallback_at, raw,
                   alert=status.alert)


@dataclass(slots=True)
class ReadBatch:
    """What one pass over the receipts folder found, by file name."""

    found: list[tuple[str, Receipt]] = field(default_factory=list)
    rejected: list[tuple[str, RawInput, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_receipts(folder: str, skip: frozenset[str], limit: int, source: str,
                  max_bytes: int) -> ReadBatch:
    """Read and parse up to ``limit`` receipt files of ``folder``, oldest name first."""
    batch = ReadBatch()
    entries = sorted((e for e in ready_files(Path(folder), suffix=".xml") if e.name not in skip),
                     key=lambda e: e.name)
    for entry in entries[:limit]:
        try:
            data = read_file(entry.path, max_bytes)
        except FileNotFoundError:  # moved away by someone else meanwhile
            continue
        except OSError as exc:
            batch.problems.append(f"cannot read sedex receipt {entry.path}: {exc}")
            continue
        raw = RawInput(source, entry.name, data or b"",
                       {"transport": "sedex", "kind": "receipt", "file_name": entry.name})
        if data is None:
            batch.rejected.append((entry.name, raw, f"receipt file larger than {max_bytes} bytes"))
            continue
        try:
            parsed = parse_receipt(data, max_bytes=max_bytes)
            # without a readable eventDate, the file's time stands in for it
            at = parsed.event_date or datetime.fromtimestamp(entry.stat().st_mtime, UTC)
        except InputRejected as exc:
            batch.rejected.append((entry.name, raw, f"unreadable sedex receipt: {exc}"))
        except FileNotFoundError:  # moved away by someone else meanwhile
            continue
        else:
            batch.found.append((entry.name, to_receipt(parsed, data, at)))
    return batch


def move_files(folder: str, moves: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Move each (name, destination folder); return (name, error) for those that failed.

    A file someone else moved meanwhile is fine.
    """
    failed = []
    for dest in {dest for _name, dest in moves}:
        Path(dest).mkdir(parents=True, exist_ok=True)
    for name, dest in moves:
        try:
            move_unique(Path(os.path.join(folder, name)), Path(dest), make_dir=False)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failed.append((name, f"cannot move it to {dest}: {exc}"))
    return failed


class ReceiptScanner:
    """One partner's receipts folder.

    Matched receipts go to ``archive``, unknown ones to ``archive/unmatched``,
    unreadable ones (after quarantine) to ``archive/rejected``. A stored
    receipt that cannot be moved is skipped until the next start, so it is
    not recorded again on every scan.
    """

    def __init__(self, folder: Path, archive: Path, *, source: str, max_bytes: int, limit: int,
                 offload: Offload) -> None:
        self.folder = folder
        self.archive = archive
        self.source = source
        self.max_bytes = max_bytes
        self.limit = limit
        self.offload = offload
        self.stuck: set[str] = set()

    async def scan(self, sink: ReceiptSink, intake: Intake) -> int:
        """Handle up to ``limit`` receipt files with one ``record`` call; return how many."""
        batch: ReadBatch = await self.offload(read_receipts, str(self.folder),
                                              frozenset(self.stuck), self.limit, self.source,
                                              self.max_bytes)
        for problem in batch.problems:
            log.warning("%s", problem)
        moves: list[tuple[str, str]] = []
        for name, raw, reason in batch.rejected:
            await intake.quarantine(raw, reason)
            moves.append((name, str(self.archive / "rejected")))
        if batch.found:
            matched = await sink.record([receipt for _, receipt in batch.found])
            for (name, _receipt), ok in zip(batch.found, matched, strict=True):
                if not ok:  # the core journals it and alerts (receipt.unmatched) once
                    log.debug("sedex receipt %s answers no attempt of ours: kept in %s",
                              name, self.archive / "unmatched")
                moves.append((name, str(self.archive if ok else self.archive / "unmatched")))
        try:
            failed = await self.offload(move_files, str(self.folder), moves)
        except WorkerLost:  # recorded already: move them here rather than record them again
            failed = move_files(str(self.folder), moves)
        for name, error in failed:
            log.error("sedex receipt %s: %s; skipping it until restart", name, error)
            self.stuck.add(name)
        return len(batch.found) + len(batch.rejected)
