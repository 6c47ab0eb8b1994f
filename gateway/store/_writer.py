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

The flush runs on the event loop's own thread. A writer thread would
contend with the loop for the GIL at every SQL step and every file
operation (a convoy that measured slower than the loop blocking for the
commit itself, which takes well under a millisecond per batch here).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
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
        self.batches = 0
        self.operations = 0
        self.on_commit: CommitListener | None = None

    def start(self) -> None:
        """Open the connection."""
        self._conn = self._connect()

    def stop(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Commit what is queued, call ``last`` with the connection, then close it."""
        if self._conn is None:
            return
        while self._queue:
            self._flush()
        if last is not None:
            last(self._conn)
        self._conn.close()
        self._conn = None

    def read_now(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``op`` on the writer's connection now, between batches."""
        if self._conn is None:
            raise RuntimeError("the store is closed")
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
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
        if self._queue:
            self._scheduled = asyncio.get_running_loop().call_soon(self._flush)
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> None:
        conn = self._conn
        if conn is None:
            for _op, fut in batch:
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
            conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: every caller learns it
            exc = unavailable(exc)
            if isinstance(exc, StoreUnavailable):  # the callers wait for space; no traceback
                log.debug("store commit failed: %s", exc)
            else:
                log.exception("store commit failed")
            if conn.in_transaction:
                conn.rollback()
            for _op, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.batches += 1
        self.operations += len(batch)
        if committed and self.on_commit is not None:
            try:
                self.on_commit(committed)
            except Exception:  # the work is committed; a listener must not undo the batch
                log.exception("the commit listener failed")
        for fut, ok, value in results:
            if fut.done():  # the caller was cancelled; the work is committed all the same
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


def unavailable(exc: Exception) -> Exception:
    """``exc``, as :class:`StoreUnavailable` when it says the disk is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == _SQLITE_FULL:
        unavailable = StoreUnavailable(f"the store cannot write: {exc}")
        unavailable.__cause__ = exc
        return unavailable
    return exc
