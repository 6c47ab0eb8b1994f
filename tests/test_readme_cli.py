"""The README's command table names every command and option the command line has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gateway.cli import build_parser
from gateway.plugins import get_plugin_manager

README = Path(__file__).resolve().parent.parent / "README.md"


def commands() -> dict[str, list[str]]:
    """Each command (``messages show``, ``sedex-sim``) with its options, plugins' included."""
    pm = get_plugin_manager()
    parser = build_parser([c for found in pm.hook.gateway_commands() for c in found])
    found: dict[str, list[str]] = {}

    def walk(p: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            for sub_name, sub in subs[0].choices.items():
                walk(sub, f"{name} {sub_name}".strip())
            return
        found[name] = [o for a in p._actions for o in a.option_strings
                       if o.startswith("--") and o not in ("--help", "--config")]

    walk(parser, "")
    return found


def test_the_command_table_names_every_command_and_option() -> None:
    """A row per command, whose first cell names each of its options (``send``: one of its rows)."""
    rows = re.findall(r"^\| `([a-z][^`]*)` \|", README.read_text(encoding="utf-8"), re.M)
    missing = []
    for name, options in commands().items():
        cells = [cell for cell in rows if cell == name or cell.startswith(name + " ")]
        if not cells:
            missing.append(name)
        missing += [f"{name} {o}" for o in options if not any(o in cell for cell in cells)]
    assert missing == []


def test_the_readme_names_the_global_options() -> None:
    """``--version`` and where ``--config`` looks by default."""
    text = README.read_text(encoding="utf-8")
    assert "`--version`" in text
    assert "`$ECH_GATEWAY_CONFIG`" in text
