"""One large ``baseDelivery`` (a whole town's register in one file): time and peak memory.

A commune's first step is its registry's ``baseDelivery`` of every resident it
keeps; a town of 20,000 foreign residents writes about 90 MB. For each
``--persons`` count this writes a fresh gateway folder (``ech-gateway init``,
``[limits] max_document_bytes`` raised to ``--limit`` unless it is ``init``'s),
makes ``--files`` base deliveries of that many persons each from the fixture
corpus (``ech0020_inputs``: copies of its 46 persons), renames them into the
registry folder together while the gateway runs, and measures from the drop
until every one is processed and its persons' states stored: the seconds, the
peak RSS (VmHWM) of the gateway process and of each worker, and the messages'
state and reason (a quarantine says why). The deliveries are valid against the
official eCH-0020 v3 XSD, as the corpus is.

Usage: .venv/bin/python bench/base_big.py [--persons 6000 20000 60000] [--files 1]
       [--limit 512MiB] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ech0020_inputs
from throughput import note_worker_peaks, peak_rss_mib, start_gateway

BIN = Path(sys.executable).parent


def _query(db: Path, sql: str) -> tuple[object, ...] | None:
    """The first row ``sql`` gives (``None`` while the database or its tables are missing)."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(sql).fetchone()
        return tuple(row) if row is not None else None
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def deliveries(persons: int, files: int = 1) -> list[bytes]:
    """``files`` base deliveries of (at least) ``persons`` persons each, copies of the
    corpus's, each file other persons."""
    corpus = ech0020_inputs.Corpus.load()
    copies = -(-persons // corpus.persons)
    ech0020_inputs.COPIES_PER_BASE = copies
    return list(corpus.bases(files * copies * len(corpus.events)))


def run(persons: int, files: int, limit: str | None, parent: Path | None, keep: bool) -> None:
    """One fresh gateway folder, ``files`` base deliveries of ``persons``; prints its figures."""
    inputs = deliveries(persons, files)
    stated = sum(data.count(b"<eCH-0020:baseDeliveryPerson>") for data in inputs)
    work = Path(tempfile.mkdtemp(prefix="ech-gateway-base-big-", dir=parent))
    try:
        cli = str(BIN / "ech-gateway")
        subprocess.run([cli, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
        toml = '[sources.registry]\nsettle = "0s"\n'
        if limit:
            toml += f'[limits]\nmax_document_bytes = "{limit}"\n'
        (work / "conf.d" / "90-bench.toml").write_text(toml)
        db = work / "gateway.db"
        gateway = start_gateway(cli, work / "gateway.toml")
        workers: dict[int, float] = {}
        try:
            while _query(db, "SELECT count(*) FROM messages") is None:  # running
                time.sleep(0.2)
            time.sleep(1.0)
            inbox = work / "registry" / "outbox"
            for n, data in enumerate(inputs):
                (inbox / f".base-{n}.xml").write_bytes(data)
            start = time.monotonic()
            for n in range(len(inputs)):
                os.replace(inbox / f".base-{n}.xml", inbox / f"base-{n}.xml")
            while True:
                time.sleep(0.25)
                note_worker_peaks(gateway.pid, workers)
                row = _query(db, "SELECT count(*), max(state), max(reason) FROM messages"
                                 " WHERE state != 'received'")
                if row is not None and row[0] == len(inputs):
                    break
                if gateway.poll() is not None:
                    raise SystemExit(f"the gateway stopped (exit {gateway.returncode})")
            took = time.monotonic() - start
            count = _query(db, "SELECT count(*) FROM persons")
            _done, state, reason = row
            size = sum(map(len, inputs)) / 1e6
            print(f"{stated:,} persons, {len(inputs)} file(s), {size:.1f} MB, limit"
                  f" {limit or 'init default'}: {state} in {took:.1f} s,"
                  f" {count[0] if count else 0:,} persons stored")
            if state == "quarantined":
                print(f"  reason: {str(reason)[:200]}")
            print(f"  gateway peak RSS {peak_rss_mib(gateway.pid):.0f} MiB, workers "
                  + ", ".join(f"{mib:.0f}" for mib in sorted(workers.values(), reverse=True)
                              if mib > 50) + " MiB")
        finally:
            gateway.terminate()
            gateway.wait()
    finally:
        if keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[6000, 20000, 60000])
    ap.add_argument("--files", type=int, default=1,
                    help="base deliveries of that many persons each, dropped together")
    ap.add_argument("--limit", default="512MiB",
                    help='[limits] max_document_bytes ("": the default ech-gateway init writes)')
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the gateway folders go (default: the system's temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the gateway folders (and logs)")
    args = ap.parse_args()
    for persons in args.persons:
        run(persons, args.files, args.limit or None, args.dir, args.keep)


if __name__ == "__main__":
    main()
