"""Shared test set-up: a record of the hooks the gateway calls while a test runs.

Every pluggy ``PluginManager`` of the ``ech_gateway`` project created during
the session — by :func:`gateway.plugins.get_plugin_manager` inside the CLI,
the daemon helpers in ``tests/flow.py`` or a test — gets hook-call
monitoring (:meth:`pluggy.PluginManager.add_hookcall_monitoring`), installed
by wrapping ``PluginManager.__init__`` for the whole session. Nothing of the
gateway is replaced: the monitor only notes the name of each hook called.

The ``hook_calls`` fixture hands a test the names of the hooks called since
the test started, in call order (from any thread: the pipeline normalises on
a worker thread). ``tests/test_hookspecs.py`` uses it to prove that each
hook is really exercised through the product's own call sites.

Only the gateway's own plugins are loaded (``ECH_GATEWAY_LOAD_PLUGINS``, set
for this process and the ones it starts): a third-party plugin installed
beside the gateway must not change what its tests see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy
import pytest

import plugins.alerts
from gateway.hookspecs import PROJECT
from gateway.plugins import LOAD_ENV
from gateway.store import SQLiteStore
from plugins.alerts._incidents import Incidents

os.environ[LOAD_ENV] = ",".join(sorted(
    {ep.name for ep in entry_points(group=PROJECT) if ep.dist and ep.dist.name == "ech-gateway"}))

#: Hook names called since the current test started.
_CALLS: list[str] = []


def _before(hook_name: str, _impls: Sequence[Any], _kwargs: Mapping[str, Any]) -> None:
    _CALLS.append(hook_name)


def _after(*_args: Any) -> None:
    return None


@pytest.fixture(scope="session", autouse=True)
def _monitor_hook_calls() -> Iterator[None]:
    """Attach the monitor to every ``ech_gateway`` plugin manager built in this session."""
    original = pluggy.PluginManager.__init__

    def init(self: pluggy.PluginManager, project_name: str) -> None:
        original(self, project_name)
        if project_name == PROJECT:
            self.add_hookcall_monitoring(_before, _after)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pluggy.PluginManager, "__init__", init)
        yield


@pytest.fixture(autouse=True)
def _fresh_alert_incidents(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no open alert incident (the alerts plugin keeps them per process)."""
    monkeypatch.setattr(plugins.alerts, "INCIDENTS", Incidents(plugins.alerts.log))


@pytest.fixture
def hook_calls() -> list[str]:
    """The names of the hooks called since this test started (a live list)."""
    _CALLS.clear()
    return _CALLS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A started SQLite store in a fresh folder, with a short group-commit delay."""
    s = SQLiteStore(tmp_path / "g.db", group_commit_delay=0.001)
    s.start()
    yield s
    s.close()
