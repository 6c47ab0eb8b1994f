"""Reading the sedex inbox: ``envl_<X>.xml`` + ``data_<X>.<ext>`` pairs, in any arrival order."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.api import (
    BATCH_BYTES,
    FileTaker,
    InputRejected,
    Intake,
    Listing,
    RawInput,
    Ready,
    Stored,
    TooLarge,
    Unfinished,
    display_name,
    finish,
)
from plugins.sedex.envelope import Envelope, parse_envelope

log = logging.getLogger(__name__)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(slots=True)
class _Pair:
    envelope: Ready | None = None
    data: Ready | None = None
    #: a file of this pair is there but not ready yet
    pending: bool = False


def _key(name: str) -> str | None:
    """The middle part of an ``envl_``/``data_`` name, or ``None`` for another name."""
    if name.startswith("envl_") and name.endswith(".xml"):
        return name[5:-4]
    if name.startswith("data_"):
        return name[5:].rpartition(".")[0] or name[5:]
    return None


def _pairs(listing: Listing) -> dict[str, _Pair]:
    """Group the ready files of the inbox by their middle part; note pending halves."""
    pairs: dict[str, _Pair] = {}
    for ready in listing.ready:
        key = _key(ready.name)
        if key is None:
            continue
        pair = pairs.setdefault(key, _Pair())
        if ready.name.startswith("envl_"):
            pair.envelope = ready
        elif pair.data is None or ready.name < pair.data.name:  # stable choice among duplicates
            pair.data = ready
    for name in listing.pending:
        key = _key(name)
        if key is not None:
            pairs.setdefault(key, _Pair()).pending = True
    return pairs


@dataclass(frozen=True, slots=True)
class _Taken:
    """A pair read: its input, the files it came from, and why it is refused (if it is)."""

    raw: RawInput
    stored: list[Stored]
    reason: str | None


class InboxScanner:
    """One partner's inbox; stored pairs and lone files go to ``processed``.

    Files are taken once settled and finished (see :class:`~gateway.api.FileTaker`).
    A pair whose envelope is unreadable, or whose payload is unfinished or
    larger than ``max_bytes``, is quarantined and moved to ``processed/rejected``
    (of a payload over the limit the store keeps the first ``max_kept``
    bytes, and it is never read whole). A lone half waits ``pair_grace`` for
    the other.
    """

    def __init__(self, folder: Path, processed: Path, *, source: str, max_bytes: int,
                 max_kept: int, settle: float, grace: float, pair_grace: float,
                 limit: int) -> None:
        self.folder = folder
        self.processed = processed
        self.source = source
        self.max_bytes = max_bytes
        self.max_kept = max_kept
        self.pair_grace = pair_grace
        self.limit = limit
        #: bytes of payloads gathered before they are stored
        self.batch_bytes = BATCH_BYTES
        self.taker = FileTaker(folder, ("envl_*.xml", "data_*"), settle, grace)

    def _meta(self, **extra: str) -> dict[str, str]:
        return {"transport": "sedex", **extra}

    def _envelope(self, envl: Ready) -> tuple[Envelope | str, Stored] | None:
        """The parsed envelope or why it is bad, and its file; ``None`` to wait for it."""
        got = self.taker.read(envl, self.max_bytes)
        if got is None:
            return None
        if isinstance(got, TooLarge):
            kept = self.taker.evidence(envl, 0)
            return None if kept is None else (
                f"bad sedex envelope: larger than {self.max_bytes} bytes", kept[1])
        if isinstance(got, Unfinished):
            return f"bad sedex envelope: {got.reason}", got.stored
        try:
            return parse_envelope(got.data, max_bytes=self.max_bytes), got.stored
        except InputRejected as exc:
            return f"bad sedex envelope: {exc}", got.stored

    async def _read_pair(self, key: str, envl: Ready, data: Ready) -> _Taken | None:
        """The input of a settled pair and why it is refused, or ``None`` to wait."""
        env = self._envelope(envl)
        if env is None:
            return None
        parsed, env_stored = env
        got = self.taker.read(data, self.max_bytes)
        meta = self._meta(payload_name=data.shown, envelope_name=envl.shown)
        ref = display_name(key)
        if got is None:
            return None
        if isinstance(got, TooLarge):
            kept = await asyncio.to_thread(self.taker.evidence, data, self.max_kept)
            if kept is None:
                return None
            evidence, stored = kept
            reason = (f"payload of {evidence.size} bytes is larger than {self.max_bytes} bytes"
                      f" ([limits] max_document_bytes){evidence.note()}")
            return _Taken(RawInput(self.source, ref, evidence.data, {**meta, **evidence.meta()}),
                          [stored, env_stored], reason)
        stored_pair = [got.stored, env_stored]
        if isinstance(parsed, str):
            return _Taken(RawInput(self.source, ref, got.data, meta), stored_pair, parsed)
        if isinstance(got, Unfinished):
            return _Taken(RawInput(self.source, ref, got.data, meta), stored_pair,
                          f"sedex payload: {got.reason}")
        meta.update(
            sedex_message_id=parsed.message_id,
            sender_id=parsed.sender_id,
            message_type=str(parsed.message_type),
            message_class=str(parsed.message_class),
            content_type="application/zip" if got.data.startswith(_ZIP_MAGIC) else "application/xml",
        )
        if parsed.reference_message_id is not None:
            meta["reference_message_id"] = parsed.reference_message_id
        return _Taken(RawInput(self.source, ref, got.data, meta), stored_pair, None)

    async def _quarantine_lone(self, intake: Intake, key: str, lone: Ready, reason: str) -> bool:
        """Quarantine a lone half (too large: evidence only); ``False`` if it is not ready."""
        got = self.taker.read(lone, self.max_bytes)
        meta = self._meta(file_name=lone.shown)
        if got is None:
            return False
        if isinstance(got, TooLarge):
            kept = await asyncio.to_thread(self.taker.evidence, lone, self.max_kept)
            if kept is None:
                return False
            evidence, stored = kept
            data, reason = evidence.data, f"{reason} (too large){evidence.note()}"
            meta.update(evidence.meta())
        else:
            data, stored = got.data, got.stored
        await intake.quarantine(RawInput(self.source, display_name(key), data, meta), reason)
        self._finish([([stored], self.processed)])
        return True

    def _finish(self, groups: list[tuple[list[Stored], Path | None]]) -> None:
        for message in self.taker.left(finish(groups)):
            log.warning("sedex inbox: %s", message)

    async def scan(self, intake: Intake) -> int:
        """Handle up to ``limit`` pairs or lone files; good pairs are stored together.

        At most :attr:`batch_bytes` of payloads are gathered before they are
        stored.
        """
        listing = self.taker.scan()
        for note in listing.notes:
            log.warning("sedex inbox: %s", note)
        batch: list[_Taken] = []
        gathered = handled = 0
        pairs = _pairs(listing)
        for key in sorted(pairs):
            if handled >= self.limit:
                break
            pair = pairs[key]
            try:
                if pair.envelope is not None and pair.data is not None:
                    taken = await self._read_pair(key, pair.envelope, pair.data)
                    if taken is None:
                        continue
                    if taken.reason is None:
                        batch.append(taken)
                        gathered += len(taken.raw.data)
                        if gathered >= self.batch_bytes:
                            await self._store(intake, batch)
                            batch, gathered = [], 0
                    else:
                        await intake.quarantine(taken.raw, taken.reason)
                        self._finish([(taken.stored, self.processed / "rejected")])
                elif pair.pending:
                    continue  # the other half is there, still settling
                else:
                    lone = pair.envelope or pair.data
                    assert lone is not None
                    if lone.stable < self.pair_grace or not await self._quarantine_lone(
                            intake, key, lone, "envelope without payload"
                            if lone is pair.envelope else "payload without envelope"):
                        continue
            except OSError as exc:
                log.warning("cannot read sedex inbox file(s) %s: %s",
                            display_name(str(self.folder / key)), exc)
                continue
            handled += 1
        await self._store(intake, batch)
        return handled

    async def _store(self, intake: Intake, batch: list[_Taken]) -> None:
        if not batch:
            return
        await intake.submit([taken.raw for taken in batch])
        self._finish([(taken.stored, self.processed) for taken in batch])
        log.debug("sedex inbox %s: stored %d message(s)", self.folder, len(batch))
