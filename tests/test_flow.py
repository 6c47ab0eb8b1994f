"""The whole core with the real folder source, normaliser and routing, and a stub transport."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import plugins.alerts
from gateway.cli._status import cmd_status
from gateway.contracts import Intake, RawInput
from gateway.ech0223 import sample_event_report, write_message
from gateway.errors import StoreUnavailable
from gateway.hookspecs import hookimpl
from gateway.pipeline import Pipeline
from gateway.plugin_types import GatewayEvent, PluginContext, SourceType
from gateway.store import Processed, SQLiteStore
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
from tests.test_sedex_e2e import cli


def delivery_states(db: Path) -> list[str]:
    return [r[0] for r in states(db, "SELECT state FROM deliveries ORDER BY id")]


def message_states(db: Path) -> list[str]:
    return [r[0] for r in states(db, "SELECT state FROM messages ORDER BY id")]


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


async def test_dropped_messages_are_delivered_with_one_write_per_commit(tmp_path: Path) -> None:
    """``group_commit_max = 1``: every intake operation fills its batch and runs at once."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("[store]\n", "[store]\ngroup_commit_max = 1\n"))
    ids = [f"single-{n}" for n in range(5)]
    async with running(config) as gateway:
        assert gateway.settings.store.group_commit_max == 1
        for n, mid in enumerate(ids):
            drop(tmp_path / "in", f"m{n}.xml", message(mid))
        await until(lambda: delivery_states(tmp_path / "gateway.db").count("delivered") == 5)
    assert sorted(i.message_id or "" for i in StubTransport.sent["canton"]) == sorted(ids)
    assert len(message_states(tmp_path / "gateway.db")) == 5


