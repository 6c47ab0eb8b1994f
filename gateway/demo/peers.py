"""The simulated peers of the demo: a registry dropping files, a canton answering."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from gateway.ech0223 import (
    PersonIdentificationLight,
    sample_event_report,
    sample_person_event,
    write_message,
)
from gateway.ech0223.parts import read_part
from plugins.sedex.envelope import Envelope, build_envelope

#: Inputs a registry should never send; the gateway quarantines them.
BAD_INPUTS = {
    "broken.xml": b"<personEventMessage><header>",
    "entity.xml": b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "boom">]>\n<x>&e;</x>',
}


def drop(directory: Path, name: str, data: bytes) -> None:
    """Write ``name`` as a registry does it right: a hidden temporary, then a rename."""
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


async def registry(outbox: Path, count: int, seed: int, interval: float) -> list[str]:
    """Drop ``count`` sample messages and the bad inputs; return the messageIds."""
    rng = random.Random(seed)
    ids = []
    for n in range(count):
        message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        message = sample_person_event(rng, message_id=message_id)
        message.content.document = []  # a registry folder's XML carries no scans (no files/)
        drop(outbox, f"mutation-{n:04d}.xml", write_message(message))
        ids.append(message_id)
        await asyncio.sleep(interval)
    for name, data in BAD_INPUTS.items():
        drop(outbox, name, data)
    return ids


def canton_rejects(inbox: Path, message: bytes, *, sender: str, recipient: str,
                   message_type: int, seed: int) -> None:
    """The canton answers ``message`` with a negative eventReport about its person, as a sedex pair."""
    rng = random.Random(seed)
    root = etree.fromstring(message)
    referenced = str(root.findtext("{*}header/{*}messageId")).strip()
    rejection = sample_event_report(rng, reference_message_id=referenced)
    ident = root.find("{*}content/{*}personIdentification")
    assert ident is not None, "the demo's registry writes personEventMessages"
    person = read_part(ident, PersonIdentificationLight)
    report = write_message(rejection.model_copy(update={"response": rejection.response.model_copy(
        update={"person_identification": person})}))
    ref = str(uuid.uuid4())
    now = datetime.now(UTC)
    envelope = build_envelope(Envelope(ref, message_type, 1, sender, (recipient,), now, now,
                                       reference_message_id=referenced))
    drop(inbox, f"data_{ref}.xml", report)
    drop(inbox, f"envl_{ref}.xml", envelope)
