"""Group commit on the event loop: operations queued in one loop pass share a commit.

Callers hand in operations (functions of a connection). The first one
queued schedules a flush for the next loop pass (or after ``max_delay``);
the flush runs every waiting operation in one transaction, each under its
own savepoint so one failure does not undo the others, commits once (one
fsync for the whole batch), then resolves the callers' futures.

A write operation returns its value and the journal entries that say what
it changed; the writer appends them to the journal inside the operation's
savepoint, and after the commit hands the entries of every operation that
committed to the ``on_commit`` listener (the event publisher). So what is
announced is exactly what was committed, never what was only attempted.

The operations run on the event loop's own thread. A writer thread would
contend with the loop for the GIL at every SQL step and every file
operation (a convoy that measured slower). Only the ``COMMIT`` itself, which
writes the WAL and waits for its fsync with the GIL released, runs in a
thread of its own: meanwhile the loop takes files, hands work to the workers
and queues the next batch's operations, which run once the commit is done.
Without a running loop (closing), it commits in place.

Nor does the loop wait for the write lock when another program holds it (a
tool with the database open for writing): the batch's ``BEGIN`` does not
wait there, the commit thread waits for the lock to be free, up to the
connection's busy timeout, and then the batch runs. A batch that did not get
the lock in that time fails with :class:`~gateway.errors.StoreUnavailable`,
as one that meets a full disk does: its writers try again later. Its reads
(:meth:`GroupCommitWriter.read`) do not fail for want of a write: they run
again on their own, in a read transaction, which needs neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.errors import StoreUnavailable
from gateway.store import journal
from gateway.store._cannot_write import busy, lock_free, read_alone, unavailable
from gateway.store.journal import Entry

log = logging.getLogger(__name__)

T = TypeVar("T")
#: A write operation: its value, and the journal entries of what it changed.
Operation = Callable[[sqlite3.Connection], tuple[Any, Sequence[Entry]]]
#: Told the journal entries of each committed batch, in journal order.
CommitListener = Callable[[Sequence[Entry]], None]


class _Read(Generic[T]):
    """A read-only operation (:meth:`GroupCommitWriter.read`): it needs no write lock."""

    __slots__ = ("op",)

    def __init__(self, op: Callable[[sqlite3.Connection], T]) -> None:
        self.op = op

    def __call__(self, conn: sqlite3.Connection) -> tuple[T, Sequence[Entry]]:
        return self.op(conn), ()


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch whose operations ran: each caller's outcome, waiting for the commit."""

    ops: list[tuple[Operation, asyncio.Future[Any]]]
    results: list[tuple[asyncio.Future[Any], bool, Any]]
    committed: list[Entry]


@dataclass(frozen=True, slots=True)
class _Locked:
    """A batch whose ``BEGIN`` met another connection's write lock: the commit thread waits
    for the lock (``wait``: ``None`` once it is free, else why not) until ``deadline``
    (monotonic); its end is told to ``loop``."""

    batch: list[tuple[Operation, asyncio.Future[Any]]]
    wait: Future[Exception | None]
    loop: asyncio.AbstractEventLoop
    deadline: float


