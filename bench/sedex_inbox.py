"""The sedex inbox's reading cost: N pairs taken from the inbox into the store.

Usage (from the project root, after `make setup`)::

    .venv/bin/python bench/sedex_inbox.py [--pairs 5000] [--runs 3] [--dir DIR]

Each run writes a fresh gateway folder (``ech-gateway init``) and puts N
valid pairs into its sedex inbox before the clock starts: ``data_<id>.xml``,
an eCH-0020 v3 event delivery of ``bench/ech0020_inputs.py`` (issue 8:
registries send them over sedex, in bulk after an outage), and
``envl_<id>.xml``, an eCH-0090 envelope from the canton partner's
``recipient_id`` to our ``sender_id``. Then it drives the canton partner's
sedex transport the way the daemon does (``scan_inbox`` until every pair is
taken: listing, reading, storing, moving into ``processed``, one ``syncfs``
of ``processed`` per scan), in this process, with the gateway's SQLite store
as the intake (inputs stored durably, group commit), without processing
them. ``settle`` is 0 (as for a sedex client that renames files into place),
so no scan waits for a file to settle.

It prints, per run and as the median of the runs: pairs/s from the first
scan until the last pair was stored and moved, and the CPU time per pair of
this process (its threads included: reading, the store's commits; per run
also split into user and system time): what the daemon's event-loop
process spends on each inbound pair. Also the load
average before and after: on a shared machine, compare runs made close
together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ech0020_inputs import Corpus

from gateway.assembly import load_config
from gateway.config import write_initial_config
from gateway.contracts import RawInput
from gateway.plugin_types import PluginContext
from gateway.plugins import get_plugin_manager
from gateway.processor import normalise_context
from gateway.store import SQLiteStore
from plugins.sedex import create_transport
from plugins.sedex.envelope import Envelope, build_envelope
from plugins.sedex.options import SedexOptions

#: An eCH-0020 message type (of the cantonal range; the inbox does not check it).
MESSAGE_TYPE = 2_000_020


class StoreIntake:
    """The gateway's store as the inbox's intake: inputs stored durably, not processed."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.stored = self.quarantined = 0

    async def submit(self, raws: Sequence[RawInput], *, wait: bool = True) -> list[int]:
        rows = await self.store.add_raw(raws)
        self.stored += len(rows)
        return [mid for mid, _new in rows]

    async def quarantine(self, raw: RawInput, reason: str, *, wait: bool = True) -> int:
        self.quarantined += 1
        print(f"quarantined {raw.ref}: {reason}", file=sys.stderr)
        return await self.store.quarantine_raw(raw, reason)


def fill_inbox(options: SedexOptions, payloads: list[bytes]) -> None:
    """One pair per payload in the inbox, the envelope from the partner to us."""
    now = datetime.now().astimezone()
    inbox = options.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    for n, payload in enumerate(payloads):
        key = f"bench-{n:06d}"
        (inbox / f"data_{key}.xml").write_bytes(payload)
        envelope = Envelope(key, MESSAGE_TYPE, 0, options.recipient_id, (options.sender_id,),
                            now, now)
        (inbox / f"envl_{key}.xml").write_bytes(build_envelope(envelope))


async def one_run(work: Path, payloads: list[bytes]) -> tuple[float, float, float, int]:
    """Take the pairs from a fresh gateway's inbox: pairs/s, CPU µs per pair (user, system),
    scans."""
    root = work / "gateway"
    (root / "conf.d").mkdir(parents=True, exist_ok=True)
    config = write_initial_config(root)
    (root / "conf.d" / "50-bench.toml").write_text("[partners.canton.sedex]\nsettle = \"0s\"\n")
    settings = load_config(config, get_plugin_manager())
    options = settings.partners["canton"].parsed
    assert isinstance(options, SedexOptions)
    fill_inbox(options, payloads)
    os.sync()
    store = SQLiteStore(settings.store.path,
                        group_commit_max=settings.store.group_commit_max,
                        group_commit_delay=settings.store.group_commit_delay)
    store.start()
    try:
        transport = create_transport(options, PluginContext(
            "canton", settings.gateway.data_dir, normalise_context(settings), settings))
        intake = StoreIntake(store)
        scans = 0
        wall, cpu = time.perf_counter(), os.times()
        while intake.stored + intake.quarantined < len(payloads):
            await transport.scan_inbox(intake)
            scans += 1
        wall, end = time.perf_counter() - wall, os.times()
    finally:
        store.close()
    if intake.quarantined:
        raise SystemExit(f"{intake.quarantined} pairs were quarantined: not a valid benchmark")
    left = [name for name in os.listdir(options.inbox) if name.startswith(("data_", "envl_"))]
    if left:
        raise SystemExit(f"{len(left)} files are still in the inbox")
    per_pair = 1e6 / len(payloads)
    return (len(payloads) / wall, (end.user - cpu.user) * per_pair,
            (end.system - cpu.system) * per_pair, scans)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the gateway folders go (default: the system's temporary folder)")
    args = ap.parse_args()
    payloads = list(Corpus.load().events_of(args.pairs))
    size = sum(map(len, payloads)) / len(payloads)
    print(f"pairs:              {args.pairs} eCH-0020 v3 deliveries ({size / 1000:.1f} KB on"
          " average) with their envelopes")
    print(f"load before:        {load()}")
    results = []
    # the folders go after the last run: on ext4 without a journal, files deleted
    # minutes ago make every file created meanwhile dearer (README, "Benchmarks")
    work = Path(tempfile.mkdtemp(prefix="ech-gateway-sedex-inbox-", dir=args.dir))
    try:
        for run in range(1, args.runs + 1):
            rate, user, system, scans = asyncio.run(one_run(work / f"run-{run}", payloads))
            results.append((rate, user + system))
            print(f"run {run}:             {rate:,.0f} pairs/s, {user + system:,.0f} µs CPU per"
                  f" pair ({user:,.0f} user, {system:,.0f} system; {scans} scans)")
    finally:
        shutil.rmtree(work)
    print(f"load after:         {load()}")
    print(f"median:             {statistics.median(r for r, _ in results):,.0f} pairs/s,"
          f" {statistics.median(c for _, c in results):,.0f} µs CPU per pair")


if __name__ == "__main__":
    main()
