"""The group-commit writer: operations on the loop, the commit beside it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import StoreUnavailable
from gateway.store._writer import GroupCommitWriter
from gateway.store.journal import Entry


class GatedConnection(sqlite3.Connection):
    """A real SQLite connection whose ``COMMIT`` waits until the test opens the gate."""

    gate = threading.Event()
    entered = threading.Event()
    fail: Exception | None = None
    fail_rollback = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "COMMIT":
            GatedConnection.entered.set()
            assert GatedConnection.gate.wait(10)
            if GatedConnection.fail is not None:
                raise GatedConnection.fail
        return super().execute(sql, *args)

    def rollback(self) -> None:
        if GatedConnection.fail_rollback:
            raise sqlite3.OperationalError("disk I/O error (in the rollback)")
        super().rollback()


def gated_writer(path: Path) -> GroupCommitWriter:
    """A started writer on a new database ``path`` (table ``t``), its commits gated."""
    with sqlite3.connect(path) as setup:
        setup.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER)")
    GatedConnection.gate.clear()
    GatedConnection.entered.clear()
    GatedConnection.fail = None
    GatedConnection.fail_rollback = False
    w = GroupCommitWriter(lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                                  factory=GatedConnection),
                          max_batch=100, max_delay=0.0)
    w.start()
    return w


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[GroupCommitWriter]:
    w = gated_writer(tmp_path / "w.db")
    yield w
    GatedConnection.gate.set()
    w.stop()


def insert(n: int, ran: list[int]) -> Any:
    def op(conn: sqlite3.Connection) -> tuple[int, list[Entry]]:
        ran.append(n)
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n, []
    return op


def committed_rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as other:
        return [n for (n,) in other.execute("SELECT n FROM t ORDER BY n")]


async def until(event: threading.Event) -> None:
    for _ in range(1000):
        if event.is_set():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the commit never started")


async def test_while_a_commit_waits_the_loop_runs_and_new_writes_wait_for_the_next_batch(
        writer: GroupCommitWriter, tmp_path: Path) -> None:
    ran: list[int] = []
    first = asyncio.ensure_future(writer.write(insert(1, ran)))
    await until(GatedConnection.entered)
    second = asyncio.ensure_future(writer.write(insert(2, ran)))
    for _ in range(20):  # the loop goes on while the commit waits for its disk
        await asyncio.sleep(0.005)
    assert ran == [1], "an operation ran inside a transaction being committed"
    assert not first.done(), "a caller heard before its commit ended"
    assert committed_rows(tmp_path / "w.db") == []
    GatedConnection.gate.set()
    assert await first == 1
    assert await second == 2
    assert ran == [1, 2] and writer.batches == 2
    assert committed_rows(tmp_path / "w.db") == [1, 2]


async def test_reading_now_waits_for_the_commit_under_way_and_sees_it(
        writer: GroupCommitWriter) -> None:
    ran: list[int] = []
    first = asyncio.ensure_future(writer.write(insert(1, ran)))
    await until(GatedConnection.entered)
    threading.Timer(0.1, GatedConnection.gate.set).start()
    count = writer.read_now(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0])
    assert count == 1 and writer.batches == 1
    assert await first == 1


async def test_a_commit_that_fails_fails_every_caller_and_keeps_nothing(
        writer: GroupCommitWriter, tmp_path: Path) -> None:
    ran: list[int] = []
    GatedConnection.fail = sqlite3.OperationalError("disk I/O error")
    calls = [asyncio.ensure_future(writer.write(insert(n, ran))) for n in (1, 2)]
    await until(GatedConnection.entered)
    GatedConnection.gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["disk I/O error"] * 2
    GatedConnection.fail = None
    assert await writer.write(insert(3, ran)) == 3
    assert committed_rows(tmp_path / "w.db") == [3]


async def test_callers_learn_of_a_failed_commit_even_when_its_rollback_fails(
        writer: GroupCommitWriter, tmp_path: Path) -> None:
    """A caller never waits for ever: the rollback after a failed commit may fail too."""
    ran: list[int] = []
    GatedConnection.fail = sqlite3.OperationalError("disk I/O error")
    GatedConnection.fail_rollback = True
    calls = [asyncio.ensure_future(writer.write(insert(n, ran))) for n in (1, 2)]
    await until(GatedConnection.entered)
    GatedConnection.gate.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
    assert [str(o) for o in outcomes] == ["disk I/O error"] * 2


async def test_closing_commits_what_is_under_way_and_queued(
        writer: GroupCommitWriter, tmp_path: Path) -> None:
    ran: list[int] = []
    first = asyncio.ensure_future(writer.write(insert(1, ran)))
    await until(GatedConnection.entered)
    second = asyncio.ensure_future(writer.write(insert(2, ran)))
    await asyncio.sleep(0)  # (queued)
    threading.Timer(0.1, GatedConnection.gate.set).start()
    writer.stop()
    assert writer.batches == 2 and await first == 1 and await second == 2
    assert committed_rows(tmp_path / "w.db") == [1, 2]


def test_a_commit_whose_loop_closed_meanwhile_does_not_stop_the_next_loops_writes(
        tmp_path: Path) -> None:
    """A command-line tool runs one event loop after another on one store."""
    path = tmp_path / "w.db"
    writer = gated_writer(path)
    ran: list[int] = []

    async def first_loop() -> None:  # gives up while its write is being committed
        writing = asyncio.ensure_future(writer.write(insert(1, ran)))
        await until(GatedConnection.entered)
        assert not writing.done()

    asyncio.run(first_loop())
    GatedConnection.gate.set()
    assert asyncio.run(asyncio.wait_for(writer.write(insert(2, ran)), 5)) == 2
    writer.stop()
    assert committed_rows(path) == [1, 2]


def plain_writer(path: Path, busy_timeout: float) -> GroupCommitWriter:
    """A started writer on a new database ``path`` (table ``t``) that waits ``busy_timeout``
    seconds for another connection's write lock."""
    with sqlite3.connect(path) as setup:
        setup.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER)")
    w = GroupCommitWriter(lambda: sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                                                  check_same_thread=False),
                          max_batch=100, max_delay=0.0)
    w.start()
    return w