@dataclass(frozen=True, slots=True)
class _Committing:
    """A batch whose ``COMMIT`` runs in the commit thread; its end is told to ``loop``."""

    batch: _Batch
    commit: Future[Any]
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    """Runs write operations in batches on one connection."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, max_batch: int,
                 max_delay: float, guard: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """:param guard: called before each commit; what it raises fails the whole batch
            (the database file is gone: nothing may be committed into it).
        :param clock: the time journal entries are stamped with."""
        self._connect = connect
        self._clock = clock
        self._guard = guard
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._conn: sqlite3.Connection | None = None
        self._queue: list[tuple[Operation, asyncio.Future[Any]]] = []
        self._scheduled: asyncio.Handle | None = None
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._committing: _Committing | None = None
        self._locked: _Locked | None = None
        self._database = ""  # the database file, for messages and the lock's wait
        self._busy_ms = 0  # the connection's busy timeout
        self.batches = 0
        self.operations = 0
        self.on_commit: CommitListener | None = None

    def start(self) -> None:
        """Open the connection."""
        self._conn = self._connect()
        self._database = self._conn.execute("PRAGMA database_list").fetchone()[2]
        self._busy_ms = self._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")

    def stop(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Commit what is queued, call ``last`` with the connection, then close it."""
        if self._conn is None:
            return
        self._await_batch()
        while self._queue:
            self._flush()
            self._await_batch()
        if last is not None:
            last(self._conn)
        self._conn.close()
        self._conn = None
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None

    def read_now(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``op`` on the writer's connection now, between batches
        (after the commit under way, if any: ``op`` sees what it committed; not after a
        batch waiting for another program's lock: none of it ran)."""
        if self._conn is None:
            raise RuntimeError("the store is closed")
        self._await_commit()
        return op(self._conn)

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op``, which changes nothing, in the next batch (alone, if the batch cannot
        write: another program holds the lock, the disk is full)."""
        return await self.queue(_Read(op))

    async def write(self, op: Callable[[sqlite3.Connection], tuple[T, Sequence[Entry]]]) -> T:
        """Run ``op`` in the next batch, journal its entries; return its value after the commit."""
        return await self.queue(op)

    def queue(self, op: Callable[[sqlite3.Connection], tuple[T, Sequence[Entry]]]
              ) -> asyncio.Future[T]:
        """:meth:`write` without waiting: the future gets ``op``'s value after the commit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.append((op, fut))
        if len(self._queue) >= self._max_batch:
            self._flush()
        elif self._scheduled is None or self._scheduled_on is not loop:
            # (a command-line tool may run one event loop after another)
            self._scheduled = loop.call_later(self._max_delay, self._flush)
            self._scheduled_on = loop
        return fut

    def _flush(self) -> None:
        under_way = self._committing or self._locked
        if under_way is not None and under_way.loop.is_closed():
            self._await_batch()  # its end would not be heard: its loop closed meanwhile
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._committing is not None or self._locked is not None:
            return  # the commit's (or the lock's wait's) end flushes what waits
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
        if self._queue:
            self._scheduled = asyncio.get_running_loop().call_soon(self._flush)
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[tuple[Operation, asyncio.Future[Any]]],
                deadline: float | None = None) -> None:
        """Run ``batch``'s operations and start its commit; ``deadline``: until when (monotonic)
        it may wait for another connection's write lock, if it waited already."""
        conn = self._conn
        if conn is None:
            for _op, fut in batch:
                if not fut.done():
                    fut.set_exception(RuntimeError("the store is closed"))
            return
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        committed: list[Entry] = []
        try:
            if self._guard is not None:
                self._guard()
        except Exception as exc:  # nothing of the batch may be committed
            for _op, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        done = _Batch(batch, results, committed)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # closing: wait for the lock here
            loop = None
        try:
            if loop is None:
                conn.execute("BEGIN IMMEDIATE")
            elif (busy := self._begin_now(conn)) is not None:
                if deadline is None:
                    deadline = time.monotonic() + self._busy_ms / 1000
                if time.monotonic() >= deadline:
                    raise busy
                self._wait_for_lock(batch, loop, deadline)
                return
            for op, fut in batch:
                conn.execute("SAVEPOINT op")
                try:
                    value, entries = op(conn)
                    if entries:
                        journal.append(conn, entries, self._clock())
                except Exception as exc:  # the caller gets it; the batch goes on
                    exc = unavailable(exc)
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((fut, False, exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((fut, True, value))
                    committed += entries
        except Exception as exc:  # the transaction failed: every caller learns it
            self._failed(conn, done, exc)
            return
        if loop is None:  # closing: commit in place
            self._settle(done, conn.execute, "COMMIT")
            return
        assert self._committer is not None
        committing = _Committing(done, self._committer.submit(conn.execute, "COMMIT"), loop)
        self._committing = committing
        committing.commit.add_done_callback(lambda _: _call_soon(loop, self._committed, committing))

    def _begin_now(self, conn: sqlite3.Connection) -> sqlite3.OperationalError | None:
        """Begin the batch's transaction if the write lock is free now; else why not (busy)."""
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if busy(exc):
                return exc
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        return None

    def _wait_for_lock(self, batch: list[tuple[Operation, asyncio.Future[Any]]],
                       loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Let the commit thread wait for the write lock; ``batch`` runs once it is free."""
        assert self._committer is not None
        locked = _Locked(batch, self._committer.submit(lock_free, self._database, deadline), loop, deadline)
        self._locked = locked
        locked.wait.add_done_callback(lambda _: _call_soon(loop, self._lock_waited, locked))

    def _lock_waited(self, locked: _Locked) -> None:
        """The wait for the write lock ended: run the batch, or fail it if the lock stayed."""
        if self._locked is not locked:
            return  # settled already (by closing, which waited for it)
        self._locked = None
        busy = locked.wait.result()
        if busy is None:
            self._commit(locked.batch, locked.deadline)  # (it waits again if taken meanwhile)
        else:
            assert self._conn is not None
            self._failed(self._conn, _Batch(locked.batch, [], []), busy)
        if self._committing is None and self._locked is None and self._queue:
            self._schedule_flush()

    def _await_commit(self) -> None:
        """Wait for the commit under way, if any, and settle its batch (on the loop's thread)."""
        committing = self._committing
        if committing is not None:
            wait([committing.commit])
            self._committed(committing)

    def _await_batch(self) -> None:
        """Wait until no batch is under way: its commit, or its wait for the write lock."""
        while self._committing is not None or self._locked is not None:
            locked = self._locked
            if locked is not None:
                wait([locked.wait])
                self._lock_waited(locked)
            self._await_commit()

    def _committed(self, committing: _Committing) -> None:
        """The commit under way ended: settle its batch; the operations that waited run next."""
        if self._committing is not committing:
            return  # settled already (by a reader or by closing, which waited for it)
        self._committing = None
        self._settle(committing.batch, committing.commit.result)
        if self._queue:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Flush what waits in the next loop pass (closing flushes it itself)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._scheduled, self._scheduled_on = loop.call_soon(self._flush), loop

    def _settle(self, done: _Batch, commit: Callable[..., Any], *args: Any) -> None:
        """Tell the callers of a batch whose operations ran how ``commit(*args)`` ended."""
        conn = self._conn
        assert conn is not None
        try:
            commit(*args)
        except Exception as exc:  # the commit itself failed: every caller learns it
            self._failed(conn, done, exc)
            return
        self.batches += 1
        self.operations += len(done.ops)
        if done.committed and self.on_commit is not None:
            try:
                self.on_commit(done.committed)
            except Exception:  # the work is committed; a listener must not undo the batch
                log.exception("the commit listener failed")
        for fut, ok, value in done.results:
            if fut.done():  # the caller was cancelled; the work is committed all the same
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _failed(self, conn: sqlite3.Connection, done: _Batch, exc: Exception) -> None:
        """Roll the batch back; every caller in it learns ``exc``."""
        exc = unavailable(exc, self._database, self._busy_ms / 1000)
        if isinstance(exc, StoreUnavailable):  # the callers try again later; no traceback
            log.debug("store commit failed: %s", exc)
        else:
            log.exception("store commit failed", exc_info=exc)
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error as gone:  # the callers must learn it all the same
            log.error("rolling back the failed commit failed too: %s", gone)
        else:
            if isinstance(exc, StoreUnavailable):
                read_alone(conn, [(op, fut) for op, fut in done.ops if isinstance(op, _Read)])
        for _op, fut in done.ops:
            if not fut.done():
                fut.set_exception(exc)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """``callback(*args)`` on ``loop``'s thread, unless the loop is closed (then who closes waits)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