async def test_one_message_id_from_two_registries_is_sent_for_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sedex: the pair (senderId, messageId) is unique, not the messageId: two registries
    that number their messages 1, 2, 3 ... each get their message 1 sent. The first one's
    message 1 again (another file: a re-export) is a duplicate that names its sender."""
    config = write_config(tmp_path, extra=(
        '[sources.other]\ntype = "folder"\npath = "other"\ndone_dir = "done-other"\n'
        'poll_interval = "50ms"\nsettle = "50ms"\nroute_to = ["canton"]\n'))
    (tmp_path / "other").mkdir()
    db = tmp_path / "gateway.db"
    ours, theirs = message("nr-1"), message("nr-1").replace(b"T1-2511-1", b"T1-261-1")
    async with running(config):
        drop(tmp_path / "in", "1.xml", ours)
        drop(tmp_path / "other", "1.xml", theirs)
        await until(lambda: delivery_states(db) == ["delivered", "delivered"])
        drop(tmp_path / "in", "1-again.xml", ours + b"<!-- exported again -->")
        await until(lambda: len(states(db, "SELECT id FROM messages")) == 3
                    and "received" not in [s for (s,) in states(db, "SELECT state FROM messages")])
    assert sorted(i.payload for i in StubTransport.sent["canton"]) == sorted([ours, theirs])
    rows = states(db, "SELECT source, state, sender_id FROM messages ORDER BY id")
    assert sorted(rows[:2]) == [("other", "routed", "sedex://T1-261-1"),
                                ("registry", "routed", "sedex://T1-2511-1")]
    [(first,)] = states(db, "SELECT id FROM messages WHERE source = 'registry'"
                            " AND state = 'routed'")
    assert states(db, "SELECT state, reason, duplicate_of FROM messages WHERE id = 3") == [
        ("duplicate", f"messageId nr-1 from sender sedex://T1-2511-1 was already routed as"
                      f" message {first}", first)]
    # `messages show nr-1` names the messages with that messageId, and whose each is
    monkeypatch.setattr("gateway.cli.get_plugin_manager", plugin_manager)
    capsys.readouterr()
    assert cli("--config", str(config), "messages", "show", "nr-1", code=4) == ""
    refused = capsys.readouterr().err
    assert "messageId nr-1: it names 3 messages" in refused
    assert refused.count("from sender sedex://T1-2511-1") == 2
    assert refused.count("from sender sedex://T1-261-1") == 1
    shown = cli("--config", str(config), "messages", "show", str(first))
    assert "messageId nr-1 from sender sedex://T1-2511-1 version 1.5" in shown


async def test_a_file_name_used_twice_keeps_both_files_in_done(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with running(config):
        for n, mid in enumerate(["twice-alpha", "twice-bravo"]):
            drop(tmp_path / "in", "mutation.xml", message(mid))
            await until(lambda n=n: len(delivery_states(tmp_path / "gateway.db")) == n + 1)
    kept = sorted((tmp_path / "done").iterdir())
    assert len(kept) == 2 and kept[-1].name == "mutation.xml"
    assert sorted(b"twice-alpha" in p.read_bytes() for p in kept) == [False, True]


async def test_the_start_is_logged_with_its_counts_in_words(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.daemon")
    async with running(write_config(tmp_path)):
        pass
    assert "gateway test running: 1 source, 1 partner" in caplog.messages


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


async def test_a_message_for_a_disabled_partner_waits_until_it_is_enabled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Disabling a partner holds its messages (its deliveries are not sent); enabled again,
    it gets them. It used to make them not relevant, lost to it for good."""
    config = write_config(tmp_path, '[partners.canton]\ntransport = "stub"\nenabled = false\n'
                                    "[partners.canton.stub]\n")
    db = tmp_path / "gateway.db"
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("held-for-canton"))
        await until(lambda: delivery_states(db) == ["queued"])
        await asyncio.sleep(0.3)  # the dispatcher looks every 50 ms
    assert delivery_states(db) == ["queued"] and StubTransport.sent.get("canton", []) == []
    status = argparse.Namespace(config=config, pm=plugin_manager(), json=False)
    assert cmd_status(status) == 0  # the operator disabled it: no alarm
    assert "held for disabled partners: canton 1 (sent once enabled)" in capsys.readouterr().out
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'message.normalised'")
    assert json.loads(detail)["warnings"] == [
        "partner 'canton' is disabled: its delivery waits until it is enabled"]
    config.write_text(config.read_text().replace("enabled = false\n", ""))
    async with running(config):
        await until(lambda: delivery_states(db) == ["delivered"])
    assert [i.message_id for i in StubTransport.sent["canton"]] == ["held-for-canton"]


