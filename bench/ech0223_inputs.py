"""The eCH-0223 inputs of the benchmarks: distinct sample messages, dropped as a registry does.

Shared by ``throughput.py`` and ``floor.py`` (the minimal script), so both
measure the same bytes.
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from gateway.ech0223 import sample_person_event, write_message


def templates(count: int, seed: int) -> list[bytes]:
    """Distinct full sample messages; their messageIds are replaced per copy."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        message = sample_person_event(rng, message_id=f"TEMPLATE-{i:04d}")
        message.content.document = []  # XML alone carries no files for documents to name
        out.append(write_message(message))
    return out


def samples(n: int, seed: int) -> Iterator[bytes]:
    """``n`` distinct eCH-0223 messages: 50 templates, each copy with a messageId of its own."""
    bodies = templates(50, seed)
    pattern = re.compile(rb"TEMPLATE-\d{4}")
    for i in range(n):
        yield pattern.sub(str(uuid.uuid4()).encode(), bodies[i % len(bodies)], count=1)


def drop(folder: Path, bodies: Iterable[bytes], rate: float = 0.0, prefix: str = "m") -> int:
    """Write ``bodies`` into ``folder`` (hidden temporary, then rename), at ``rate``/s if given."""
    start = time.monotonic()
    count = 0
    for count, data in enumerate(bodies, 1):
        tmp = folder / f".{prefix}{count:07d}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / f"{prefix}{count:07d}.xml")
        if rate:
            delay = start + count / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return count


def make_messages(folder: Path, n: int, seed: int, rate: float = 0.0) -> None:
    """Write ``n`` distinct eCH-0223 messages into ``folder``."""
    drop(folder, samples(n, seed), rate)
