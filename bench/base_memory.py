"""Peak memory while a registry's base deliveries go through: it should not grow with them.

A commune's first load is its whole register as ``baseDelivery`` files of up
to ``[limits] max_document_bytes`` (128 MiB). This writes a fresh gateway folder
(``ech-gateway init``), puts ``--deliveries`` base deliveries of ``--copies``
copies of the fixture corpus's persons each (80 copies: 16.8 MB, 3,680
persons) into the registry folder, runs the gateway until every one is
processed, and prints the peak RSS (VmHWM) of the gateway process and of
each worker, with the time it took. Run it with twice the deliveries: the
peaks should stay where they are (README, "Batches bounded by bytes").

Usage: .venv/bin/python bench/base_memory.py [--deliveries 20] [--copies 80] [--dir DIR]
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


def _count(db: Path, sql: str) -> int | None:
    """The count ``sql`` gives (``None`` while the database or its tables are missing)."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def run(deliveries: int, copies: int, parent: Path | None) -> None:
    """One gateway folder, one run; prints its figures."""
    ech0020_inputs.COPIES_PER_BASE = copies
    corpus = ech0020_inputs.Corpus.load()
    work = Path(tempfile.mkdtemp(prefix="ech-gateway-base-memory-", dir=parent))
    try:
        cli = str(BIN / "ech-gateway")
        subprocess.run([cli, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
        # the bench renames each file into place: nothing to wait for
        (work / "conf.d" / "90-bench.toml").write_text('[sources.registry]\nsettle = "0s"\n')
        inbox = work / "registry" / "outbox"
        sizes = []
        bases = corpus.bases(deliveries * copies * len(corpus.events))
        for n, data in zip(range(deliveries), bases, strict=False):
            temp = inbox / f".base-{n:04}.xml"
            temp.write_bytes(data)
            os.replace(temp, inbox / f"base-{n:04}.xml")
            sizes.append(len(data))
        print(f"inputs:            {len(sizes)} base deliveries, {sum(sizes) / 1e6:.0f} MB,"
              f" the largest {max(sizes) / 1e6:.1f} MB")
        start = time.monotonic()
        gateway = start_gateway(cli, work / "gateway.toml")
        workers: dict[int, float] = {}
        try:
            while True:
                time.sleep(0.5)
                note_worker_peaks(gateway.pid, workers)
                done = _count(work / "gateway.db", "SELECT count(*) FROM messages"
                              " WHERE state != 'received'")
                if done is not None and done >= len(sizes):
                    break
                if gateway.poll() is not None:
                    raise SystemExit(f"the gateway stopped (exit {gateway.returncode})")
            took = time.monotonic() - start
            persons = _count(work / "gateway.db", "SELECT count(*) FROM persons")
            print(f"processed:         in {took:.0f} s, {persons or 0:,} persons stored")
            print(f"gateway peak RSS:  {peak_rss_mib(gateway.pid):.0f} MiB")
            print("worker peak RSS:   " + ", ".join(
                f"{mib:.0f}" for mib in sorted(workers.values(), reverse=True) if mib > 50)
                  + " MiB (the resource tracker left out)")
        finally:
            gateway.terminate()
            gateway.wait()
    finally:
        shutil.rmtree(work)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deliveries", type=int, default=20)
    ap.add_argument("--copies", type=int, default=80,
                    help="copies of the corpus's persons per base delivery (80: 16.8 MB)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the gateway folder goes (default: the system's temporary folder)")
    args = ap.parse_args()
    run(args.deliveries, args.copies, args.dir)


if __name__ == "__main__":
    main()
