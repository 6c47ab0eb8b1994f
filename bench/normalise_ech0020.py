"""eCH-0020 → eCH-0223 events per second, beside plain lxml parse + validate of the same inputs.

Each event file of the fixture corpus that becomes an eCH-0223 message is
normalised (``gateway_normalise``), completed with its person's state as seeded
by ``baseDelivery.xml`` (``draft.complete``) and its output validated against
our eCH-0223 1.5 XSD, in a process pool (2 workers: the machine's 2 cores). As
in the daemon, the draft completed is the one the worker kept from normalising
(the pipeline finishes a batch in the worker that normalised it, and only a
stand-in for the draft crosses to the core); ``--elsewhere`` completes a copy
that travelled to the core and back as the delivery's bytes instead, which
reads the delivery again, as a worker that does not hold the batch does.
The same inputs are then parsed and validated with lxml against the official
eCH-0020 v3 XSD (``../shared/schemas/official``; without it, the outputs are
parsed and validated against our eCH-0223 XSD instead), in the same pool size,
in the same run: the floor a normaliser that does nothing but check its input
would reach.

Usage: .venv/bin/python bench/normalise_ech0020.py [--events 20000] [--workers 2] [--runs 3] [--elsewhere]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lxml import etree

from gateway.api import NormaliseContext, Normalised, PersonState, RawInput, person_keys
from gateway.xml.validation import _CatalogResolver, _read_catalog, default_schema_set
from plugins.ech0020 import gateway_normalise

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "ech0020"
OFFICIAL = REPO.parent / "shared" / "schemas" / "official"
CONTEXT = NormaliseContext(max_bytes=1 << 24, max_zip_entries=100, max_zip_bytes=1 << 24, max_zip_ratio=100)
CHUNK = 250

_states: dict[str, PersonState] = {}
_inputs: list[bytes] = []
_official: etree.XMLSchema | None = None
_elsewhere = False


def corpus() -> tuple[bytes, list[bytes]]:
    """The base delivery and, in manifest order, every event file that becomes a message."""
    manifest = tomllib.loads((CORPUS / "MANIFEST.toml").read_text(encoding="utf-8"))
    events = [(CORPUS / entry["file"]).read_bytes() for entry in manifest["file"]
              if entry["expect"] != "none"]
    return (CORPUS / "baseDelivery.xml").read_bytes(), events


def seed(base: bytes) -> dict[str, PersonState]:
    """The person states of the base delivery, by key."""
    normalised = gateway_normalise(RawInput("bench", "baseDelivery.xml", base), CONTEXT)
    assert normalised is not None
    return {key: state for state in normalised.persons for key in person_keys(state.identification)}


def _init(base: bytes, inputs: list[bytes], official: bool, elsewhere: bool) -> None:
    global _official, _elsewhere
    _elsewhere = elsewhere
    _states.update(seed(base))
    _inputs[:] = inputs
    if official:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        parser.resolvers.add(_CatalogResolver(_read_catalog(OFFICIAL / "catalog.xml")))
        _official = etree.XMLSchema(etree.parse(str(OFFICIAL / "eCH-0020-3-0.xsd"), parser))
    _gateway(0, len(_inputs))  # warm up: compiled schemas, imports
    _lxml(0, len(_inputs))


def _complete(data: bytes) -> Normalised:
    """Normalise and complete one input (``--elsewhere``: a copy of the draft that travelled
    to the core and back)."""
    normalised = gateway_normalise(RawInput("bench", "event.xml", data), CONTEXT)
    assert normalised is not None and normalised.draft is not None
    person = next((_states[key] for key in normalised.subject if key in _states), None)
    if _elsewhere:
        return pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(normalised.draft)))).complete(
            person)
    return normalised.draft.complete(person)


def _gateway(first: int, count: int) -> tuple[int, float]:
    """Normalise, complete and validate ``count`` inputs: valid outputs, CPU seconds."""
    cpu = time.process_time()
    valid = 0
    for index in range(first, first + count):
        done = _complete(_inputs[index % len(_inputs)])
        assert done.tree is not None
        valid += default_schema_set().validate(done.tree).valid
    return valid, time.process_time() - cpu


def _lxml(first: int, count: int) -> tuple[int, float]:
    """Parse and validate ``count`` inputs with lxml alone: valid ones, CPU seconds."""
    cpu = time.process_time()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    valid = 0
    for index in range(first, first + count):
        data = _inputs[index % len(_inputs)]
        if _official is not None:
            valid += _official.validate(etree.fromstring(data, parser).getroottree())
        else:
            valid += default_schema_set().validate(etree.fromstring(_complete(data).xml, parser)).valid
    return valid, time.process_time() - cpu


def rate(pool: ProcessPoolExecutor, work: Callable[[int, int], tuple[int, float]],
         events: int) -> tuple[float, float, int]:
    """``work`` over ``events`` inputs in chunks: events per second, CPU µs per event, valid ones."""
    starts = list(range(0, events, CHUNK))
    begin = time.perf_counter()
    results = list(pool.map(work, starts, [min(CHUNK, events - s) for s in starts]))
    wall = time.perf_counter() - begin
    return events / wall, sum(cpu for _, cpu in results) / events * 1e6, sum(v for v, _ in results)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print both rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--elsewhere", action="store_true",
                        help="complete the travelled draft (read again), not the one the worker kept")
    args = parser.parse_args(argv)
    base, inputs = corpus()
    official = (OFFICIAL / "eCH-0020-3-0.xsd").is_file()
    floor = "lxml parse + validate, official eCH-0020 XSD" if official else \
        "lxml parse + validate of the outputs, our eCH-0223 XSD (no official eCH-0020 XSD found)"
    rates: dict[str, list[float]] = {"gateway": [], "lxml": []}
    cpus: dict[str, list[float]] = {"gateway": [], "lxml": []}
    setup = (base, inputs, official, args.elsewhere)
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=setup) as pool:
        for run in range(args.runs):
            for name, work in (("gateway", _gateway), ("lxml", _lxml)):
                per_second, cpu, valid = rate(pool, work, args.events)
                if valid != args.events:
                    raise SystemExit(f"{name}: only {valid} of {args.events} valid")
                rates[name].append(per_second)
                cpus[name].append(cpu)
            print(f"run {run + 1}: eCH-0020 → eCH-0223 {rates['gateway'][-1]:7,.0f} events/s"
                  f" ({cpus['gateway'][-1]:4.0f} µs CPU each)   {floor}: {rates['lxml'][-1]:7,.0f}/s"
                  f" ({cpus['lxml'][-1]:4.0f} µs CPU each)")
    gateway, lxml = statistics.median(rates["gateway"]), statistics.median(rates["lxml"])
    cpu = statistics.median(cpus["gateway"])
    print(f"\n{len(inputs)} distinct event files, {args.events} events per run, {args.workers} workers")
    print(f"median: eCH-0020 → eCH-0223 (normalise + complete + validate): {gateway:,.0f} events/s,"
          f" {cpu:.0f} µs CPU per event ({args.workers * 1e6 / cpu:,.0f}/s on {args.workers} idle cores)")
    print(f"median: {floor}: {lxml:,.0f}/s  (ratio {gateway / lxml:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
