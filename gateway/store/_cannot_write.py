"""When the store cannot write: a full disk, or another program holding the write lock.

Both become :class:`~gateway.errors.StoreUnavailable` (:func:`unavailable`): its
writers try again later, without a traceback. The group-commit writer
(:mod:`gateway.store._writer`) waits for another program's lock in its commit
thread (:func:`lock_free`), and a batch that cannot write still answers its
reads (:func:`read_alone`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.errors import StoreUnavailable
from gateway.store._connection import connect, snapshot

log = logging.getLogger(__name__)

#: SQLite's primary result codes for "database or disk is full" and for "the database is
#: locked" by another connection (SQLITE_BUSY; not SQLITE_LOCKED, a conflict within one
#: connection or a shared cache, which the store does not use: a bug, not the world).
_SQLITE_FULL, _SQLITE_BUSY = 13, 5


def unavailable(exc: Exception, database: str | Path = "the database",
                waited: float | None = None) -> Exception:
    """``exc``, as :class:`StoreUnavailable` when it says the disk is full, or that another
    connection held the write lock of ``database`` for more than ``waited`` seconds."""
    code = _primary(exc)
    if code == _SQLITE_FULL:
        why = str(exc)
    elif code == _SQLITE_BUSY:
        longer = f" for more than {waited:g}s" if waited is not None else ""
        why = (f"{database} is locked by another program{longer} (a tool with the database"
               " open for writing?)")
    else:
        return exc
    unavailable = StoreUnavailable(f"the store cannot write: {why}")
    unavailable.__cause__ = exc
    return unavailable


def busy(exc: Exception) -> bool:
    """Whether ``exc`` says another connection holds the write lock (SQLITE_BUSY)."""
    return _primary(exc) == _SQLITE_BUSY


def lock_free(database: str, deadline: float) -> Exception | None:
    """(In the commit thread.) Wait until no connection holds ``database``'s write lock, or
    until ``deadline`` (monotonic): ``None`` once it is free, else why not. A connection of
    its own waits, so that the writer's stays free for reads."""
    try:
        probe = connect(Path(database), busy_timeout=max(0.0, deadline - time.monotonic()),
                        create=False)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
    except Exception as exc:  # the batch fails with it: busy still, or worse
        return exc
    return None


def read_alone(conn: sqlite3.Connection,
               reads: Sequence[tuple[Callable[[sqlite3.Connection], tuple[Any, Any]],
                                     asyncio.Future[Any]]]) -> None:
    """Run ``reads`` in a read transaction of their own (no write lock; the failed batch's
    writes are rolled back): their callers get their values, or their own errors."""
    if not reads:
        return
    outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
    try:
        with snapshot(conn):
            for op, fut in reads:
                try:
                    outcomes.append((fut, True, op(conn)[0]))
                except Exception as exc:  # the caller's own
                    outcomes.append((fut, False, exc))
    except sqlite3.Error as exc:  # the callers learn why the batch failed
        log.debug("reading on its own failed: %s", exc)
        return
    for fut, ok, value in outcomes:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _primary(exc: Exception) -> int | None:
    """The primary SQLite result code of ``exc`` (its extended code's low byte), if any."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(exc, sqlite3.Error) and code is not None else None
