"""The floor the gateway is measured against: a minimal script on this machine.

It does what the issue's reference script does, with nothing else: read a
message file, parse and validate it (lxml, our eCH-0223 schema), insert it
into SQLite (WAL, synchronous=FULL, one commit per batch of 500), and
publish it as a sedex-style pair (payload, then envelope, each written
under a temporary name and renamed). No routing, no journal, no receipts.

Usage: .venv/bin/python bench/floor.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ech0223_inputs import make_messages

from gateway.xml.validation import SchemaSet

BATCH = 500


def floor(n: int, work: Path) -> float:
    """Messages per second of the minimal script over ``n`` messages."""
    inbox, outbox = work / "in", work / "out"
    inbox.mkdir()
    outbox.mkdir()
    make_messages(inbox, n, seed=1)
    schema = SchemaSet.from_directory()
    conn = sqlite3.connect(work / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, message_id TEXT, raw BLOB)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    names = sorted(os.listdir(inbox))
    start = time.perf_counter()
    for first in range(0, len(names), BATCH):
        rows = []
        for name in names[first:first + BATCH]:
            data = (inbox / name).read_bytes()
            tree = etree.fromstring(data, parser).getroottree()
            assert schema.validate(tree).valid
            rows.append((str(uuid.uuid4()), data))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO m (message_id, raw) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
        for ref, data in rows:
            for kind, body in (("data", data), ("envl", b"<envelope/>")):
                tmp = outbox / f".tmp-{ref}-{kind}"
                tmp.write_bytes(body)
                os.replace(tmp, outbox / f"{kind}_{ref}.xml")
    return n / (time.perf_counter() - start)


def main() -> None:
    """Print the floor's msgs/s."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ech-gateway-floor-") as work:
        print(f"minimal script (parse + validate + SQLite + publish): "
              f"{floor(args.messages, Path(work)):.0f} msgs/s")


if __name__ == "__main__":
    main()
