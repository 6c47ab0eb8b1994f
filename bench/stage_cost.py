"""What the worker stages cost per eCH-0020 input, in one process: CPU µs, or instructions.

The stages the worker processes run for each input of ``throughput.py
--ech0020``, without the daemon around them: normalise, the steps pickled to
the event loop, the batch's message ids with its persons' stored states
pickled back to the worker that normalised it and keeps its inputs (as the
pipeline hands them over), finish (complete, rules, convert, validate, person
merges), the results pickled back. The
persons are those of the base deliveries, as enrichment would find them.

CPU time on a shared machine swings by half from run to run; ``--instructions``
counts instructions instead (valgrind's cachegrind, about 40 times slower),
which stay within 0.2 % from run to run whatever else the machine does
(string hashing is fixed, so that dictionaries and sets come out alike; the
inputs' messageIds are new each run): the figure to compare a change by. It runs this script under
valgrind for two numbers of events and divides the difference, so that
start-up (imports, schemas) drops out.

Usage: .venv/bin/python bench/stage_cost.py [--events 1000] [--runs 3] [--instructions]
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ech0020_inputs import Corpus

from gateway import worker_stages
from gateway.config import load_settings, write_initial_config
from gateway.contracts import Normalised, RawInput
from gateway.person_state import PersonChange, StoredPerson

STAGES = ("normalise", "to the event loop", "to the finishing worker", "finish", "results back")
#: The first message id of each run's batch.
_first_ids = itertools.count(1_000_000, 1_000_000)
#: Events of the smaller of the two runs under valgrind (the larger adds ``--events``).
VALGRIND_BASE = 50


def known_states(bases: Sequence[bytes]) -> dict[str, StoredPerson]:
    """The stored state of every person of the base deliveries, by key: each normalised and
    finished (the states stay in the worker that read them until then)."""
    known: dict[str, StoredPerson] = {}
    for i, base in enumerate(bases):
        worker_stages.normalise_work([(i, RawInput("registry", f"base-{i}.xml", base))])
        [seeded] = worker_stages.finish_kept([i], {}) or []
        assert seeded.persons, f"base delivery {i} stated nobody: {seeded.reason}"
        for change in seeded.persons:
            assert isinstance(change, PersonChange)
            known.update(dict.fromkeys(change.keys, StoredPerson(i, change.merged)))
    return known


def one_run(events: Sequence[bytes], known: dict[str, StoredPerson]) -> dict[str, float]:
    """CPU seconds of each stage for ``events``, as one batch."""
    first = next(_first_ids)  # ids of their own: a worker forgets a batch's by id
    batch = [(first + i, RawInput("registry", f"event-{i}.xml", data))
             for i, data in enumerate(events)]
    spent: dict[str, float] = {}
    clock = time.process_time()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.process_time()
        spent[stage] = now - clock
        clock = now

    steps = worker_stages.normalise_work(batch)
    lap("normalise")
    steps = pickle.loads(pickle.dumps(steps))
    lap("to the event loop")
    todo = [(mid, step) for (mid, _raw), step in zip(batch, steps, strict=True)
            if isinstance(step, Normalised)]
    found = {key: StoredPerson(stored.pid, stored.text) for _mid, n in todo
             for key in n.subject if (stored := known.get(key)) is not None}
    mids, found = pickle.loads(pickle.dumps(([mid for mid, _n in todo], found)))
    lap("to the finishing worker")
    results = worker_stages.finish_kept(mids, found)
    assert results is not None, "the worker holds the batch it normalised"
    lap("finish")
    pickle.loads(pickle.dumps(results))
    lap("results back")
    return spent


def setup(events: int) -> tuple[list[bytes], dict[str, StoredPerson]]:
    """The processor of ``ech-gateway init``'s configuration; the inputs and known states."""
    with tempfile.TemporaryDirectory(prefix="ech-gateway-stage-cost-") as work:
        worker_stages.init_worker(load_settings(write_initial_config(Path(work) / "gateway")))
    corpus = Corpus.load()
    return list(corpus.events_of(events)), known_states(list(corpus.bases(events)))


def instructions(events: int) -> float:
    """Instructions per input of all stages: this script under valgrind, for two sizes."""
    with tempfile.TemporaryDirectory(prefix="ech-gateway-stage-cost-") as work:
        corpus = Corpus.load()
        inputs = Path(work) / "inputs.pickle"  # made here: copying the corpus is not counted
        inputs.write_bytes(pickle.dumps((list(corpus.bases(VALGRIND_BASE + events)),
                                         list(corpus.events_of(VALGRIND_BASE + events)))))
        counts = [_counted(inputs, n) for n in (VALGRIND_BASE, VALGRIND_BASE + events)]
    return (counts[1] - counts[0]) / events


def _counted(inputs: Path, events: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--from", str(inputs), "--events", str(events), "--runs", "1"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict and set orders every run
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per input under valgrind instead of timing")
    ap.add_argument("--from", dest="source", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind (Debian package valgrind)")
        print(f"instructions:        {instructions(args.events):,.0f} per input"
              f" (all stages, {args.events} events)")
        return
    if args.source is not None:  # a run under valgrind: inputs made by the parent
        bases, events = pickle.loads(args.source.read_bytes())
        with tempfile.TemporaryDirectory(prefix="ech-gateway-stage-cost-") as work:
            worker_stages.init_worker(load_settings(write_initial_config(Path(work) / "gateway")))
        one_run(events[:args.events], known_states(bases))
        return
    events, known = setup(args.events)
    runs = [one_run(events, known) for _ in range(args.runs)]
    for stage in STAGES:
        us = statistics.median(run[stage] for run in runs) / args.events * 1e6
        print(f"{stage + ':':<26} {us:7.1f} µs per input")
    total = statistics.median(sum(run.values()) for run in runs) / args.events * 1e6
    print(f"{'all:':<26} {total:7.1f} µs per input (median of {args.runs} runs)")


if __name__ == "__main__":
    main()
