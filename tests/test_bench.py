"""The throughput benchmark runs end to end on a few inputs and prints its figures.

Timings are not checked (the machine is shared); what is: the bench waits
for exactly the deliveries the default rules make, and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "throughput.py"


def run_bench(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--settle-max", "0", "--dir", str(tmp_path), *args],
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def figure(out: str, label: str) -> str:
    found = re.search(rf"^{label}:\s+(.+)$", out, re.MULTILINE)
    assert found, f"no '{label}:' line in:\n{out}"
    return found[1]


@pytest.mark.parametrize(("args", "inputs", "deliveries", "seeded"), [
    (("--messages", "30"), "30 eCH-0223 messages", "30 (0 inputs not relevant", None),
    # 30 event files of the corpus in manifest order: move-swiss.xml and undoSwiss.xml
    # are about Swiss persons, so 28 deliveries
    (("--ech0020", "--messages", "30", "--floor"), "30 eCH-0020 v3 deliveries",
     "28 (2 inputs not relevant", "1 base deliveries, 46 persons"),
])
def test_bench_prints_its_figures(tmp_path: Path, args: tuple[str, ...], inputs: str,
                                  deliveries: str, seeded: str | None) -> None:
    out = run_bench(tmp_path, *args)
    assert figure(out, "inputs").startswith(inputs)
    assert figure(out, "deliveries").startswith(deliveries)
    assert "expected" not in figure(out, "deliveries")
    if seeded:
        assert figure(out, "seeded before").startswith(seeded)
    assert re.fullmatch(r"\d+ msgs/s, \d+ events/s", figure(out, "pickup -> outbox"))
    assert re.fullmatch(r"[\d.]+ ms / [\d.]+ ms \(pickup -> outbox\)",
                        figure(out, "latency p50 / p99"))
    assert re.match(r"\d+ MiB", figure(out, "gateway peak RSS"))
    if "--floor" in args:
        assert re.search(r"\(file creation \d+ us per file before it\); gateway/minimal ="
                         r" \d+\.\d\d \(to the outbox\)", figure(out, "minimal script"))
    assert list(tmp_path.iterdir()) == [], "the gateway folders are removed"


def per_input(script: str, *args: str, labels: tuple[str, ...]) -> tuple[str, dict[str, float]]:
    """Run ``bench/script`` with ``args``: its output, and the µs per input of each label."""
    done = subprocess.run([sys.executable, str(BENCH.with_name(script)), *args],
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    return out, {label: float(figure(out, label).split()[0]) for label in labels}


def test_store_ops_prints_each_operation() -> None:
    out, per_op = per_input("store_ops.py", "--batch", "20", "--batches", "2", labels=(
        "add_raw", "stored_persons", "record_processing", "claim_due", "record_outcomes",
        "record_receipts"))
    assert all(us > 0 for us in per_op.values()), out
    assert float(figure(out, "all").split()[0]) >= sum(per_op.values()) - 0.5


def test_stage_cost_prints_each_stage() -> None:
    out, per_stage = per_input("stage_cost.py", "--events", "30", "--runs", "1", labels=(
        "normalise", "to the event loop", "to the finishing worker", "finish", "results back"))
    assert per_stage["normalise"] > 0 and per_stage["finish"] > 0, out
    assert float(figure(out, "all").split()[0]) >= sum(per_stage.values()) - 0.5


def test_stage_cost_counts_instructions_under_valgrind() -> None:
    if shutil.which("valgrind") is None:  # CI installs it (.ci/run); elsewhere its absence skips
        if os.environ.get("CI") == "true":
            pytest.fail("valgrind is missing; .ci/run installs Debian's valgrind package")
        pytest.skip("valgrind is not installed (Debian package valgrind)")
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("stage_cost.py")), "--events", "5", "--instructions"],
        capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()
    per_input = figure(done.stdout.decode(), "instructions")
    assert re.fullmatch(r"[\d,]+ per input \(all stages, 5 events\)", per_input), per_input
    # an eCH-0020 event costs hundreds of thousands of instructions at the least
    assert int(per_input.split()[0].replace(",", "")) > 100_000, per_input


def test_sedex_inbox_takes_every_pair_and_prints_its_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("sedex_inbox.py")), "--pairs", "30", "--runs", "2",
         "--dir", str(tmp_path)], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert figure(out, "pairs").startswith("30 eCH-0020 v3 deliveries")
    for label in ("run 1", "run 2", "median"):
        assert re.match(r"[\d,]+ pairs/s, [\d,]+ µs CPU per pair", figure(out, label)), out
    assert list(tmp_path.iterdir()) == [], "the gateway folders are removed"


def test_parts_prints_each_part_and_the_ratio_they_allow() -> None:
    out, parts = per_input(
        "parts.py", "--events", "20", "--messages", "50", "--settle-max", "0",
        labels=("worker stages, normalise and finish", "store operations", "files, gateway",
                "files, sedex client"))
    assert all(us > 0 for us in parts.values()), out
    total = float(figure(out, "all").split()[0])
    assert abs(total - sum(parts.values())) < 0.5, out
    most = float(figure(out, "at most, on 2 cores").split()[0].replace(",", ""))
    assert abs(most - 2e6 / total) <= 1, out
    rate, ratio = re.fullmatch(r"([\d,]+) msgs/s; the highest ratio the parts allow: ([\d.]+)",
                               figure(out, "floor.py")).groups()
    assert abs(float(ratio) - most / float(rate.replace(",", ""))) < 0.01, out
