"""The ``ech-gateway`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.cli import _inspect, _operate
from gateway.cli.exitcodes import CONFIG, NOT_FOUND
from gateway.errors import ConfigError, NotFound, PluginError
from gateway.plugins import get_plugin_manager


def build_parser(plugin_commands: Sequence[object] = ()) -> argparse.ArgumentParser:
    """The argument parser with every built-in and plugin command."""
    parser = argparse.ArgumentParser(
        prog="ech-gateway", description="A durable gateway for eCH-0223 messages.")
    parser.add_argument("--version", action="version", version=f"ech-gateway {__version__}")
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ECH_GATEWAY_CONFIG"),
        help="configuration file (default: $ECH_GATEWAY_CONFIG, ./gateway.toml,"
        " /etc/ech-gateway/gateway.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _operate.add_commands(sub)
    _inspect.add_commands(sub)
    for command in plugin_commands:
        p = sub.add_parser(command.name, help=command.help)  # type: ignore[attr-defined]
        command.configure(p)  # type: ignore[attr-defined]
        p.set_defaults(handler=command.run)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        pm = get_plugin_manager()
    except PluginError as exc:
        print(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    commands = [c for found in pm.hook.gateway_commands() for c in found]
    args = build_parser(commands).parse_args(argv)
    args.pm = pm
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return CONFIG
    except PluginError as exc:  # a type clash found once the types are listed
        print(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    except NotFound as exc:
        print(f"ech-gateway: {exc}", file=sys.stderr)
        return NOT_FOUND
    except KeyboardInterrupt:
        return 130
    return code
