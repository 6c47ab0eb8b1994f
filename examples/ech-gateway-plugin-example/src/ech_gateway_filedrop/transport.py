"""The filedrop transport: each attempt becomes ``<attempt_ref>.xml`` in a folder.

The partner confirms by writing ``<attempt_ref>.ok`` (delivered) or
``<attempt_ref>.failed`` (refused, the text says why) into the receipts
folder. It imports from ``gateway.api`` only, as every plugin should.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from gateway.api import (
    Duration,
    Intake,
    LocalFault,
    OutboundItem,
    PermanentError,
    PluginContext,
    PluginOptions,
    Receipt,
    ReceiptOutcome,
    ReceiptSink,
    SendResult,
    in_thread,
    write_all,
)

#: Receipt file suffixes and what they mean.
OUTCOMES = {".ok": ReceiptOutcome.DELIVERED, ".failed": ReceiptOutcome.FAILED_PERMANENT}
#: The most bytes of a receipt file that are read (its text is the partner's explanation).
MAX_RECEIPT_BYTES = 64 << 10


class FiledropOptions(PluginOptions):
    """The keys of ``[partners.<name>.filedrop]`` (unknown keys are refused)."""

    folder: Path = Field(description="where each message is written as <attempt>.xml")
    receipts: Path | None = Field(
        None, description="where the partner writes <attempt>.ok or .failed;"
        " default: the receipts folder inside folder")
    poll_interval: Duration = Field(1.0, gt=0, description="how often receipts are looked for")


class FiledropTransport:
    """Delivers to one partner's folder and reports the partner's receipt files."""

    def __init__(self, options: FiledropOptions, context: PluginContext) -> None:
        self.partner = context.name
        self.folder = options.folder
        self.receipts = options.receipts or options.folder / "receipts"
        self.poll_interval = options.poll_interval

    async def send(self, item: OutboundItem) -> SendResult:
        """Write the attempt as ``<attempt_ref>.xml``, durably and atomically.

        A repeated attempt (same ``attempt_ref``) writes the same file again:
        the partner sees one file per attempt, never a half-written one.
        """
        if item.attachments:
            raise PermanentError(f"filedrop cannot deliver attachments ({len(item.attachments)})")
        name = f"{item.attempt_ref}.xml"
        try:
            await in_thread(_write_durably, self.folder, name, item.payload)
        except OSError as exc:  # the folder is on this machine: our fault, not the partner's
            raise LocalFault(f"cannot write {name} into {self.folder}:"
                             f" {exc.strerror or exc}") from exc
        return SendResult(awaits_receipt=True, detail=f"written as {name}")

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Report receipt files until cancelled; remove each once it is recorded."""
        while True:
            try:
                found = await in_thread(_read_receipts, self.receipts)
            except FileNotFoundError:
                found = []  # the partner has not created its receipts folder yet
            if found:
                await receipts.record([receipt for receipt, _path in found])
                await in_thread(_remove, [path for _receipt, path in found])
            await asyncio.sleep(self.poll_interval)


def _write_durably(folder: Path, name: str, data: bytes) -> None:
    """Write ``folder/name`` through a hidden temporary file, synced, then renamed."""
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / name)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_receipts(folder: Path) -> list[tuple[Receipt, Path]]:
    """The receipt files in ``folder``, oldest first, as receipts."""
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime):
        outcome = OUTCOMES.get(path.suffix)
        if outcome is None or not path.is_file():
            continue
        with path.open("rb") as f:
            raw = f.read(MAX_RECEIPT_BYTES)
        at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        info = raw.decode("utf-8", errors="replace").strip() or outcome.value
        found.append((Receipt(path.stem, outcome, path.suffix[1:], info, at, raw), path))
    return found


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
