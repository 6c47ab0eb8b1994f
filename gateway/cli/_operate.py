"""Commands that set up and run the gateway: init, check-config, run, validate, plugins."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from gateway import demo, early_signals, logs
from gateway.assembly import load_config, make_validator, schema_set
from gateway.cli import _access, _out
from gateway.cli._validate import cmd_validate
from gateway.cli.exitcodes import CONFIG, FAILED, OK
from gateway.config import (
    ConfigExists,
    check_environment,
    find_config,
    ignored_files,
    write_initial_config,
)
from gateway.config.system import CONFIG_FILE, DATA_DIR, UNIT_NAME, install_system
from gateway.daemon import Gateway
from gateway.errors import ConfigError
from gateway.plugins import describe, source_types, transport_types
from gateway.supervision import install_signal_handlers
from gateway.wording import counted
from gateway.xml.validation import ECH0223_VERSIONS


def add_commands(sub: Any) -> None:
    """Register this module's commands."""
    p = sub.add_parser("init", help="write a working configuration into DIR, or for a system"
                       " service with --system")
    p.add_argument("directory", type=str, nargs="?", metavar="DIR",
                   help="the folder to write gateway.toml and its folders into (created if"
                   " missing; an existing gateway.toml is never overwritten)")
    p.add_argument("--system", action="store_true",
                   help=f"install for systemd: {CONFIG_FILE}, data in {DATA_DIR},"
                   " the unit, sysusers and tmpfiles files")
    p.add_argument("--root", type=Path, default=Path("/"), metavar="ROOT",
                   help="with --system: install under ROOT instead of / (for images and tests)")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("check-config", help="list every configuration error, and folders the"
                       " gateway cannot use (exit 2 if any)")
    p.set_defaults(handler=cmd_check_config)

    p = sub.add_parser("run", help="run the gateway in the foreground until TERM")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("validate", help="validate eCH-0223 / eCH-0090 files against the schemas;"
                       " say what eCH-0020 deliveries become (sends nothing)",
                       description="eCH-0223 messages and eCH-0090 envelopes and receipts are"
                       " validated against the schemas. An eCH-0020 v3 delivery goes through the"
                       " daemon's processing: the eCH-0223 message it becomes, validated, or why"
                       " it would be quarantined or send nothing; the person state comes from"
                       " the files before it and the configuration's database. A JSON or CSV"
                       " export is pointed to map-test. Exit 1 if any file is invalid or"
                       " would be quarantined, 3 if one cannot be read.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="eCH-0223, eCH-0090 or eCH-0020 files (XML, or a zip), in order")
    p.add_argument("--official", metavar="CATALOG",
                   help="validate with the official schemas of this XML catalog instead")
    p.add_argument("--ech0223-version", choices=ECH0223_VERSIONS, metavar="VERSION",
                   help="eCH-0223 version of documents without a version attribute"
                   f" ({', '.join(ECH0223_VERSIONS)}; default: 1.5 rules, which require it);"
                   " a document with version=\"1.5\" is always 1.5; what an eCH-0020"
                   " delivery becomes is converted to this version and validated too")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("demo", help="run registry → gateway → sedex → canton in a temporary"
                       " folder and print a summary")
    demo.configure(p)
    p.set_defaults(handler=demo.run)

    p = sub.add_parser("plugins", help="list the loaded plugins, their hooks and types")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_plugins)


def cmd_init(args: argparse.Namespace) -> int:
    """Write ``DIR/gateway.toml`` and the folders it names, or (``--system``) a service install."""
    if args.system == (args.directory is not None):
        _out.say("ech-gateway init: give either DIR or --system", file=sys.stderr)
        return CONFIG
    try:
        written = (install_system(args.root) if args.system
                   else [write_initial_config(Path(args.directory))])
    except ConfigExists as exc:
        _out.say(f"ech-gateway init: {exc}", file=sys.stderr)
        return FAILED
    _out.say(*(f"wrote {path}" for path in written))
    if args.system:
        _out.say(f"then: systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload"
                 f" && systemctl enable --now {UNIT_NAME}")
    else:
        _out.say(f"run it with: ech-gateway --config {written[0]} run")
    return OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print every problem as file: key: reason, after a warning for each file in conf.d
    that is not read."""
    for ignored in ignored_files(find_config(args.config)):
        _out.say(f"{ignored}: (file): warning: not read, only files in conf.d whose name ends"
                 " in .toml are (rename it so to use it)")
    try:
        settings = _access.configuration(args)
    except ConfigError as exc:
        _out.say(*exc.lines)
        return CONFIG
    problems = check_environment(settings)
    if problems:
        _out.say(*ConfigError(problems).lines)
        return CONFIG
    files = ", ".join(str(f) for f in settings.config_files)
    _out.say(f"configuration is valid ({files}): {counted(len(settings.sources), 'source')},"
             f" {counted(len(settings.partners), 'partner')}")
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until TERM or INT.

    A TERM before the event loop runs, also one while Python was still loading the
    command line (:mod:`gateway.entry`), is kept for it: the daemon then starts nothing
    and stops. Once stopped, the process exits at once, rather than at Python's exit,
    if a worker process killed and left behind has not ended (:func:`_exit_now`).
    """
    settings = load_config(args.config, args.pm)
    logs.setup(settings.gateway.log_level, settings.gateway.log_format)
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: early.append(number))
    early += early_signals.take()  # a TERM while the command line was loading
    gateway = Gateway(settings, args.pm, make_validator(schema_set(settings)))

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop, on_second=gateway.abort.set)
        if early:
            stop.set()
        await gateway.run(stop)

    asyncio.run(main())
    if gateway.pool.left_behind():
        _exit_now(OK)
    return OK


def _exit_now(code: int) -> NoReturn:
    """Exit with ``code`` now, after flushing the logs and standard streams, skipping Python's
    exit handlers.

    Those join every worker process, and a worker killed while stuck in the kernel
    (uninterruptible sleep on a file system that hangs) ends only when that file
    system answers: the daemon, drained, its store closed, would linger until
    systemd kills it. Nothing else is left to do at exit: the store was closed, the
    plugins told to stop, and no other thread holds work.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_plugins(args: argparse.Namespace) -> int:
    """List plugins with their hooks, and the source and transport types."""
    pm = args.pm
    rows = describe(pm)
    types = {"sources": sorted(source_types(pm)), "transports": sorted(transport_types(pm))}
    if args.json:
        _out.exact(json.dumps({"plugins": rows, **types}, indent=2))
        return OK
    name_width = max([10, *(len(row["name"]) for row in rows)])
    module_width = max([22, *(len(row["module"]) for row in rows)])
    for row in rows:
        _out.say(f"{row['name']:<{name_width}} {row['module']:<{module_width}}"
                 f" {', '.join(row['hooks'])}")
    _out.say(f"source types: {', '.join(types['sources'])}")
    _out.say(f"transport types: {', '.join(types['transports'])}")
    return OK
