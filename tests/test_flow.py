"""The whole core with the real folder source, normaliser and routing, and a stub transport."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.contracts import Intake, PluginContext, RawInput, SourceType
from gateway.hookspecs import hookimpl
from tests.flow import (
    StubTransport,
    drop,
    message,
    plugin_manager,
    running,
    states,
    until,
    write_config,
)


def delivery_states(db: Path) -> list[str]:
    return [r[0] for r in states(db, "SELECT state FROM deliveries ORDER BY id")]


async def test_dropped_messages_are_delivered_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ids = [f"flow-{n}" for n in range(20)]
    async with running(config):
        for n, mid in enumerate(ids):
            drop(tmp_path / "in", f"m{n}.xml", message(mid))
        await until(lambda: delivery_states(tmp_path / "gateway.db").count("delivered") == 20)
    sent = sorted(i.message_id or "" for i in StubTransport.sent["canton"])
    assert sent == sorted(ids)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(
        f"m{n}.xml" for n in range(20))
    assert list((tmp_path / "in").iterdir()) == []


async def test_a_file_name_used_twice_keeps_both_files_in_done(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with running(config):
        for n, mid in enumerate(["twice-alpha", "twice-bravo"]):
            drop(tmp_path / "in", "mutation.xml", message(mid))
            await until(lambda n=n: len(delivery_states(tmp_path / "gateway.db")) == n + 1)
    kept = sorted((tmp_path / "done").iterdir())
    assert len(kept) == 2 and kept[-1].name == "mutation.xml"
    assert sorted(b"twice-alpha" in p.read_bytes() for p in kept) == [False, True]


async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.retry]\n'
               'initial = "10ms"\njitter = 0\n[partners.canton.stub]\nfail_transient = 2\n')
    config = write_config(tmp_path, partner)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("retry-me"))
        await until(lambda: delivery_states(tmp_path / "gateway.db") == ["delivered"])
    [(attempts,)] = states(tmp_path / "gateway.db", "SELECT attempts FROM deliveries")
    assert attempts == 3


async def test_permanent_failure_is_a_dead_letter(tmp_path: Path) -> None:
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.stub]\n'
               "fail_permanent = true\n")
    config = write_config(tmp_path, partner)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("dead"))
        await until(lambda: delivery_states(tmp_path / "gateway.db") == ["dead"])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM deliveries")
    assert "partner refuses this message" in reason


async def test_not_routed_is_not_relevant(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace('route_to = ["canton"]', "route_to = []")
    config.write_text(text)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message())
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("not_relevant",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason == "no rule routes it to a partner"


async def test_invalid_message_is_quarantined_with_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    bad = message().replace(b"eCH-0044:officialName>", b"eCH-0044:officialNam>", 2)
    async with running(config):
        drop(tmp_path / "in", "m.xml", bad)
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("quarantined",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason.startswith("invalid eCH-0223 1.5: line ")
    assert delivery_states(tmp_path / "gateway.db") == []


class FlakyOptions(BaseModel):
    """Options of the ``flaky`` test source."""

    message_id: str


class FlakySource:
    """Fails on its first run, as a source whose folder is briefly unreachable does."""

    runs = 0

    def __init__(self, options: FlakyOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name

    async def run(self, intake: Intake) -> None:
        FlakySource.runs += 1
        if FlakySource.runs == 1:
            raise OSError("folder unreachable")
        await intake.submit([RawInput(self.name, "m.xml", message(self.options.message_id))])
        await asyncio.Event().wait()


class FlakyPlugin:
    @staticmethod
    @hookimpl
    def gateway_source_types() -> list[SourceType]:
        return [SourceType("flaky", FlakyOptions, FlakySource)]


async def test_a_failing_source_is_restarted_not_fatal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("gateway.daemon.RESTART_MIN", 0.05)
    config = write_config(tmp_path, extra='[sources.flaky]\ntype = "flaky"\n'
                          'message_id = "after-restart"\nroute_to = ["canton"]\n')
    pm = plugin_manager()
    pm.register(FlakyPlugin(), name="flaky")
    async with running(config, pm):
        await until(lambda: delivery_states(tmp_path / "gateway.db") == ["delivered"])
    assert FlakySource.runs == 2
    [failed] = [r for r in caplog.records if "restarting" in r.getMessage()]
    assert "source flaky failed: folder unreachable" in failed.getMessage()
    assert failed.exc_info is None  # an unreachable folder is no bug: no traceback


async def test_a_checkpoint_running_at_shutdown_finishes_without_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("gateway.daemon.CHECKPOINT_INTERVAL", 0.05)
    started = threading.Event()

    def slow_checkpoint(self: object) -> None:
        started.set()
        time.sleep(0.3)

    monkeypatch.setattr("gateway.store.sqlite.SQLiteStore.checkpoint", slow_checkpoint)
    async with running(write_config(tmp_path)):
        await until(started.is_set)  # stopping now: shutdown used to cancel it and log an error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
