"""docs/plugins.md stays true: every hook documented with its real signature, its code runs.

The Python blocks are run as the modules their first line names (the plugin,
then its test, which runs a real gateway with gateway.testing); the TOML
blocks are parsed, and the configuration one is checked with the plugin's
own options model; the error quoted for a typo is the error the gateway gives.
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import re
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest

import gateway.api
import gateway.errors
from gateway import hookspecs
from gateway.config import check_plugin_options, load_settings
from gateway.plugins import LOAD_ENV, TRACE_ENV

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", TEXT, flags=re.MULTILINE | re.DOTALL)
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if name.startswith("gateway_") and hasattr(fn, f"{hookspecs.PROJECT}_spec"))


def _blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCKS if lang == language]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_hook_has_a_section_and_every_section_is_a_hook() -> None:
    sections = re.findall(r"^### (\S+)$", TEXT, flags=re.MULTILINE)
    assert sorted(sections) == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_each_hook_is_shown_with_its_real_parameters(name: str) -> None:
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"`{name}({params})" in TEXT


def test_every_error_a_plugin_can_import_is_explained_and_every_named_error_exists() -> None:
    exported = {n for n in gateway.api.__all__
                if isinstance(getattr(gateway.api, n), type)
                and issubclass(getattr(gateway.api, n), Exception)}
    named = set(re.findall(r"`(\w+(?:Error|Rejected|Fault|Hang|Lost|Unavailable))`", TEXT))
    assert exported <= named, f"errors in gateway.api the doc does not explain: {exported - named}"
    unknown = {n for n in named if not hasattr(gateway.errors, n) and not hasattr(builtins, n)}
    assert not unknown, f"the doc names errors the gateway does not have: {unknown}"


def test_the_switches_it_names_are_the_gateways() -> None:
    assert f"{LOAD_ENV}=" in TEXT and f"{TRACE_ENV}=1" in TEXT
    assert f"[project.entry-points.{hookspecs.PROJECT}]" in TEXT


@pytest.fixture
def shelf(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The doc's plugin, run as the module its first line names."""
    [code] = [c for c in _blocks("python") if c.startswith("# ech_gateway_shelf/plugin.py")]
    package = types.ModuleType("ech_gateway_shelf")
    package.__path__ = []
    module = types.ModuleType("ech_gateway_shelf.plugin")
    monkeypatch.setitem(sys.modules, "ech_gateway_shelf", package)
    monkeypatch.setitem(sys.modules, "ech_gateway_shelf.plugin", module)
    package.plugin = module  # type: ignore[attr-defined]
    exec(compile(code, f"{DOC}:ech_gateway_shelf/plugin.py", "exec"), module.__dict__)
    return module


async def test_the_docs_test_passes_with_the_docs_plugin(shelf: types.ModuleType,
                                                         tmp_path: Path) -> None:
    [code] = [c for c in _blocks("python") if c.startswith("# tests/test_shelf.py")]
    namespace: dict[str, Any] = {"__name__": "test_shelf"}
    exec(compile(code, f"{DOC}:tests/test_shelf.py", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert tests
    for n, test in enumerate(tests):
        (tmp_path / str(n)).mkdir()
        await test(tmp_path / str(n))


async def test_the_docs_registry_test_passes_with_the_reference_registry_plugin(
        tmp_path: Path) -> None:
    [code] = [c for c in _blocks("python") if c.startswith("# tests/test_registry.py")]
    namespace: dict[str, Any] = {"__name__": "test_registry"}
    exec(compile(code, f"{DOC}:tests/test_registry.py", "exec"), namespace)
    [test] = [fn for name, fn in namespace.items() if name.startswith("test_")]
    await test(tmp_path)


def test_every_python_block_is_run_by_these_tests() -> None:
    firsts = sorted(code.splitlines()[0] for code in _blocks("python"))
    assert firsts == ["# ech_gateway_shelf/plugin.py", "# tests/test_registry.py",
                      "# tests/test_shelf.py"]


def test_the_toml_blocks_parse_and_the_config_passes_the_plugins_model(
        shelf: types.ModuleType, tmp_path: Path) -> None:
    parsed = [tomllib.loads(code) for code in _blocks("toml")]
    [config] = [c for c in parsed if "partners" in c]
    [project] = [c for c in parsed if "project" in c]
    assert project["project"]["entry-points"] == {hookspecs.PROJECT: {
        "shelf": "ech_gateway_shelf.plugin"}}

    by_name = {t.name: t for t in shelf.gateway_transport_types()}
    text = _blocks("toml")[parsed.index(config)].replace("/srv/archive", str(tmp_path))
    (tmp_path / "gateway.toml").write_text(text)
    settings = load_settings(tmp_path / "gateway.toml", env={})
    assert check_plugin_options(settings, {}, by_name) == []


def test_the_typo_error_quoted_is_the_one_the_gateway_gives(shelf: types.ModuleType,
                                                            tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[partners.archive]\ntransport = "shelf"\n[partners.archive.shelf]\n'
        'folder = "/srv"\nfoldr = "/srv"\n')
    settings = load_settings(tmp_path / "gateway.toml", env={})
    [shelf_type] = shelf.gateway_transport_types()
    as_loaded = dataclasses.replace(shelf_type, plugin="shelf")  # as get_plugin_manager names it
    [(_file, key, reason)] = check_plugin_options(settings, {}, {"shelf": as_loaded})
    assert f"`{key}: {reason}`" in _flat(TEXT)
