"""Throughput benchmark: N messages from the registry folder to the sedex outbox.

Usage (from the project root, after `make setup`)::

    .venv/bin/python bench/throughput.py [--messages 20000] [--runs 5] [--rate 0] [--floor]
    .venv/bin/python bench/throughput.py --ech0020 [--messages 20000] [--floor]

It writes a fresh gateway folder (``ech-gateway init``), starts the gateway
as its own process (``ech-gateway run``, durable: SQLite synchronous=FULL
with group commit, sedex files synced once per batch), starts a stand-in
for the sedex client in another process, and waits until every delivery is
``delivered``. N distinct sample messages go into the registry folder: as a
backlog written before the gateway starts (default), or at ``--rate`` msgs/s
while it runs (for latency under a steady load). Rates count from the first
pickup.

The inputs are eCH-0223 1.5 sample messages about foreign residents
(default), or with ``--ech0020`` eCH-0020 v3 deliveries made from the
fixture corpus (``bench/ech0020_inputs.py``): N event deliveries (moveIn,
move, changeResidencePermit, marriage, death, ...; about 46 kinds), after
base deliveries that seed the persons the identification-only events need.
The base deliveries are processed before the clock starts (a register's
baseDelivery comes long before its events); the events then go into the
registry folder at once (or at ``--rate``).

The gateway runs with the rules ``ech-gateway init`` writes (foreign
nationals before the event go to the canton; the rest is not relevant),
not with a rule that routes everything: the bench measures the gateway as
it is configured. So it waits until every input is processed and every
delivery the rules made is delivered, however many that is, and rates
count inputs (msgs/s) and, separately, deliveries (events/s). All the
eCH-0223 samples are about foreign residents, so all of them get a
delivery; of the eCH-0020 corpus, 41 of 46 event kinds do (``MANIFEST.toml``,
``default_rule``), and the bench says when the count differs.

The stand-in is by default a lean receipt writer (``bench/sedex_echo.py``):
it moves each sent pair to ``processed`` and writes an eCH-0090 v2 receipt
with status 100, as the sedex client does, and nothing else, so the figures
are the gateway's. ``--full-sim`` uses ``ech-gateway sedex-sim`` instead,
which also checks every envelope and copies each message into a simulated
canton inbox; on a 2-core machine it competes with the gateway for a core.
It prints:

- msgs/s (inputs) and events/s (deliveries) from the first pickup to the
  last message in the sedex outbox,
- msgs/s until the last receipt was recorded,
- p50/p99 latency from pickup (stored) to outbox (files written and synced),
- the peak RSS (VmHWM) of the gateway process and of its child processes
  (with ``--ech0020`` counted from the end of the seeding, where Linux allows),
- the CPU seconds each process used (with ``--ech0020``, after the seeding), and per input,
- what creating a file cost just before the run.

Before each run it waits (up to ``--settle-max``) until creating a file is
cheap: on ext4 without a journal, files deleted in the last minutes (an
earlier run's folders, a test run) make every file creation scan past them,
which can cost the gateway a third of its throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ech0020_inputs import Corpus
from ech0223_inputs import drop, samples

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: The registry and the stand-in rename files into place: no settle time needed.
OVERRIDES = """\
[gateway]
log_level = "WARNING"
[dispatcher]
idle_poll = "100ms"
[sources.registry]
settle = "0s"
[partners.canton.sedex]
poll_interval = "100ms"
settle = "0s"
"""


def move_all(staging: Path, folder: Path) -> None:
    """Rename every file of ``staging`` into ``folder``, in name order (a burst while running)."""
    for name in sorted(os.listdir(staging)):
        os.replace(staging / name, folder / name)


def creation_cost(folder: Path, count: int = 500) -> float:
    """Microseconds to create one empty file in ``folder`` (the files are kept).

    On ext4 without a journal, creating a file scans past every inode deleted
    in the last minutes; after a large ``rm -r`` this costs several times the
    usual and would make the gateway look slow.
    """
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=folder))
    start = time.perf_counter()
    for i in range(count):
        os.close(os.open(probe / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - start) / count * 1e6


def settle(folder: Path, limit_us: float, max_wait: float, patience: float = 90.0) -> float:
    """Wait until creating a file in ``folder`` costs at most ``limit_us``; return the cost.

    The deleted-inode penalty wears off within minutes, so the cost keeps
    falling while it lasts; when it has not reached a new low (by a tenth)
    for ``patience`` seconds, this is the machine's usual cost and waiting
    longer would not help.
    """
    now = time.monotonic()
    deadline, cost = now + max_wait, creation_cost(folder)
    best, best_at = cost, now
    while cost > limit_us and now < deadline:
        if now - best_at >= patience:
            print(f"file creation stays at about {best:.0f} us; measuring anyway", flush=True)
            break
        print(f"file creation costs {cost:.0f} us (recently deleted inodes?); waiting",
              flush=True)
        time.sleep(15)
        cost, now = creation_cost(folder), time.monotonic()
        if cost < 0.9 * best:
            best, best_at = cost, now
    return cost


#: Message states an input leaves once it is processed.
_PENDING = ("received", "normalised")


def _query(db: Path, sql: str, *params: object) -> tuple[Any, ...]:
    """One row of a read-only query (``(None, None)`` while the database or its tables are missing)."""
    if not db.exists():
        return (None, None)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return tuple(conn.execute(sql, params).fetchone())
    except sqlite3.OperationalError:
        return (None, None)
    finally:
        conn.close()


def wait_for(db: Path, inputs: int, timeout: float, after: int = 0) -> int:
    """Wait until the ``inputs`` inputs stored after id ``after`` are processed and delivered.

    Done means: that many inputs have left ``received``, and every delivery the
    rules made of them is ``delivered`` (receipt recorded). Returns the id of
    the last of them.
    """
    deadline = time.monotonic() + timeout
    status = "nothing stored yet"
    while time.monotonic() < deadline:
        time.sleep(0.5)
        done, last = _query(db, "SELECT count(*), max(id) FROM messages"
                            f" WHERE id > ? AND state NOT IN {_PENDING}", after)
        waiting, total = _query(db, "SELECT count(*) FILTER (WHERE d.state != 'delivered'),"
                                " count(*) FROM deliveries d WHERE d.message > ?", after)
        status = f"{done} of {inputs} processed, {waiting} of {total} deliveries not delivered"
        if done is not None and done >= inputs and waiting == 0:
            return int(last or after)
    raise SystemExit(f"timed out: {status}")


def figures(db: Path, after: int = 0) -> dict[str, float]:
    """Throughput and latency of the inputs stored after id ``after``, from the store's timestamps."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT m.received_at, d.sent_at FROM messages m JOIN deliveries d ON d.message = m.id"
        " WHERE m.id > ?", (after,)).fetchall()
    inputs, t0, done_at = conn.execute(
        "SELECT count(*), min(received_at), max(updated_at) FILTER (WHERE state != 'routed')"
        " FROM messages WHERE id > ?", (after,)).fetchone()
    states = dict(conn.execute("SELECT state, count(*) FROM messages WHERE id > ? GROUP BY state",
                               (after,)).fetchall())
    quarantined = conn.execute("SELECT reason FROM messages WHERE id > ? AND state = 'quarantined'"
                               " LIMIT 3", (after,)).fetchall()
    delivered_at = conn.execute("SELECT max(r.recorded_at) FROM receipts r").fetchone()[0]
    conn.close()
    if quarantined:
        raise SystemExit(f"{states['quarantined']} inputs quarantined, e.g. {quarantined}")
    latencies = sorted((s - r) * 1000 for r, s in rows)
    end = max([s for _r, s in rows] + ([done_at] if done_at is not None else []))
    return {
        "inputs": inputs,
        "deliveries": len(rows),
        "not_relevant": states.get("not_relevant", 0),
        "outbox_rate": inputs / (end - t0),
        "event_rate": len(rows) / (end - t0),
        "receipt_rate": inputs / (max(delivered_at, end) - t0),
        "p50_ms": latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] if latencies else float("nan"),
    }


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pids: list[int]) -> bool:
    """Restart the VmHWM of ``pids`` from their current RSS (Linux ``clear_refs``); done?"""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def note_worker_peaks(gateway: int, peaks: dict[int, float]) -> None:
    """Raise ``peaks`` (MiB by pid) to the peak RSS each child process of ``gateway`` has now."""
    for pid in children(gateway):
        try:
            peaks[pid] = max(peaks.get(pid, 0.0), peak_rss_mib(pid))
        except OSError:
            continue  # ended meanwhile


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def start_gateway(cli: str, config: Path) -> subprocess.Popen[bytes]:
    """``ech-gateway --config CONFIG run``, its log in ``gateway.log`` beside the configuration
    (kept with ``--keep``), not among the figures."""
    with (config.parent / "gateway.log").open("ab") as log:
        return subprocess.Popen([cli, "--config", str(config), "run"], stdout=log,
                                stderr=subprocess.STDOUT)


