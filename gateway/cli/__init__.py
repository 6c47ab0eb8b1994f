"""The ``ech-gateway`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

from gateway import __version__, early_signals, logs
from gateway.cli import (
    _access,
    _cases,
    _handling,
    _inspect,
    _operate,
    _out,
    _partners,
    _persons,
    _retention,
    _rules,
    _send,
    _status,
)
from gateway.cli.exitcodes import (
    AMBIGUOUS,
    CLOSED_PIPE,
    CONFIG,
    FAILED,
    NOT_FOUND,
    STORE_LOST,
    UNAVAILABLE,
)
from gateway.errors import (
    Ambiguous,
    ConfigError,
    FolderHang,
    NotFound,
    PluginError,
    StoreError,
    StoreLost,
    StoreUnavailable,
    WorkerStartFailed,
)
from gateway.plugins import get_plugin_manager

_CONFIG_HELP = ("configuration file (default: $ECH_GATEWAY_CONFIG, ./gateway.toml,"
                " /etc/ech-gateway/gateway.toml)")


class _Parser(argparse.ArgumentParser):
    """A parser that takes ``--config`` at every level: ``ech-gateway status --config F`` too.

    Sub-commands' parsers are made by the same class. Below the top level the
    option has no default, so one given before the sub-command is kept.
    """

    def __init__(self, *args: Any, config_default: Any = argparse.SUPPRESS,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)
        self.add_argument("--config", type=Path, default=config_default, help=_CONFIG_HELP)


class _Commands(argparse._SubParsersAction):
    """Sub-commands whose own ``--help`` says what they do: their line in the list above."""

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if "help" in kwargs:
            kwargs.setdefault("description", kwargs["help"])
        return super().add_parser(name, **kwargs)


def build_parser(plugin_commands: Sequence[object] = ()) -> argparse.ArgumentParser:
    """The argument parser with every built-in and plugin command."""
    parser = _Parser(prog="ech-gateway", description="A durable gateway for eCH-0223 messages.",
                     config_default=os.environ.get("ECH_GATEWAY_CONFIG"))
    parser.add_argument("--version", action="version", version=f"ech-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _operate.add_commands(sub)
    _status.add_commands(sub)
    _partners.add_commands(sub)
    _retention.add_commands(sub)
    messages = _inspect.add_commands(sub)
    _handling.add_actions(messages)
    _cases.add_commands(sub, messages)
    _persons.add_commands(sub)
    _rules.add_commands(sub)
    _send.add_commands(sub)
    for command in plugin_commands:
        p = sub.add_parser(command.name, help=command.help)  # type: ignore[attr-defined]
        command.configure(p)  # type: ignore[attr-defined]
        p.set_defaults(handler=partial(_plugin_command, command.run))  # type: ignore[attr-defined]
    return parser


def _plugin_command(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """A plugin's command, logging as a built-in one does once the configuration is loaded
    (:func:`gateway.cli._access.configuration`): in the configured format, at WARNING or
    above, on stderr, without VN numbers.

    The plugin loads the configuration itself (``gateway.api.load_config``), if it needs
    one: a configuration that does not load leaves logging as :func:`main` set it up, for
    the command to report, or to do without.
    """
    with suppress(ConfigError, PluginError):
        _access.configuration(args)
    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Its log lines go to stderr through the gateway's formatters from the start; once a
    command has loaded the configuration, in its format (:func:`gateway.logs.setup_command`;
    ``run`` sets up its own).
    """
    logs.setup_command()
    try:
        pm = get_plugin_manager()
    except PluginError as exc:
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    commands = [c for found in pm.hook.gateway_commands() for c in found]
    args = build_parser(commands).parse_args(argv)
    args.pm = pm
    try:
        if args.handler is not _operate.cmd_run:  # run takes a TERM while loading itself
            early_signals.release()
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        return _closed_pipe()
    except ConfigError as exc:  # a line per problem, as check-config lists them
        _out.say("invalid configuration:", *exc.lines, file=sys.stderr)
        return CONFIG
    except PluginError as exc:  # a type clash found once the types are listed
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    except WorkerStartFailed as exc:  # ``run``: the installation does not load in a worker
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    except FolderHang as exc:  # a configured folder on a share that is down, at start
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return CONFIG
    except NotFound as exc:
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return NOT_FOUND
    except Ambiguous as exc:
        _out.say(f"ech-gateway: {exc}", *(f"  {c}" for c in exc.candidates), file=sys.stderr)
        return AMBIGUOUS
    except StoreLost as exc:  # one line, no traceback: the operator restores the database
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return STORE_LOST
    except StoreUnavailable as exc:  # one line: it says why (a lock, a full disk); try again
        _out.say(f"ech-gateway: {exc}; nothing more was done, try again later", file=sys.stderr)
        return UNAVAILABLE
    except StoreError as exc:
        _out.say(f"ech-gateway: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return 130
    return code


def _closed_pipe() -> int:
    """Stop quietly when the reader of stdout went away (``... | head -1``).

    What is still buffered cannot be written: stdout is pointed at /dev/null
    so that the interpreter's last flush does not fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return CLOSED_PIPE
