"""The plugin API is one module: the built-in plugins import from ``gateway.api`` only."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.api

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def _gateway_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``gateway`` module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n == "gateway" or n.startswith("gateway.")]
    return found


def test_built_in_plugins_import_only_the_plugin_api() -> None:
    offending = [f"{path.relative_to(PLUGINS.parent)}:{line}: {module}"
                 for path in sorted(PLUGINS.rglob("*.py"))
                 for line, module in _gateway_imports(path) if module != "gateway.api"]
    assert offending == [], "plugins must import from gateway.api only:\n" + "\n".join(offending)


def test_the_check_finds_an_internal_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom gateway.fileio import read_file\nimport gateway.store as s\n")
    assert _gateway_imports(bad) == [(2, "gateway.fileio"), (3, "gateway.store")]


def test_everything_exported_exists() -> None:
    missing = [name for name in gateway.api.__all__ if not hasattr(gateway.api, name)]
    assert missing == []