def write_lock(path: Path) -> sqlite3.Connection:
    """Another program's connection to ``path``, holding its write lock until it ends."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


async def test_while_another_program_holds_the_write_lock_the_loop_goes_on(
        tmp_path: Path) -> None:
    """The batch waits for the lock beside the loop, not in it: the loop's other work
    (reading now, between batches) goes on, and the batch runs once the lock is free."""
    path = tmp_path / "w.db"
    writer = plain_writer(path, busy_timeout=10.0)
    other = write_lock(path)
    try:
        ran: list[int] = []
        first = asyncio.ensure_future(writer.write(insert(1, ran)))
        for _ in range(20):  # the batch meets the lock, and waits for it
            await asyncio.sleep(0.005)
        assert not first.done(), "the batch gave up on the lock, or got it while held"
        assert ran == [] and writer.read_now(count) == 0
        other.execute("COMMIT")
        assert await first == 1
    finally:
        other.close()
        writer.stop()
    assert committed_rows(path) == [1]


async def test_a_write_lock_held_longer_than_the_busy_timeout_fails_the_writes_not_the_reads(
        tmp_path: Path) -> None:
    """The writes of the batch learn it as StoreUnavailable, which says why; its reads
    run on their own, without the write lock."""
    path = tmp_path / "w.db"
    writer = plain_writer(path, busy_timeout=0.2)
    other = write_lock(path)
    try:
        ran: list[int] = []
        wrote, read = await asyncio.gather(writer.write(insert(1, ran)), writer.read(count),
                                           return_exceptions=True)
        assert isinstance(wrote, StoreUnavailable), wrote
        assert str(wrote) == (f"the store cannot write: {path} is locked by another program for"
                              " more than 0.2s (a tool with the database open for writing?)")
        assert read == 0
        other.execute("ROLLBACK")
        assert await writer.write(insert(2, ran)) == 2
    finally:
        other.close()
        writer.stop()
    assert committed_rows(path) == [2]
