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
from typing import Any, TypeVar

from gateway.errors import StoreUnavailable
from gateway.store import journal
from gateway.store.journal import Entry

log = logging.getLogger(__name__)

#: SQLite's primary result code for "database or disk is full".
_SQLITE_FULL = 13

T = TypeVar("T")
#: A write operation: its value, and the journal entries of what it changed.
Operation = Callable[[sqlite3.Connection], tuple[Any, Sequence[Entry]]]
#: Told the journal entries of each committed batch, in journal order.
CommitListener = Callable[[Sequence[Entry]], None]


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch whose operations ran: each caller's outcome, waiting for the commit."""

    futures: list[asyncio.Future[Any]]
    results: list[tuple[asyncio.Future[Any], bool, Any]]
    committed: list[Entry]


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
        self.batches = 0
        self.operations = 0
        self.on_commit: CommitListener | None = None

    def start(self) -> None:
        """Open the connection."""
        self._conn = self._connect()
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")

    def stop(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Commit what is queued, call ``last`` with the connection, then close it."""
        if self._conn is None:
            return
        self._await_commit()
        while self._queue:
            self._flush()
            self._await_commit()
        if last is not None:
            last(self._conn)
        self._conn.close()
        self._conn = None
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None

    def read_now(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``op`` on the writer's connection now, between batches
        (after the commit under way, if any: ``op`` sees what it committed)."""
        if self._conn is None:
            raise RuntimeError("the store is closed")
        self._await_commit()
        return op(self._conn)

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op``, which changes nothing worth journaling, in the next batch."""
        return await self.write(lambda conn: (op(conn), ()))

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
        if self._committing is not None and self._committing.loop.is_closed():
            self._await_commit()  # its end would not be heard: its loop closed meanwhile
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._committing is not None:
            return  # the commit's end flushes what waits
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
        if self._queue:
            self._scheduled = asyncio.get_running_loop().call_soon(self._flush)
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> None:
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
        done = _Batch([fut for _op, fut in batch], results, committed)
        try:
            conn.execute("BEGIN IMMEDIATE")
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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closing: commit in place
            self._settle(done, conn.execute, "COMMIT")
            return
        assert self._committer is not None
        committing = _Committing(done, self._committer.submit(conn.execute, "COMMIT"), loop)
        self._committing = committing
        committing.commit.add_done_callback(lambda _: _call_soon(loop, self._committed, committing))

    def _await_commit(self) -> None:
        """Wait for the commit under way, if any, and settle its batch (on the loop's thread)."""
        committing = self._committing
        if committing is not None:
            wait([committing.commit])
            self._committed(committing)

    def _committed(self, committing: _Committing) -> None:
        """The commit under way ended: settle its batch; the operations that waited run next."""
        if self._committing is not committing:
            return  # settled already (by a reader or by closing, which waited for it)
        self._committing = None
        self._settle(committing.batch, committing.commit.result)
        if not self._queue:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closing flushes them itself
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
        self.operations += len(done.futures)
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

    @staticmethod
    def _failed(conn: sqlite3.Connection, done: _Batch, exc: Exception) -> None:
        """Roll the batch back; every caller in it learns ``exc``."""
        exc = unavailable(exc)
        if isinstance(exc, StoreUnavailable):  # the callers wait for space; no traceback
            log.debug("store commit failed: %s", exc)
        else:
            log.exception("store commit failed", exc_info=exc)
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error as gone:  # the callers must learn it all the same
            log.error("rolling back the failed commit failed too: %s", gone)
        for fut in done.futures:
            if not fut.done():
                fut.set_exception(exc)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """``callback(*args)`` on ``loop``'s thread, unless the loop is closed (then who closes waits)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def unavailable(exc: Exception) -> Exception:
    """``exc``, as :class:`StoreUnavailable` when it says the disk is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == _SQLITE_FULL:
        unavailable = StoreUnavailable(f"the store cannot write: {exc}")
        unavailable.__cause__ = exc
        return unavailable
    return exc
