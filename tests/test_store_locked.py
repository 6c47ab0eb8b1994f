"""Another program holds the database's write lock (a tool with gateway.db open for writing).

The daemon takes it as it takes a full disk: the intake pauses (``intake.paused``,
one alert that says why), what comes meanwhile waits where it is, and it all goes
on once the lock ends, without a restart, a traceback or a duplicate. A command
that writes says the database is locked and exits with its own code. The lock is
real: a second SQLite connection in ``BEGIN IMMEDIATE``, as the sqlite3 shell holds it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.cli.exitcodes import OK, UNAVAILABLE
from gateway.plugins import get_plugin_manager
from gateway.testing import harness, sample_message
from tests.flow import drop, message, running, states, until
from tests.test_recovery import Events
from tests.test_sedex_e2e import answer, gateway_dir, sent_refs

#: How long the store waits for another program's lock before it says so (the test's time).
BUSY = {"store": {"busy_timeout": "200ms"}}
LOCKED = ("is locked by another program for more than 0.2s (a tool with the database open"
          " for writing?)")


class Logged(logging.Handler):
    """Every record the loggers pass on to the root while in :func:`logged`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.WARNING) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records
                if r.levelno >= level]

    def tracebacks(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.exc_info]


@contextmanager
def logged(*debug: str) -> Iterator[Logged]:
    """What is logged while in the block, at WARNING and above (DEBUG for loggers ``debug``)."""
    handler = Logged()
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in debug}
    for name in debug:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def write_lock(db: Path) -> sqlite3.Connection:
    """Another program's connection to ``db``, holding its write lock until it ends."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def assert_said_once(log: Logged, db: Path) -> None:
    """The lock was alerted once, and its end; nothing failed, nothing restarted."""
    lines = log.lines()
    assert [line for line in lines if "intake paused" in line] == [
        f"WARNING gateway.alerts: intake paused: the store cannot write: {db} {LOCKED};"
        " retrying"], lines
    assert len([line for line in lines if "intake resumed after" in line]) == 1, lines
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines
    assert not [line for line in lines if "restarting" in line], lines
    assert log.tracebacks() == []


async def test_inputs_that_come_while_another_program_holds_the_lock_go_on_once_it_ends(
        tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    names = [f"locked-{n}.xml" for n in range(5)]
    with logged() as log:
        async with harness(tmp_path, settings=BUSY) as gw:
            gw.gateway.pipeline.pause.first, gw.gateway.pipeline.pause.longest = 0.1, 0.4
            gw.feed("before.xml", sample_message("before"))
            await gw.settled(1)
            other = write_lock(db)
            try:
                for n, name in enumerate(names):
                    gw.feed(name, sample_message(f"locked-{n}", seed=n))
                # and a partner's message on the way back
                back = asyncio.ensure_future(gw.from_partner(sample_message("back", seed=9)))
                await gw.wait_for(lambda: "intake.paused" in gw.event_kinds())
                # what came waits where it is: in the drop folder, with its sender
                assert sorted(p.name for p in gw.inbox.glob("*.xml")) == names
                assert not back.done()
            finally:
                other.execute("ROLLBACK")
                other.close()
            await gw.settled(6)
            mid = await back
            await gw.wait_for(lambda: states(db, "SELECT state FROM messages WHERE id = ?",
                                             (mid,)) != [("received",)])
    assert not list(gw.inbox.glob("*.xml"))
    messages = gw.messages()
    assert Counter(m.message_id for m in messages) == Counter(
        ["before", *(f"locked-{n}" for n in range(5)), "back"])
    assert [m.state for m in messages if m.source == "drop"] == ["routed"] * 6
    assert sorted(item.message_id for item in gw.collected) == sorted(
        ["before", *(f"locked-{n}" for n in range(5))])
    assert [k for k in gw.event_kinds() if k.startswith("intake.")] == [
        "intake.paused", "intake.resumed"]
    assert_said_once(log, db)


async def test_a_maintenance_job_waiting_for_the_lock_skips_its_turns_without_a_warning(
        tmp_path: Path) -> None:
    """The overdue-receipts check (every 50 ms here) waits longer than its interval for the
    store: its turns meanwhile are skipped, not warned about by the scheduler. No input
    comes, so the intake does not pause: the job says why it failed, once."""
    settings = {**BUSY, "dispatcher": {"receipt_check_interval": "50ms"}}
    db = tmp_path / "gateway.db"

    def scheduler_warned() -> list[str]:
        return [line for line in log.lines() if "maximum number of running instances" in line]

    def failed() -> list[str]:
        return [line for line in log.lines() if line.startswith("ERROR") and "overdue" in line]

    def skipped() -> bool:
        return ("DEBUG gateway.daemon: maintenance job check_overdue still runs: this turn is"
                " skipped" in log.lines(logging.DEBUG))

    with logged("gateway.daemon") as log:
        async with harness(tmp_path, settings=settings):
            other = write_lock(db)
            try:
                # its first run waited for the store, then gave up; a turn came meanwhile
                await until(lambda: failed() and (skipped() or scheduler_warned()))
                assert scheduler_warned() == []
            finally:
                other.execute("ROLLBACK")
                other.close()
            await until(lambda: "WARNING gateway.daemon: maintenance job check_overdue works"
                                " again" in log.lines())
    assert scheduler_warned() == []
    # the job said it once, without a traceback (and, above, that it works again)
    assert failed() == [f"ERROR gateway.daemon: maintenance job check_overdue failed: the store"
                        f" cannot write: {db} {LOCKED}"], failed()
    # (as the retention job may, which runs at the start)
    assert all(line.endswith(f"failed: the store cannot write: {db} {LOCKED}")
               for line in log.lines(logging.ERROR)), log.lines(logging.ERROR)
    assert log.tracebacks() == []


async def test_receipts_that_come_while_another_program_holds_the_lock_wait_for_it(
        tmp_path: Path) -> None:
    """A sedex receipt is recorded as inputs are stored: once the lock ends."""
    config = gateway_dir(tmp_path)
    # (the overdue-receipts check every 30 s: not during the test)
    (tmp_path / "conf.d" / "20-locked.toml").write_text(
        '[store]\nbusy_timeout = "200ms"\n[dispatcher]\nreceipt_check_interval = "30s"\n')
    db, receipts = tmp_path / "gateway.db", tmp_path / "sedex" / "receipts"
    events, pm = Events.listening()
    with logged() as log:
        async with running(config, pm) as gateway:
            gateway.pipeline.pause.first, gateway.pipeline.pause.longest = 0.1, 0.4
            drop(tmp_path / "registry" / "outbox", "first.xml", message("first"))
            refs = await sent_refs(db, 1)
            other = write_lock(db)
            try:
                answer(tmp_path, refs["first"], 100)
                drop(tmp_path / "registry" / "outbox", "second.xml", message("second"))
                await until(lambda: bool(events.kinds("intake.paused")))
                assert len(list(receipts.glob("*.xml"))) == 1  # waits in the receipts folder
            finally:
                other.execute("ROLLBACK")
                other.close()
            await until(lambda: states(db, "SELECT m.message_id, d.state FROM deliveries d JOIN"
                                           " messages m ON m.id = d.message ORDER BY d.id")
                        == [("first", "delivered"), ("second", "sent")])
            await until(lambda: not list(receipts.glob("*.xml")))
    assert events.kinds("intake.") == ["intake.paused", "intake.resumed"]
    assert_said_once(log, db)


def _run_cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *argv],
                          capture_output=True, text=True, timeout=60, check=False)


async def test_a_command_that_writes_says_the_database_is_locked(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    (tmp_path / "conf.d" / "20-locked.toml").write_text('[store]\nbusy_timeout = "200ms"\n')
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "bad.xml", b"<not-ech-0223/>")
        await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])
    [(mid,)] = states(db, "SELECT id FROM messages")
    other = write_lock(db)
    try:
        locked = _run_cli(config, "messages", "handle", str(mid), "--note", "looked at it")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert locked.returncode == UNAVAILABLE, locked.stderr
    assert locked.stderr == (f"ech-gateway: the store cannot write: {db} {LOCKED}; nothing more"
                             " was done, try again later\n")
    assert states(db, "SELECT count(*) FROM handled") == [(0,)]
    # once the lock is gone, the same command does it
    done = _run_cli(config, "messages", "handle", str(mid), "--note", "looked at it")
    assert done.returncode == OK, done.stderr
    assert done.stdout == f"message {mid} handled: looked at it\n"
