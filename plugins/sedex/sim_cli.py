"""``ech-gateway sedex-sim``: the sedex simulator on the folders the configuration names.

It reads the gateway's configuration (``--config``, ``$ECH_GATEWAY_CONFIG``,
or the default places) and serves the sedex folders of one partner: it takes
what the gateway puts into that partner's outbox, writes receipts, and
delivers into the partner's simulated inbox (``--deliver-to``, default
``<data_dir>/<partner>/inbox``). With ``--answer`` the partner answers each
delivered message into the gateway's own sedex inbox, so that a site can test
its setup end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.api import Command, ConfigError, counted, load_config
from plugins.sedex.options import SedexOptions
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.sim_answers import ANSWER_KINDS, Answerer

#: Exit codes, as the ``ech-gateway`` command names them.
EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_NOT_FOUND = 3


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (the configuration file is the global ``--config``)."""
    parser.add_argument("--partner", metavar="NAME",
                        help="the sedex partner to simulate (default: the only one)")
    parser.add_argument("--deliver-to", type=Path, metavar="DIR",
                        help="the partner's inbox for delivered messages"
                        " (default: <data_dir>/<partner>/inbox)")
    parser.add_argument("--answer", choices=ANSWER_KINDS,
                        help="answer each delivered message into the gateway's sedex inbox:"
                        " reject (a negative eventReport) or message (a new message)")
    parser.add_argument("--once", action="store_true",
                        help="handle what is in the outbox, then exit")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--failure-rate", type=float, default=0.0, metavar="F",
                        help="share of messages failing with a transient code (default 0)")
    parser.add_argument("--pending-rate", type=float, default=0.0, metavar="F",
                        help="share of messages answered 601 before 100 (default 0)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")


def partner_options(settings: Any, name: str | None) -> tuple[str, SedexOptions]:
    """The chosen sedex partner's name and options.

    :raises ConfigError: if there is no such sedex partner, or several and none was chosen.
    """
    sedex = {n: p.parsed for n, p in settings.partners.items()
             if isinstance(p.parsed, SedexOptions)}
    file = str(settings.config_files[0]) if settings.config_files else "configuration"
    known = ", ".join(sorted(sedex)) or "none"
    if name is None and len(sedex) == 1:
        name = next(iter(sedex))
    if name is None or name not in sedex:
        what = f"no sedex partner {name!r}" if name else "choose a partner with --partner"
        raise ConfigError([(file, "partners", f"{what}; sedex partners: {known}")])
    return name, sedex[name]


def simulator_for(settings: Any, args: argparse.Namespace) -> tuple[SedexSimulator, list[Path]]:
    """The simulator serving the chosen partner's folders in ``settings``, and those folders."""
    name, options = partner_options(settings, args.partner)
    folders = [options.outbox, options.receipts, options.processed]
    answer = None
    if args.answer:
        answer = Answerer(options.inbox, args.answer, seed=args.seed)
        folders.append(options.inbox)
    sim = SedexSimulator(
        options.outbox, options.receipts, options.processed,
        args.deliver_to or settings.gateway.data_dir / name / "inbox",
        seed=args.seed, failure_rate=args.failure_rate, pending_rate=args.pending_rate,
        poll_interval=options.poll_interval, answer=answer,
    )
    return sim, folders


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
    try:
        sim, folders = simulator_for(load_config(args.config, args.pm), args)
    except ConfigError as exc:
        print(f"sedex-sim: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    missing = [p for p in folders if not p.is_dir()]
    if missing:
        print(f"sedex-sim: missing folder(s): {', '.join(map(str, missing))} "
              "(create them, or run 'ech-gateway init' first)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.once:
        print(f"sedex-sim: handled {counted(sim.step(), 'message')}")
        return EXIT_OK
    print(f"sedex-sim: serving {sim.outbox} -> {sim.delivered_to}", file=sys.stderr)
    asyncio.run(_serve(sim, args.duration))
    return EXIT_OK


COMMAND = Command("sedex-sim", "simulate the sedex client on the configured sedex folders",
                  configure, run)
