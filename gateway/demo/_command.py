"""The demo command: set up, run for a bounded time, summarise."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from gateway import logs
from gateway.assembly import load_config, make_validator, schema_set
from gateway.config import write_initial_config
from gateway.daemon import Gateway
from gateway.demo.peers import BAD_INPUTS, canton_rejects, registry
from gateway.store import StoreReader
from gateway.wording import counted
from plugins.sedex.sim import SedexSimulator

DEMO_OVERRIDES = """\
# Written by `ech-gateway demo`: fast retries so the demo shows them in seconds.
[gateway]
log_level = "WARNING"
drain_timeout = "10s"

[sources.registry]
grace = "2s"                # the cut-short broken.xml is quarantined in seconds, not minutes

[dispatcher]
idle_poll = "200ms"
receipt_check_interval = "1s"

[partners.canton]
receipt_timeout = "20s"

[partners.canton.retry]
max_attempts = 3
initial = "200ms"
maximum = "1s"
jitter = "100ms"

[partners.canton.sedex]
poll_interval = "200ms"
pair_grace = "2s"
"""

FINAL = {"delivered", "dead", "rejected", "needs_review"}


def configure(parser: argparse.ArgumentParser) -> None:
    """The demo's options."""
    parser.add_argument("--messages", type=int, default=40, help="sample messages to send")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long at most")
    parser.add_argument("--failure-rate", type=float, default=0.25,
                        help="share of sedex transfers that fail transiently")
    parser.add_argument("--seed", type=int, default=2235,
                        help="seed of the random sample messages, sedex failures and the"
                        " canton's answers: another seed, other data (default 2235)")
    parser.add_argument("--dir", type=Path, help="use this (new) folder instead of a temporary one")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary."""
    directory = args.dir or Path(tempfile.mkdtemp(prefix="ech-gateway-demo-"))
    config = write_initial_config(directory)
    (directory / "conf.d").mkdir(exist_ok=True)
    (directory / "conf.d" / "50-demo.toml").write_text(DEMO_OVERRIDES)
    settings = load_config(config, args.pm)
    logs.setup(settings.gateway.log_level, settings.gateway.log_format)
    print(f"demo folder: {directory}")
    started = time.monotonic()
    asyncio.run(_flow(settings, args, directory))
    print(summary(settings, directory, time.monotonic() - started))
    return 0


async def _flow(settings: Any, args: argparse.Namespace, directory: Path) -> None:
    sedex = settings.partners["canton"].parsed
    gateway = Gateway(settings, args.pm, make_validator(schema_set(settings)))
    canton_inbox = directory / "canton" / "inbox"
    canton_inbox.mkdir(parents=True, exist_ok=True)
    sim = SedexSimulator(sedex.outbox, sedex.receipts, sedex.processed, canton_inbox,
                         seed=args.seed, failure_rate=args.failure_rate, pending_rate=0.1,
                         poll_interval=0.2)
    stop, sim_stop = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(gateway.run(stop)), asyncio.create_task(sim.run(sim_stop))]
    await gateway.ready.wait()
    print(f"registry drops {counted(args.messages, 'mutation notice')} and"
          f" {counted(len(BAD_INPUTS), 'bad file')} ...")
    await registry(settings.sources["registry"].parsed.path, args.messages, args.seed, 0.05)
    deadline = time.monotonic() + args.seconds
    answered = False
    while time.monotonic() < deadline:
        messages, deliveries = _states(settings.store.path)
        if not answered and deliveries.get("delivered"):
            canton_rejects(sedex.inbox, _first_delivered(settings.store.path),
                           sender=sedex.recipient_id, recipient=sedex.sender_id,
                           message_type=sedex.message_type, seed=args.seed)
            answered = True
        processed = sum(n for s, n in messages.items() if s != "received")
        settled = sum(n for s, n in deliveries.items() if s in FINAL) == sum(deliveries.values())
        if processed >= args.messages + len(BAD_INPUTS) and settled and answered and _answer_taken(
                settings.store.path):
            break
        await asyncio.sleep(0.3)
    stop.set()
    sim_stop.set()
    await asyncio.gather(*tasks)


def _answer_taken(db: Path) -> bool:
    """Whether the canton's answer is processed (its way back to the registry decided)."""
    reader = StoreReader(db)
    try:
        return any(m["source"] == "canton" and m["state"] != "received"
                   for m in reader.list_messages(limit=20))
    finally:
        reader.close()


def _states(db: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Messages and deliveries per state."""
    reader = StoreReader(db)
    try:
        counts = reader.counts()
        return counts["messages"], counts["deliveries"]
    finally:
        reader.close()


def _first_delivered(db: Path) -> bytes:
    """The first delivered message, as the registry wrote it: the one the canton rejects."""
    reader = StoreReader(db)
    try:
        delivered = reader.list_messages(delivery_state="delivered", limit=100_000)
        raw = reader.raw(min(delivered, key=lambda m: m["id"])["id"])
        assert raw is not None
        return raw
    finally:
        reader.close()


def summary(settings: Any, directory: Path, seconds: float) -> str:
    """What happened, and where to look."""
    reader = StoreReader(settings.store.path)
    try:
        msgs = reader.list_messages(limit=100_000)
    finally:
        reader.close()
    deliveries = [d for m in msgs for d in m["deliveries"] if d["partner"] != "registry"]
    back = [d for m in msgs for d in m["deliveries"] if d["partner"] == "registry"]
    count = {s: sum(1 for d in deliveries if d["state"] == s)
             for s in ("delivered", "rejected", "dead", "needs_review")}
    retried = sum(1 for d in deliveries if d["attempts"] > 1)
    quarantined = [m for m in msgs if m["state"] == "quarantined"]
    not_relevant = [m for m in msgs if m["state"] == "not_relevant" and m["source"] != "canton"]
    inbound = [m for m in msgs if m["source"] == "canton"]
    config = directory / "gateway.toml"
    lines = [
        "",
        f"demo finished in {seconds:.1f}s",
        f"  delivered:   {count['delivered']} (of which {retried} needed a retry)",
        f"  rejected:    {count['rejected']} (negative eventReport from the canton)",
        f"  dead:        {count['dead']}",
        f"  not relevant: {len(not_relevant)} (decided by the rules, see `rules explain`)",
    ]
    reasons = Counter(m["reason"] for m in not_relevant)
    lines += [f"    {n} x {reason}" for reason, n in reasons.most_common()]
    lines += [
        f"  quarantined: {len(quarantined)}",
    ]
    lines += [f"    message {m['id']} ({m['ref']}): {m['reason']}" for m in quarantined]
    lines += [
        f"  from canton: {counted(len(inbound), 'message')}:"
        f" {sum(d['state'] == 'delivered' for d in back)}"
        " delivered into the registry (the way back),"
        f" {sum(m['state'] == 'needs_review' for m in inbound)} waiting for review",
        "",
        "where to look:",
        f"  sedex outbox/processed/receipts: {directory / 'sedex'}",
        f"  what the canton received:        {directory / 'canton' / 'inbox'}",
        f"  what the registry got back:      {directory / 'registry' / 'inbox'}",
        f"  ech-gateway --config {config} cases list",
        f"  ech-gateway --config {config} messages list",
        f"  ech-gateway --config {config} messages show <ID>",
        f"  ech-gateway --config {config} dead-letters",
        f"  ech-gateway --config {config} journal verify",
    ]
    return "\n".join(lines)
