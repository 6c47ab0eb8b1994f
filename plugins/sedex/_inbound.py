"""Reading the sedex inbox: ``envl_<X>.xml`` + ``data_<X>.<ext>`` pairs, in any arrival order."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.api import InputRejected, Intake, RawInput, read_evidence, read_file, ready_files
from plugins.sedex._files import move_done
from plugins.sedex.envelope import Envelope, parse_envelope

log = logging.getLogger(__name__)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(slots=True)
class _Pair:
    envelope: Path | None = None
    data: Path | None = None


def _collect(folder: Path, skip: set[str]) -> dict[str, _Pair]:
    """Group the visible ``envl_``/``data_`` files of ``folder`` by their middle part."""
    pairs: dict[str, _Pair] = {}
    for entry in ready_files(folder):
        name = entry.name
        if name in skip:
            continue
        if name.startswith("envl_") and name.endswith(".xml"):
            pairs.setdefault(name[5:-4], _Pair()).envelope = Path(entry.path)
        elif name.startswith("data_"):
            key = name[5:].rpartition(".")[0] or name[5:]
            pair = pairs.setdefault(key, _Pair())
            if pair.data is None or name < pair.data.name:  # stable choice among duplicates
                pair.data = Path(entry.path)
    return pairs


class InboxScanner:
    """One partner's inbox; stored pairs and lone files go to ``processed``.

    A pair whose envelope is unreadable, or whose payload is too large, is
    quarantined and moved to ``processed/rejected`` (of a payload over the
    limit the store keeps the first ``max_kept`` bytes). An unreadable envelope
    younger than ``grace`` is left for the next scan: it may still be written.
    """

    def __init__(self, folder: Path, processed: Path, *, source: str, max_bytes: int,
                 max_payload: int, max_kept: int, grace: float, limit: int) -> None:
        self.folder = folder
        self.processed = processed
        self.source = source
        self.max_bytes = max_bytes
        self.max_payload = max_payload
        self.max_kept = max_kept
        self.grace = grace
        self.limit = limit
        self.stuck: set[str] = set()

    def _meta(self, **extra: str) -> dict[str, str]:
        return {"transport": "sedex", **extra}

    def _envelope(self, envl: Path, now: float) -> Envelope | str | None:
        """The parsed envelope, the reason it is bad, or ``None`` to wait for it."""
        try:
            env_bytes = read_file(envl, self.max_bytes)
            if env_bytes is None:
                raise InputRejected(f"envelope larger than {self.max_bytes} bytes")
            return parse_envelope(env_bytes, max_bytes=self.max_bytes)
        except InputRejected as exc:
            if now - envl.stat().st_mtime < self.grace:
                return None
            return f"bad sedex envelope: {exc}"

    def _read_pair(
        self, key: str, envl: Path, data: Path, now: float
    ) -> tuple[RawInput, str | None] | None:
        """The input of a complete pair and a rejection reason, or ``None`` to wait."""
        env = self._envelope(envl, now)
        if env is None:
            return None
        payload = read_file(data, self.max_payload)
        meta = self._meta(payload_name=data.name, envelope_name=envl.name)
        if payload is None:
            evidence = read_evidence(data, self.max_kept)
            reason = (f"payload of {evidence.size} bytes is larger than {self.max_payload} bytes"
                      f"{evidence.note()}")
            return RawInput(self.source, key, evidence.data, {**meta, **evidence.meta()}), reason
        if isinstance(env, str):
            return RawInput(self.source, key, payload, meta), env
        meta.update(
            sedex_message_id=env.message_id,
            sender_id=env.sender_id,
            message_type=str(env.message_type),
            message_class=str(env.message_class),
            content_type="application/zip" if payload.startswith(_ZIP_MAGIC) else "application/xml",
        )
        if env.reference_message_id is not None:
            meta["reference_message_id"] = env.reference_message_id
        return RawInput(self.source, key, payload, meta), None

    async def _quarantine_lone(self, intake: Intake, key: str, path: Path, reason: str) -> None:
        data = read_file(path, self.max_payload)
        meta = self._meta(file_name=path.name)
        if data is None:
            evidence = read_evidence(path, self.max_kept)
            data, reason = evidence.data, f"{reason} (too large){evidence.note()}"
            meta.update(evidence.meta())
        await intake.quarantine(RawInput(self.source, key, data, meta), reason)
        move_done(path, self.processed, self.stuck)

    async def scan(self, intake: Intake) -> int:
        """Handle up to ``limit`` pairs or lone files; one ``submit`` for all good pairs."""
        now = time.time()
        batch: list[tuple[RawInput, list[Path]]] = []
        handled = 0
        pairs = _collect(self.folder, self.stuck)
        for key in sorted(pairs):
            if handled + len(batch) >= self.limit:
                break
            envl, data = pairs[key].envelope, pairs[key].data
            try:
                if envl is not None and data is not None:
                    result = self._read_pair(key, envl, data, now)
                    if result is None:
                        continue
                    raw, reason = result
                    if reason is None:
                        batch.append((raw, [data, envl]))
                        continue
                    await intake.quarantine(raw, reason)
                    for path in (data, envl):
                        move_done(path, self.processed / "rejected", self.stuck)
                else:
                    lone = envl or data
                    assert lone is not None
                    if now - lone.stat().st_mtime < self.grace:
                        continue
                    await self._quarantine_lone(intake, key, lone, "envelope without payload"
                                                if lone is envl else "payload without envelope")
            except FileNotFoundError:  # taken away meanwhile; the next scan sees the rest
                continue
            except OSError as exc:
                log.warning("cannot read sedex inbox file(s) %s: %s", key, exc)
                continue
            handled += 1
        if batch:
            await intake.submit([raw for raw, _ in batch])
            for _, paths in batch:
                for path in paths:
                    move_done(path, self.processed, self.stuck)
            log.debug("sedex inbox %s: stored %d message(s)", self.folder, len(batch))
        return handled + len(batch)

