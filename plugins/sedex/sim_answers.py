"""The simulated canton answering back: what ``sedex-sim --answer`` writes into our inbox.

After the simulator delivered a message to the partner, the partner answers
through sedex into the gateway's own inbox, as a real canton would:

- ``reject``: a negative ``eventReport`` whose ``referenceMessageId`` names the
  delivered message (the gateway marks that delivery ``rejected``);
- ``message``: a ``personEventMessage`` from the canton answering the delivered
  one (``referenceMessageId``, the same ``businessProcessId``, our reference
  echoed as ``yourBusinessReferenceId``).

Both are about the person of the delivered message (its ``personIdentification``),
so that the gateway finds the resident and the case on the way back.

Each answer is an envelope/data pair; the data file is written before the
envelope, each under a hidden name first, as the sedex client does.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gateway.api import (
    InputRejected,
    ech0223,
    parse_untrusted,
    read_part,
    safe_unzip,
    sample_event_report,
    sample_person_event,
    write_message,
)
from plugins.sedex._files import write_then_rename
from plugins.sedex.envelope import Envelope, build_envelope

#: The kinds of answer the simulator can give.
AnswerKind = Literal["reject", "message"]
ANSWER_KINDS: tuple[AnswerKind, ...] = ("reject", "message")
#: The largest delivered payload read to find the message it answers.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: eCH-0090 messageClass of an answer that references an earlier message.
ANSWER_CLASS = 1


def delivered_message_id(data: bytes) -> str:
    """The eCH-0223 ``messageId`` of a delivered payload (XML, or a zip holding it).

    :raises InputRejected: if the payload holds no readable eCH-0223 header.
    """
    return str(delivered_root(data).findtext("{*}header/{*}messageId")).strip()


def delivered_root(data: bytes) -> Any:
    """The root element of the eCH-0223 message in a delivered payload (XML, or a zip).

    :raises InputRejected: if the payload holds no readable eCH-0223 header.
    """
    documents = [data]
    if data.startswith(b"PK"):
        entries = safe_unzip(data, max_entries=1000, max_total_bytes=MAX_PAYLOAD_BYTES,
                             max_ratio=100)
        documents = [v for k, v in sorted(entries.items()) if k.endswith(".xml") and "/" not in k]
    for document in documents:
        root = parse_untrusted(document, max_bytes=MAX_PAYLOAD_BYTES).getroot()
        if (root.findtext("{*}header/{*}messageId") or "").strip():
            return root
    raise InputRejected("no eCH-0223 header messageId in the delivered payload")


class Answerer:
    """Writes one answer per delivered message into ``inbox`` (the gateway's sedex inbox)."""

    def __init__(self, inbox: Path, kind: AnswerKind, *, seed: int = 0) -> None:
        self.inbox = inbox
        self.kind = kind
        self._rng = random.Random(seed)

    def __call__(self, delivered: Envelope, data: bytes) -> str:
        """Answer the message ``delivered`` (its envelope and payload); return the answer's name."""
        root = delivered_root(data)
        referenced = str(root.findtext("{*}header/{*}messageId")).strip()
        ident = root.find("{*}content/{*}personIdentification")
        person = read_part(ident, ech0223.PersonIdentificationLight) if ident is not None else None
        if self.kind == "reject":
            report = sample_event_report(self._rng, reference_message_id=referenced)
            if person is not None:
                report = report.model_copy(update={"response": report.response.model_copy(
                    update={"person_identification": person})})
            payload = write_message(report)
        else:
            message = sample_person_event(
                self._rng, message_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                full=False)
            header = message.header.model_copy(update={
                "reference_message_id": referenced,
                "business_process_id": _text(root, "businessProcessId"),
                "your_business_reference_id": _text(root, "ourBusinessReferenceId")})
            content = message.content if person is None else message.content.model_copy(
                update={"person_identification": person})
            payload = write_message(message.model_copy(update={"header": header,
                                                               "content": content}))
        name = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        now = datetime.now(UTC)
        envelope = Envelope(name, delivered.message_type, ANSWER_CLASS, delivered.recipient_ids[0],
                            (delivered.sender_id,), now, now,
                            reference_message_id=delivered.message_id)
        write_then_rename(self.inbox, f".tmp-{name}-data", f"data_{name}.xml", payload)
        write_then_rename(self.inbox, f".tmp-{name}-envl", f"envl_{name}.xml",
                          build_envelope(envelope))
        return name


def _text(root: Any, name: str) -> str | None:
    text = root.findtext(f"{{*}}header/{{*}}{name}")
    return text.strip() if text and text.strip() else None
