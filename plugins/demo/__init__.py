"""``ech-gateway demo``: the whole flow in a temporary folder, with simulated peers."""

from __future__ import annotations

from gateway.contracts import Command
from gateway.hookspecs import hookimpl
from plugins.demo.command import configure, run


@hookimpl
def gateway_commands() -> list[Command]:
    """The ``demo`` command."""
    return [Command("demo", "run registry → gateway → sedex → canton in a temporary folder"
                    " and print a summary", configure, run)]
