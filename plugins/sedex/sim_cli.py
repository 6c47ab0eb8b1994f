"""``ech-gateway sedex-sim DIR``: run the sedex simulator on a gateway directory.

``DIR`` is a directory made by ``ech-gateway init``: the simulator serves
``DIR/sedex/{outbox,receipts,processed}`` and delivers into ``DIR/canton/inbox``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from gateway.api import Command
from plugins.sedex.sim import SedexSimulator

#: Exit codes, as the ``ech-gateway`` command names them.
EXIT_OK = 0
EXIT_NOT_FOUND = 3


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument("directory", type=Path, metavar="DIR",
                        help="gateway directory (made by ech-gateway init)")
    parser.add_argument("--once", action="store_true",
                        help="handle what is in the outbox, then exit")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--failure-rate", type=float, default=0.0, metavar="F",
                        help="share of messages failing with a transient code (default 0)")
    parser.add_argument("--pending-rate", type=float, default=0.0, metavar="F",
                        help="share of messages answered 601 before 100 (default 0)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")


def simulator_for(directory: Path, args: argparse.Namespace) -> SedexSimulator:
    """The simulator serving the sedex folders of a gateway directory."""
    sedex = directory / "sedex"
    return SedexSimulator(
        sedex / "outbox", sedex / "receipts", sedex / "processed", directory / "canton" / "inbox",
        seed=args.seed, failure_rate=args.failure_rate, pending_rate=args.pending_rate,
    )


async def _serve(sim: SedexSimulator, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    await sim.run(stop)


def run(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted, for ``--duration``, or ``--once``."""
    sim = simulator_for(args.directory, args)
    missing = [p for p in (sim.outbox, sim.receipts, sim.processed) if not p.is_dir()]
    if missing:
        print(f"sedex-sim: missing folder(s): {', '.join(map(str, missing))} "
              "(run 'ech-gateway init DIR' first)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.once:
        print(f"sedex-sim: handled {sim.step()} message(s)")
        return EXIT_OK
    print(f"sedex-sim: serving {sim.outbox} -> {sim.delivered_to}", file=sys.stderr)
    asyncio.run(_serve(sim, args.duration))
    return EXIT_OK


COMMAND = Command("sedex-sim", "simulate the sedex client on a gateway directory", configure, run)
