"""A simulated sedex client: what the real one does with its folders, and nothing more.

It takes complete pairs from the outbox (an envelope present means the data
file is complete), checks them as the sedex adapter does, moves them to
``processed`` (data first, then envelope), copies delivered messages into
the recipient's inbox under a new base name, and writes one eCH-0090 v2
receipt per recipient under a random file name. Given an ``answer``, it lets
the recipient answer each delivered message (see :mod:`plugins.sedex.sim_answers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lxml import etree

from gateway.api import (
    BoundedCalls,
    DirWatcher,
    InputRejected,
    move_unique,
    parse_untrusted,
    ready_files,
)
from plugins.sedex._files import write_then_rename
from plugins.sedex.envelope import MESSAGE_ID, Envelope, build_receipt, parse_envelope
from plugins.sedex.options import PARTICIPANT_ID
from plugins.sedex.status import STATUS_CODES

log = logging.getLogger(__name__)

#: The recipient's answer to a delivered message: called with its envelope and payload.
Answer = Callable[[Envelope, bytes], object]
#: The largest envelope the simulator reads.
MAX_ENVELOPE_BYTES = 1024 * 1024
#: Transport errors the simulator reports for a failed message.
TRANSIENT_CODES = (400, 401)
#: Seconds the simulator waits for its outbox to be watched (a folder on this machine).
WATCH_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class _Sent:
    """A message the server accepted (601) and will deliver on the next step."""

    envelope: Envelope
    envl: Path
    data: Path


def _salvage(data: bytes, key: str) -> Envelope:
    """What a 200 receipt can say about an envelope too broken to read."""
    fields: dict[str, str] = {}
    with contextlib.suppress(InputRejected):
        for element in parse_untrusted(data, max_bytes=MAX_ENVELOPE_BYTES).getroot():
            if isinstance(element.tag, str):
                fields.setdefault(etree.QName(element).localname, (element.text or "").strip())

    def field(name: str, pattern: re.Pattern[str], default: str) -> str:
        value = fields.get(name, "")
        return value if pattern.fullmatch(value) else default

    number, pid = re.compile(r"\d{1,7}"), PARTICIPANT_ID[2]
    now = datetime.now().astimezone()
    return Envelope(
        message_id=field("messageId", MESSAGE_ID, key if MESSAGE_ID.fullmatch(key) else "unknown"),
        message_type=int(field("messageType", number, "0")),
        message_class=int(field("messageClass", number, "0")),
        sender_id=field("senderId", pid, "0-sedex-0"),
        recipient_ids=(field("recipientId", pid, "0-sedex-0"),),
        event_date=now,
        message_date=now,
        version=2,
    )


class SedexSimulator:
    """The sedex client of one participant, acting on real folders.

    :param delivered_to: the recipient's inbox (the simulated canton).
    :param failure_rate: share of messages failing with a transient code.
    :param pending_rate: share of messages answered 601 first, 100 one step later.
    :param answer: called for each delivered message after its receipt 100.
    """

    def __init__(self, outbox: Path, receipts: Path, processed: Path, delivered_to: Path, *,
                 seed: int = 0, failure_rate: float = 0.0, pending_rate: float = 0.0,
                 poll_interval: float = 0.5, answer: Answer | None = None) -> None:
        self.outbox = outbox
        self.receipts = receipts
        self.processed = processed
        self.delivered_to = delivered_to
        self.failure_rate = failure_rate
        self.pending_rate = pending_rate
        self.poll_interval = poll_interval
        self.answer = answer
        self._rng = random.Random(seed)
        self._seen: set[tuple[str, str]] = set()
        self._pending: list[_Sent] = []

    def _new_name(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _receipt(self, env: Envelope, code: int) -> None:
        info = STATUS_CODES[code].meaning
        for recipient in env.recipient_ids:
            xml = build_receipt(env, recipient, code, info, datetime.now().astimezone())
            name = self._new_name()
            write_then_rename(self.receipts, f".tmp-{name}", f"{name}.xml", xml)

    def _retire(self, *paths: Path | None) -> list[Path]:
        """Move the files to ``processed`` in the order given (the data file first)."""
        return [move_unique(path, self.processed) for path in paths if path is not None]

    def _deliver(self, sent: _Sent) -> None:
        """Copy the pair into the recipient's inbox under a new base name, then answer 100."""
        name = self._new_name()
        self.delivered_to.mkdir(parents=True, exist_ok=True)
        data_name = f"data_{name}{sent.data.suffix}"
        data = sent.data.read_bytes()
        write_then_rename(self.delivered_to, f".tmp-{name}-data", data_name, data)
        write_then_rename(self.delivered_to, f".tmp-{name}-envl", f"envl_{name}.xml",
                          sent.envl.read_bytes())
        self._receipt(sent.envelope, 100)
        if self.answer is not None:
            try:
                self.answer(sent.envelope, data)
            except InputRejected as exc:
                log.warning("no answer to sedex message %s: %s", sent.envelope.message_id, exc)

    def _handle(self, envl: Path, data: Path | None) -> None:
        key = envl.name[5:-4]
        raw = envl.read_bytes()
        try:
            env = parse_envelope(raw, max_bytes=MAX_ENVELOPE_BYTES)
        except InputRejected:
            self._retire(data, envl)
            self._receipt(_salvage(raw, key), 200)
            return
        if data is None:
            self._retire(envl)
            self._receipt(env, 202)
            return
        if (env.sender_id, env.message_id) in self._seen:
            self._retire(data, envl)
            self._receipt(env, 201)
            return
        self._seen.add((env.sender_id, env.message_id))
        moved_data, moved_envl = self._retire(data, envl)
        sent = _Sent(env, moved_envl, moved_data)
        draw = self._rng.random()
        if draw < self.failure_rate:
            self._receipt(env, self._rng.choice(TRANSIENT_CODES))
        elif draw < self.failure_rate + self.pending_rate:
            self._receipt(env, 601)
            self._pending.append(sent)
        else:
            self._deliver(sent)

    def step(self) -> int:
        """Deliver what was pending, then handle every complete pair; return how many."""
        pending, self._pending = self._pending, []
        for sent in pending:
            self._deliver(sent)
        # envelopes first, data files second: a data file is written before its
        # envelope, so every envelope listed here has its data in the second listing
        envelopes = sorted(e.name for e in ready_files(self.outbox, prefix="envl_", suffix=".xml"))
        data = {e.name[5:].partition(".")[0]: Path(e.path)
                for e in ready_files(self.outbox, prefix="data_")}
        for name in envelopes:
            self._handle(self.outbox / name, data.get(name[5:-4]))
        return len(pending) + len(envelopes)

    async def run(self, stop: asyncio.Event) -> None:
        """Step whenever the outbox changes (or every ``poll_interval``) until ``stop`` is set."""
        watcher = DirWatcher(self.outbox, self.poll_interval)
        await watcher.start(BoundedCalls(WATCH_TIMEOUT))
        try:
            while not stop.is_set():
                await asyncio.to_thread(self.step)
                await watcher.wait()
        finally:
            watcher.stop()