def children(pid: int) -> list[int]:
    """The running child processes of ``pid`` (the gateway's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def cpu_snapshot(gateway: int, stand_in: int) -> dict[str, tuple[float, float]]:
    """User and system CPU seconds so far of the gateway, its workers (together) and the stand-in."""
    snap = {}
    for label, pids in (("gateway", [gateway]), ("workers", children(gateway)),
                        ("stand-in", [stand_in])):
        times = [cpu_seconds(p) for p in pids]
        snap[label] = (sum(t[0] for t in times), sum(t[1] for t in times))
    return snap


def cpu_report(now: dict[str, tuple[float, float]], before: dict[str, tuple[float, float]],
               inputs: int) -> str:
    """Two lines: CPU seconds of each process since ``before``, and their µs per input."""
    spent = {label: (user - before[label][0], system - before[label][1])
             for label, (user, system) in now.items()}
    seconds = ", ".join(f"{label} {user:.1f}+{system:.1f}" for label, (user, system) in spent.items())
    per_input = ", ".join(f"{label} {(user + system) / inputs * 1e6:,.0f}"
                          for label, (user, system) in spent.items())
    total = sum(user + system for user, system in spent.values()) / inputs * 1e6
    return (f"CPU s (user+sys):    {seconds}\n"
            f"CPU µs per input:    {per_input}; all {total:,.0f}")


def run_once(args: argparse.Namespace, parent: Path | None) -> tuple[Path, dict[str, float]]:
    """One gateway folder, one run; prints its figures and returns them."""
    work = Path(tempfile.mkdtemp(prefix="ech-gateway-bench-", dir=parent))
    cli = str(BIN / "ech-gateway")
    subprocess.run([cli, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
    (work / "conf.d").mkdir(exist_ok=True)
    (work / "conf.d" / "90-bench.toml").write_text(OVERRIDES)
    if args.toml:
        (work / "conf.d" / "95-extra.toml").write_text(args.toml.replace("\\n", "\n") + "\n")
    config = str(work / "gateway.toml")
    inbox, db = work / "registry" / "outbox", work / "gateway.db"
    corpus = Corpus.load() if args.ech0020 else None
    inputs = corpus.events_of(args.messages) if corpus else samples(args.messages, args.seed)
    seeds = drop(inbox, corpus.bases(args.messages), prefix="base") if corpus else 0
    staging = work / "staging"
    staging.mkdir()
    creation_us = settle(work, args.settle_limit, args.settle_max)
    if not args.rate:  # a burst: the backlog is ready (in the folder, unless seeds go first)
        drop(staging if seeds else inbox, inputs)
    gateway = start_gateway(cli, work / "gateway.toml")
    stand_in = ([cli, "--config", config, "sedex-sim", "--failure-rate", "0",
                 "--deliver-to", str(work / "canton" / "inbox")] if args.full_sim
                else [sys.executable, str(ROOT / "bench" / "sedex_echo.py"), str(work)])
    sim = subprocess.Popen(stand_in, stdout=subprocess.DEVNULL)
    try:
        seeded = wait_for(db, seeds, timeout=600) if seeds else 0
        cpu_before = cpu_snapshot(gateway.pid, sim.pid)
        peak_since = "the seeding" if seeds and reset_peak_rss(
            [gateway.pid, *children(gateway.pid)]) else "the start"
        if args.rate:  # a steady load: the registry writes while the gateway runs
            time.sleep(2.0)
            drop(inbox, inputs, args.rate)
        elif seeds:
            move_all(staging, inbox)
        wait_for(db, args.messages, timeout=600, after=seeded)
        rss = peak_rss_mib(gateway.pid)
        worker_rss = [peak_rss_mib(pid) for pid in children(gateway.pid)]
        cpu_after = cpu_snapshot(gateway.pid, sim.pid)
    finally:
        for proc in (gateway, sim):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, sim):
            proc.wait(timeout=60)
    f = figures(db, after=seeded)
    mode = "burst" if not args.rate else f"{args.rate:.0f}/s"
    kind = "eCH-0020 v3 deliveries" if corpus else "eCH-0223 messages"
    print(f"inputs:              {f['inputs']} {kind} ({mode},"
          f" {'sedex-sim' if args.full_sim else 'echo'})")
    if corpus:
        print(f"seeded before:       {seeds} base deliveries,"
              f" {corpus.copies(args.messages) * corpus.persons} persons (not timed)")
    expected = corpus.expected(args.messages) if corpus else args.messages
    print(f"deliveries:          {f['deliveries']:.0f} ({f['not_relevant']:.0f} inputs not relevant"
          f" under the default rules{'' if f['deliveries'] == expected else f'; expected {expected}'})")
    print(f"pickup -> outbox:    {f['outbox_rate']:.0f} msgs/s, {f['event_rate']:.0f} events/s")
    print(f"pickup -> receipt:   {f['receipt_rate']:.0f} msgs/s")
    print(f"latency p50 / p99:   {f['p50_ms']:.1f} ms / {f['p99_ms']:.1f} ms (pickup -> outbox)")
    print(f"gateway peak RSS:    {rss:.0f} MiB, its {len(worker_rss)} child processes"
          f" (workers, resource tracker) {sum(worker_rss):.0f} MiB (since {peak_since})")
    print(cpu_report(cpu_after, cpu_before, args.messages))
    print(f"file creation:       {creation_us:.0f} us per file before the run")
    if not args.rate:  # a steady load measures latency; its rate is the one asked for
        print(f"against the 3,000 msgs/s target: {f['receipt_rate'] / 3000:.2f} (with receipts),"
              f" {f['outbox_rate'] / 3000:.2f} (to the outbox)")
    return work, f


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=0.0, help="msgs/s to drop at (0: all at once)")
    ap.add_argument("--runs", type=int, default=1, help="runs, each in a fresh folder; prints the median")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the gateway folders go (default: the system's temporary folder)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the gateway folders")
    ap.add_argument("--full-sim", action="store_true", help="use ech-gateway sedex-sim")
    ap.add_argument("--floor", action="store_true",
                    help="also measure the minimal script (bench/floor.py) and print the ratio")
    ap.add_argument("--settle-limit", type=float, default=25.0,
                    help="wait before a run until creating a file costs at most this (us)")
    ap.add_argument("--settle-max", type=float, default=420.0,
                    help="wait at most this long (s) for file creation to settle")
    ap.add_argument("--ech0020", action="store_true",
                    help="eCH-0020 v3 deliveries made from the fixture corpus, after base deliveries")
    ap.add_argument("--toml", default="", help="extra configuration, e.g. '[gateway]\\nworkers = 1'")
    args = ap.parse_args()
    folders, runs = [], []
    try:
        for n in range(args.runs):
            if args.runs > 1:
                print(f"-- run {n + 1} of {args.runs}")
            work, f = run_once(args, args.dir)
            folders.append(work)
            runs.append(f)
        rate = statistics.median(f["receipt_rate"] for f in runs)
        outbox = statistics.median(f["outbox_rate"] for f in runs)
        if args.runs > 1:
            print(f"-- median of {args.runs}: pickup -> receipt {rate:.0f} msgs/s,"
                  f" pickup -> outbox {outbox:.0f} msgs/s ({rate / 3000:.2f} of the target)")
        if args.floor:
            from floor import floor

            with tempfile.TemporaryDirectory(prefix="ech-gateway-floor-", dir=args.dir) as tmp:
                creation_us = settle(Path(tmp), args.settle_limit, args.settle_max)
                base = floor(args.messages, Path(tmp))
            print(f"minimal script:      {base:.0f} msgs/s on this machine now"
                  f" (file creation {creation_us:.0f} us per file before it);"
                  f" gateway/minimal = {outbox / base:.2f} (to the outbox),"
                  f" {rate / base:.2f} (with receipts)")
    finally:
        # removed only now: on ext4 without a journal, creating files right after
        # many were deleted is several times slower for minutes (see README)
        for work in folders:
            if args.keep:
                print(f"folder: {work}")
            else:
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
