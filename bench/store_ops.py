"""The store operations each eCH-0020 input causes, in one process: CPU µs per input.

What the event-loop process spends on the database for one input, without
the daemon around it: storing the input (``add_raw``), reading its person's
state, recording the outcome (``record_processing``: message, person
state, delivery, journal), claiming the delivery, recording the send and
the receipt. The stages between run in this process too (normalise,
finish) but are not counted. Inputs are the eCH-0020 deliveries of
``throughput.py --ech0020``, after their base deliveries; the first batch
warms up and is not counted. CPU time is the process's (the commit thread
included).

Usage: .venv/bin/python bench/store_ops.py [--batch 500] [--batches 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ech0020_inputs import Corpus

from gateway import worker_stages
from gateway.config import load_settings, write_initial_config
from gateway.contracts import RawInput
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.retry import RetryPolicy
from gateway.store import Outcome, Processed, SQLiteStore

T = TypeVar("T")
OPS = ("add_raw", "stored_persons", "record_processing", "claim_due", "record_outcomes",
       "record_receipts")


async def timed(spent: dict[str, float], op: str, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, its CPU seconds added to ``spent[op]``."""
    start = time.process_time()
    result = await call()
    spent[op] = spent.get(op, 0.0) + time.process_time() - start
    return result


async def one_batch(store: SQLiteStore, raws: list[RawInput],
                    spent: dict[str, float]) -> None:
    """Take ``raws`` through every store operation of their life, timing each."""
    ids = [mid for mid, _new in await timed(spent, "add_raw", lambda: store.add_raw(raws))]
    batch = list(zip(ids, raws, strict=True))
    steps = worker_stages.normalise_work(batch)
    items = [(mid, raw, step) for (mid, raw), step in zip(batch, steps, strict=True)
             if not isinstance(step, Processed)]
    keys = [key for _mid, _raw, step in items for key in step.subject]
    known = await timed(spent, "stored_persons", lambda: store.stored_persons(keys))
    results = worker_stages.finish_work(items, known)
    await timed(spent, "record_processing", lambda: store.record_processing(results))
    claims = await timed(spent, "claim_due",
                         lambda: store.claim_due("bench", 60.0, len(raws), ["canton"]))
    sent = [Outcome(c.delivery, c.attempt_ref, "sent") for c in claims]
    await timed(spent, "record_outcomes",
                lambda: store.record_outcomes(sent, _policy, {"canton": 3600.0}))
    receipts = [Receipt(c.attempt_ref, ReceiptOutcome.DELIVERED, "100", "delivered",
                        datetime.now(UTC), b"<receipt/>" * 60) for c in claims]
    await timed(spent, "record_receipts", lambda: store.record_receipts(receipts, _policy))


def _policy(_partner: str) -> RetryPolicy:
    return RetryPolicy()


async def measure(batch: int, batches: int, work: Path) -> dict[str, float]:
    """CPU µs per input of each store operation, over ``batches - 1`` batches."""
    settings = load_settings(write_initial_config(work / "gateway"))
    worker_stages.init_worker(settings)
    corpus = Corpus.load()
    store = SQLiteStore(work / "bench.db")
    store.start()
    try:
        for n, base in enumerate(corpus.bases(batch * batches)):
            raw = RawInput("registry", f"base-{n}.xml", base)
            await one_batch(store, [raw], {})
        events = list(corpus.events_of(batch * batches))
        spent: dict[str, float] = {}
        for b in range(batches):
            raws = [RawInput("registry", f"e-{b}-{i}.xml", data)
                    for i, data in enumerate(events[b * batch:(b + 1) * batch])]
            await one_batch(store, raws, spent if b else {})
    finally:
        store.close()
    return {op: spent[op] / (batch * (batches - 1)) * 1e6 for op in OPS}


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--batches", type=int, default=8)
    args = ap.parse_args()
    if args.batches < 2:
        ap.error("--batches must be at least 2 (the first one warms up)")
    with tempfile.TemporaryDirectory(prefix="ech-gateway-store-ops-") as work:
        per_input = asyncio.run(measure(args.batch, args.batches, Path(work)))
    for op, us in per_input.items():
        print(f"{op + ':':<20} {us:6.1f} µs per input")
    print(f"{'all:':<20} {sum(per_input.values()):6.1f} µs per input")


if __name__ == "__main__":
    main()
