"""What one eCH-0020 input costs at the least in the gateway's design: its parts alone.

The parts an input passes, measured one after the other in one process, each
without the daemon around it:

- the worker stages that do the work (normalise, finish: ``stage_cost.py``
  without its hand-offs between processes);
- the store operations (``store_ops.py``);
- the gateway's file operations, done with plain calls: read the input, move
  it to ``done/``, publish the data file and the envelope (staged, renamed,
  the outbox synced once per batch), read, parse and move the receipt;
- what the sedex client does for it (the stand-in of ``throughput.py``: move
  the pair, write a receipt).

Their sum is the CPU time one input needs with no orchestration at all: no
event loop, no processes handing work to each other, no batching, no
alerts. Two cores give at most 2 / sum inputs per second; divided by
``floor.py``'s msgs/s, measured in the same run, that is the highest ratio
the design could reach with its parts as fast as they are (issue 8 asks 0.4).

Creating a file costs 20 µs at one moment and 200 µs at another (after many
were deleted, for minutes): the file operations and the floor are measured in
``--dir`` once creating a file there costs at most ``--settle-limit`` µs (as
``throughput.py`` waits), and the cost is printed with them.

Usage: .venv/bin/python bench/parts.py [--events 1000] [--messages 20000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor
import stage_cost
import store_ops
from ech0020_inputs import Corpus
from sedex_echo import RECEIPT
from throughput import settle

from gateway.fileio import move_unique, read_file, sync_filesystem
from plugins.sedex._files import publish
from plugins.sedex.envelope import parse_receipt

#: Files per batch, as the gateway takes them.
BATCH = 500
CORES = 2
ENVELOPE = """<?xml version='1.0' encoding='UTF-8'?>
<eCH-0090:envelope xmlns:eCH-0090="http://www.ech.ch/xmlns/eCH-0090/1" version="1.0">
  <eCH-0090:messageId>{ref}</eCH-0090:messageId>
  <eCH-0090:messageType>1900223</eCH-0090:messageType>
  <eCH-0090:messageClass>0</eCH-0090:messageClass>
  <eCH-0090:senderId>T1-2511-1</eCH-0090:senderId>
  <eCH-0090:recipientId>T2-2-1</eCH-0090:recipientId>
  <eCH-0090:eventDate>{now}</eCH-0090:eventDate>
  <eCH-0090:messageDate>{now}</eCH-0090:messageDate>
</eCH-0090:envelope>
"""


def worker_stages(events: int) -> float:
    """CPU µs per input of normalise and finish (the median of 3 runs)."""
    inputs, known = stage_cost.setup(events)
    runs = [stage_cost.one_run(inputs, known) for _ in range(3)]
    spent = sorted(run["normalise"] + run["finish"] for run in runs)[1]
    return spent / events * 1e6


def store(events: int) -> float:
    """CPU µs per input of the store operations."""
    with tempfile.TemporaryDirectory(prefix="ech-gateway-parts-") as work:
        batch = min(BATCH, events)
        per_op = asyncio.run(store_ops.measure(batch, max(2, events // batch + 1), Path(work)))
    return sum(per_op.values())


def files(events: int, where: Path | None) -> tuple[float, float]:
    """CPU µs per input of the gateway's file operations and of the sedex client's, in a
    folder made in ``where``."""
    corpus = Corpus.load()
    payload = next(iter(corpus.events_of(1)))  # about the size of the messages written
    gateway = client = 0.0
    with tempfile.TemporaryDirectory(prefix="ech-gateway-parts-", dir=where) as work:
        root = Path(work)
        dirs = {name: root / name for name in ("in", "done", "outbox", "staging", "processed",
                                                "receipts", "receipts-done")}
        for folder in dirs.values():
            folder.mkdir()
        for i, data in enumerate(corpus.events_of(events)):
            (dirs["in"] / f"e-{i:06d}.xml").write_bytes(data)
        names = sorted(os.listdir(dirs["in"]))
        for first in range(0, len(names), BATCH):
            batch = names[first:first + BATCH]
            start = time.process_time()
            refs = []
            for name in batch:
                path = dirs["in"] / name
                read_file(path, 1 << 26)
                move_unique(path, dirs["done"], make_dir=False)
                ref = str(uuid.uuid4())
                now = datetime.now(UTC).isoformat(timespec="milliseconds")
                publish(dirs["outbox"], f"data_{ref}.xml", payload, staging=dirs["staging"])
                publish(dirs["outbox"], f"envl_{ref}.xml",
                        ENVELOPE.format(ref=ref, now=now).encode(), staging=dirs["staging"])
                refs.append(ref)
            sync_filesystem(dirs["outbox"])
            middle = time.process_time()
            for ref in refs:
                for kind in ("data", "envl"):
                    os.replace(dirs["outbox"] / f"{kind}_{ref}.xml",
                               dirs["processed"] / f"{kind}_{ref}.xml")
                tmp = dirs["receipts"] / f".{uuid.uuid4()}"
                tmp.write_text(RECEIPT.format(
                    now=datetime.now(UTC).isoformat(timespec="milliseconds"), ref=ref,
                    type="1900223", sender="T2-2-1", recipient="T1-2511-1"))
                os.replace(tmp, dirs["receipts"] / f"{uuid.uuid4()}.xml")
            end = time.process_time()
            for name in sorted(os.listdir(dirs["receipts"])):
                path = dirs["receipts"] / name
                receipt = read_file(path, 1 << 20)
                assert receipt is not None
                parse_receipt(receipt, max_bytes=1 << 20)
                move_unique(path, dirs["receipts-done"], make_dir=False)
            gateway += (middle - start) + (time.process_time() - end)
            client += end - middle
    return gateway / events * 1e6, client / events * 1e6


def main() -> None:
    """Print each part's CPU per input, their sum, and the ratio it allows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1000, help="inputs per part (default 1000)")
    ap.add_argument("--messages", type=int, default=20_000, help="floor.py's messages")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where files are made (default: the system's temporary folder)")
    ap.add_argument("--settle-limit", type=float, default=25.0,
                    help="wait until creating a file costs at most this (µs)")
    ap.add_argument("--settle-max", type=float, default=420.0,
                    help="wait at most this long (s) for file creation to settle")
    args = ap.parse_args()
    parts = {"worker stages, normalise and finish": worker_stages(args.events),
             "store operations": store(args.events)}
    with tempfile.TemporaryDirectory(prefix="ech-gateway-parts-", dir=args.dir) as work:
        creation = settle(Path(work), args.settle_limit, args.settle_max)
    parts["files, gateway"], parts["files, sedex client"] = files(args.events, args.dir)
    for name, us in parts.items():
        print(f"{name + ':':<36} {us:7.1f} µs per input")
    total = sum(parts.values())
    most = CORES * 1e6 / total
    print(f"{'all:':<36} {total:7.1f} µs per input")
    print(f"at most, on {CORES} cores: {most:,.0f} inputs/s")
    with tempfile.TemporaryDirectory(prefix="ech-gateway-floor-", dir=args.dir) as work:
        settle(Path(work), args.settle_limit, args.settle_max)
        rate = floor.floor(args.messages, Path(work))
    print(f"file creation: {creation:.0f} µs per file before the file operations")
    print(f"floor.py: {rate:,.0f} msgs/s; the highest ratio the parts allow: {most / rate:.2f}")


if __name__ == "__main__":
    main()