async def test_not_routed_is_not_relevant(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace('route_to = ["canton"]', "route_to = []")
    config.write_text(text)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message())
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("not_relevant",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason.startswith("no rule decided about it (no [[rules]] entry matched")


async def test_a_vn_with_a_wrong_check_digit_is_quarantined_without_showing_it(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    typo = message().replace(b"<eCH-0044:officialName>",
                             b"<eCH-0044:vn>7561234567890</eCH-0044:vn><eCH-0044:officialName>", 1)
    async with running(config):
        drop(tmp_path / "in", "m.xml", typo)
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("quarantined",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason == ("VN 756.****.****.90 has a wrong check digit (EAN-13)"
                      " (at /personEventMessage/content/personIdentification/vn)")


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
    monkeypatch.setattr("gateway.supervision.RESTART_MIN", 0.05)
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


async def test_a_stop_on_a_full_disk_closes_the_store_without_its_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoint at the stop cannot write (disk full): the stop goes on, the store is
    closed (its last writes committed), and the next start reads the WAL."""
    def full(self: object) -> None:
        raise StoreUnavailable("database or disk is full")

    db = tmp_path / "gateway.db"
    config = write_config(tmp_path)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("before-a-full-disk"))
        await until(lambda: delivery_states(db) == ["delivered"])
        monkeypatch.setattr("gateway.store.sqlite.SQLiteStore.checkpoint", full)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no checkpoint at the stop: database or disk is full" in said
    monkeypatch.undo()
    async with running(config):
        assert delivery_states(db) == ["delivered"]


async def test_a_drain_that_fails_stops_every_task_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A drain that fails (a bug) is cut short like one that takes too long: the daemon's
    tasks are stopped before the store closes, and the log says why."""
    async def broken(self: Pipeline) -> None:
        raise RuntimeError("a bug in draining")

    monkeypatch.setattr(Pipeline, "stop", broken)
    async with running(write_config(tmp_path)) as gw:
        tasks = {t for t in asyncio.all_tasks() if t.get_name().startswith(("source ", "pipeline",
                                                                               "dispatcher"))}
        assert tasks and gw.ready.is_set()
    assert all(t.done() for t in tasks), [t.get_name() for t in tasks if not t.done()]
    [said] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert said.getMessage() == "draining failed; what is left continues at the next start"
    assert said.exc_info is not None and "a bug in draining" in str(said.exc_info[1])


def event_report(referenced: str, action: str = "8") -> bytes:
    """The canton's eventReport on ``referenced``: 8 rejects it, 9 acknowledges it."""
    data = write_message(sample_event_report(random.Random(7), reference_message_id=referenced))
    return data.replace(b"<eCH-0039:action>8<", f"<eCH-0039:action>{action}<".encode())


#: The canton's answers arrive through a source named like the partner, as sedex inbound does.
ANSWERS = ('[sources.canton]\ntype = "folder"\npath = "answers"\ndone_dir = "answers-done"\n'
           'poll_interval = "50ms"\nroute_to = []\n')

#: Runs a gateway that is killed (``os._exit``) the moment the answer's first event is
#: published, i.e. right after the transaction that stored the answer committed.
_CRASH_AFTER_ANSWER = """
import asyncio, os, sys
from pathlib import Path
from gateway.hookspecs import hookimpl
from tests.flow import plugin_manager, running, states, until, drop, message
from tests.test_flow import event_report

class KillAtTheAnswer:
    @hookimpl
    def gateway_event(self, event):
        if event.message == 2:  # the answer: nothing after its commit may run
            os._exit(17)

async def main(root):
    pm = plugin_manager()
    pm.register(KillAtTheAnswer(), name="kill")
    async with running(root / "gateway.toml", pm):
        drop(root / "in", "m.xml", message("answered"))
        await until(lambda: states(root / "gateway.db", "SELECT state FROM deliveries")
                    == [("delivered",)])
        drop(root / "answers", "answer.xml", event_report("answered"))
        await asyncio.sleep(10)

asyncio.run(main(Path(sys.argv[1])))
"""


def test_a_crash_right_after_an_answer_is_stored_keeps_its_rejection(tmp_path: Path) -> None:
    write_config(tmp_path, extra=ANSWERS)
    (tmp_path / "answers").mkdir()
    done = subprocess.run([sys.executable, "-c", _CRASH_AFTER_ANSWER, str(tmp_path)],
                          cwd=Path(__file__).parent.parent, capture_output=True, timeout=60)
    assert done.returncode == 17, done.stderr.decode()[-2000:]
    db = tmp_path / "gateway.db"
    assert states(db, "SELECT id, source, kind, state FROM messages ORDER BY id") == [
        (1, "registry", "personEventMessage", "routed"),
        (2, "canton", "eventReport", "not_relevant")]
    [(state, reason)] = states(db, "SELECT state, reason FROM deliveries")
    assert state == "rejected" and "negative eventReport from canton (message 2)" in reason


async def test_a_positive_answer_acknowledges_the_delivery(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=ANSWERS)
    (tmp_path / "answers").mkdir()
    db = tmp_path / "gateway.db"
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("welcome"))
        await until(lambda: delivery_states(db) == ["delivered"])
        drop(tmp_path / "answers", "answer.xml", event_report("welcome", action="9"))
        await until(lambda: delivery_states(db) != ["delivered"])
    assert states(db, "SELECT state, reason FROM deliveries") == [("acknowledged", None)]


class Heard:
    """Each event with the state the database shows for it when it is told."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.events: list[tuple[str, int | None, int | None, str]] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        table, key = ("deliveries", event.delivery) if event.delivery else ("messages",
                                                                            event.message)
        [(state,)] = states(self.db, f"SELECT state FROM {table} WHERE id = ?", (key,))
        self.events.append((event.kind, event.message, event.delivery, state))


async def test_events_carry_ids_and_follow_the_commit(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=ANSWERS)
    (tmp_path / "answers").mkdir()
    db = tmp_path / "gateway.db"
    pm = plugin_manager()
    heard = Heard(db)
    pm.register(heard, name="heard")
    async with running(config, pm):
        drop(tmp_path / "in", "m.xml", message("told"))
        await until(lambda: delivery_states(db) == ["delivered"])
        drop(tmp_path / "in", "copy.xml", message("told"))
        await until(lambda: len(heard.events) == 2)
        drop(tmp_path / "answers", "answer.xml", event_report("told"))
        await until(lambda: len(heard.events) == 5)
    assert heard.events[:2] == [("delivery.delivered", 1, 1, "delivered"),
                                ("message.duplicate", 2, None, "duplicate")]
    assert sorted(heard.events[2:]) == [("delivery.rejected", 1, 1, "rejected"),
                                        ("message.answer", 3, None, "not_relevant"),
                                        ("message.not_relevant", 3, None, "not_relevant")]


async def test_an_outage_of_200_deliveries_is_told_in_a_few_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """200 deliveries fail 600 attempts in all, then the partner works again (said once it
    has worked for the incidents' window, here 0.3 s). Summaries come 0.3 s, then 0.6,
    1.2 ... s apart, and one at the end: how many depends on how long the outage lasted
    on this machine, but never on the number of attempts."""
    window = plugins.alerts.INCIDENTS.window = 0.3
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.retry]\n'
               'initial = "10ms"\nmaximum = "20ms"\njitter = 0\nmax_attempts = 20\n'
               '[partners.canton.stub]\nfail_transient = 600\n')
    config = write_config(tmp_path, partner)
    db = tmp_path / "gateway.db"
    pm = plugin_manager()
    heard = Heard(db)
    pm.register(heard, name="heard")
    with caplog.at_level(logging.INFO):
        async with running(config, pm):
            started = time.monotonic()
            for n in range(200):
                drop(tmp_path / "in", f"m{n}.xml", message(f"outage-{n}"))
            await until(lambda: delivery_states(db).count("delivered") == 200, timeout=30)
            lasted = time.monotonic() - started
            await until(lambda: any("works again" in r.getMessage() for r in caplog.records))
    told = [e[0] for e in heard.events]
    assert told.count("delivery.retry") == 600 and told.count("delivery.delivered") == 200
    alerts = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    summaries = 1 + math.floor(math.log2(lasted / window + 1))
    assert len(alerts) <= 3 + summaries + 1, (lasted, alerts)
    assert sum(int(a.split()[3]) for a in alerts if " more in the last " in a) == 597, alerts
    assert alerts[0].endswith("will retry: partner unreachable")
    assert any("delivery.retry for canton: works again" in a and "600 in all" in a
               for a in alerts), alerts


async def test_a_failed_processing_run_leaves_no_input_waiting_for_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """FIELD.md (OpenHIM #1208): nothing stays in flight without an owner. A run of the
    pipeline that fails (here: its first commit, then every commit of one message) is
    started again by the daemon; the inputs it had taken are processed then, not at the
    next start of the daemon, and the one that fails again is quarantined alone."""
    monkeypatch.setattr("gateway.supervision.RESTART_MIN", 0.05)
    record = SQLiteStore.record_processing
    failures = {"first": 1}

    def flaky(self: SQLiteStore, results: Sequence[Processed]) -> list[int]:
        poison = any(p.normalised is not None and p.normalised.message_id == "poison"
                     for p in results)
        if failures["first"] or poison:
            failures["first"] = 0
            raise RuntimeError("a bug in recording")
        return record(self, results)

    monkeypatch.setattr(SQLiteStore, "record_processing", flaky)
    config = write_config(tmp_path)
    db = tmp_path / "gateway.db"
    ids = [f"taken-{n}" for n in range(10)]
    async with running(config):
        for n, mid in enumerate(ids):
            drop(tmp_path / "in", f"m{n}.xml", message(mid))
        drop(tmp_path / "in", "poison.xml", message("poison"))
        await until(lambda: delivery_states(db).count("delivered") == 10)
        await until(lambda: "quarantined" in message_states(db))
    assert sorted(i.message_id or "" for i in StubTransport.sent["canton"]) == sorted(ids)
    assert sorted(message_states(db)) == ["quarantined"] + ["routed"] * 10
    with sqlite3.connect(db) as conn:
        [(reason,)] = conn.execute("SELECT reason FROM messages WHERE state = 'quarantined'")
    assert reason == "processing failed: RuntimeError('a bug in recording')"
    restarts = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert restarts and restarts[0].startswith("pipeline failed; restarting it in")


async def test_a_run_that_fails_while_the_batch_before_is_committed_loses_neither(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A run fails deciding one batch while the batch before it is still being committed
    (the COMMIT runs in a thread; here each takes 0.2 s): the new run takes up the
    failed batch, and only it, once that commit is done."""
    monkeypatch.setattr("gateway.supervision.RESTART_MIN", 0.05)
    decide = Pipeline._decide
    calls = {"decide": 0}
    second_queued = asyncio.Event()

    async def second_fails(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        calls["decide"] += 1
        if calls["decide"] == 1:  # the second batch is queued before the first is recorded
            await second_queued.wait()
        if calls["decide"] == 2:
            raise RuntimeError("a bug in deciding")
        return await decide(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_decide", second_fails)
    db = tmp_path / "gateway.db"
    async with running(write_config(tmp_path)) as gw:
        committer = gw.store._writer._committer  # the thread that runs each COMMIT
        assert committer is not None
        submit = committer.submit

        def slow(fn: Any, *args: Any) -> Any:
            return submit(lambda: (time.sleep(0.2), fn(*args))[1])

        monkeypatch.setattr(committer, "submit", slow)
        for group in ("first", "second"):
            await gw.pipeline.submit([RawInput("registry", f"{group}-{n}.xml",
                                               message(f"{group}-{n}")) for n in range(3)])
        second_queued.set()
        await until(lambda: delivery_states(db).count("delivered") == 6)
    assert calls["decide"] > 2, "the second batch failed once, then was taken up"
    assert sorted(message_states(db)) == ["routed"] * 6
    assert sorted(i.message_id or "" for i in StubTransport.sent["canton"]) == sorted(
        [f"first-{n}" for n in range(3)] + [f"second-{n}" for n in range(3)])
    assert not [r for r in caplog.records if "another writer" in r.getMessage()]


async def test_a_maintenance_job_that_fails_on_every_run_is_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoint runs every 2 s; a database another process holds locked fails each
    run: the log says it once (then every 5 minutes), without a traceback per run."""
    monkeypatch.setattr("gateway.daemon.CHECKPOINT_INTERVAL", 0.05)
    runs = []

    def locked(self: object) -> None:
        runs.append(1)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("gateway.store.sqlite.SQLiteStore.checkpoint", locked)
    async with running(write_config(tmp_path)):
        await until(lambda: len(runs) >= 5)
        said = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in said] == [
        "maintenance job checkpoint failed: database is locked"]
    assert said[0].exc_info is None
