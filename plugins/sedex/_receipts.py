"""Reading the sedex receipts folder: record every receipt, then move it away."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from gateway.contracts import Intake, RawInput, Receipt, ReceiptOutcome, ReceiptSink
from gateway.dirwatch import ready_files
from gateway.errors import InputRejected
from gateway.fileio import read_file
from plugins.sedex._files import move_done
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
    if status.alert:
        log.warning("sedex receipt %s (%s) for message %s",
                    r.status_code, status.meaning, r.message_id)
    return Receipt(r.message_id, outcome, r.status_code, info, r.event_date or fallback_at, raw)


class ReceiptScanner:
    """One partner's receipts folder.

    Matched receipts go to ``archive``, unknown ones to ``archive/unmatched``,
    unreadable ones (after quarantine) to ``archive/rejected``.
    """

    def __init__(
        self, folder: Path, archive: Path, *, source: str, max_bytes: int, limit: int
    ) -> None:
        self.folder = folder
        self.archive = archive
        self.source = source
        self.max_bytes = max_bytes
        self.limit = limit
        self.stuck: set[str] = set()

    async def scan(self, sink: ReceiptSink, intake: Intake) -> int:
        """Handle up to ``limit`` receipt files with one ``record`` call; return how many."""
        entries = sorted((e for e in ready_files(self.folder, suffix=".xml")
                          if e.name not in self.stuck), key=lambda e: e.name)
        found: list[tuple[Path, Receipt]] = []
        rejected: list[tuple[Path, RawInput, str]] = []
        for entry in entries[: self.limit]:
            path = Path(entry.path)
            try:
                data = read_file(path, self.max_bytes)
                mtime = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            except FileNotFoundError:  # moved away by someone else meanwhile
                continue
            except OSError as exc:
                log.warning("cannot read sedex receipt %s: %s", path, exc)
                continue
            raw = RawInput(self.source, entry.name, data or b"",
                           {"transport": "sedex", "kind": "receipt", "file_name": entry.name})
            if data is None:
                rejected.append((path, raw, f"receipt file larger than {self.max_bytes} bytes"))
                continue
            try:
                parsed = parse_receipt(data, max_bytes=self.max_bytes)
            except InputRejected as exc:
                rejected.append((path, raw, f"unreadable sedex receipt: {exc}"))
            else:
                found.append((path, to_receipt(parsed, data, mtime)))
        for path, raw, reason in rejected:
            await intake.quarantine(raw, reason)
            move_done(path, self.archive / "rejected", self.stuck)
        if found:
            matched = await sink.record([receipt for _, receipt in found])
            for (path, receipt), ok in zip(found, matched, strict=True):
                if ok:
                    move_done(path, self.archive, self.stuck)
                else:
                    log.warning("sedex receipt for unknown message %s (status %s): %s",
                                receipt.attempt_ref, receipt.code, path.name)
                    move_done(path, self.archive / "unmatched", self.stuck)
        return len(found) + len(rejected)
