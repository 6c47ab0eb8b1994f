"""What converting a 1.5 message to a partner's eCH-0223 version costs, per message.

Converts the same varied sample messages (every personEvent, with and without
personData) to each target, from bytes and from a parsed tree (as the convert
stage does), and prints the best of ``--runs`` runs in µs/message. Validating
the result against the target schema is measured too: the stage does that as well.

Usage: .venv/bin/python bench/versions.py [--messages 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import time

from lxml import etree

from gateway.ech0223 import sample_person_event, write_message
from gateway.ech0223.samples import PERSON_EVENTS
from gateway.ech0223.versions import convert
from gateway.xml.validation import default_schema_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    messages = [write_message(sample_person_event(random.Random(n), full=n % 5 != 4,
                                                  event=PERSON_EVENTS[n % len(PERSON_EVENTS)]))
                for n in range(args.messages)]
    size = sum(map(len, messages)) // len(messages)
    print(f"{len(messages)} messages, {size} bytes on average")
    trees = [etree.ElementTree(etree.fromstring(m)) for m in messages]
    schemas = default_schema_set()
    for target in ("1.5", "1.4", "1.3", "1.0"):
        converted = [convert(m, target).xml for m in messages]
        from_bytes = best(args.runs, lambda t=target: [convert(m, t) for m in messages])
        from_tree = best(args.runs, lambda t=target: [convert(m, t) for m in trees])
        check = best(args.runs, lambda t=target, out=converted: [
            schemas.validate(c, ech0223_version=t) for c in out])
        per = 1e6 / len(messages)
        print(f"1.5 → {target}: convert {from_bytes * per:6.1f} µs/message from bytes,"
              f" {from_tree * per:6.1f} from a parsed tree;"
              f" validating the result {check * per:6.1f}")


def best(runs: int, work: object) -> float:
    """The shortest wall time of ``runs`` calls of ``work``."""
    assert callable(work)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    main()
