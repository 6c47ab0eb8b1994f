"""Read-only access to the embedded store, for the command line (and, later, the dashboard).

A reader opens its own read-only connection beside the running daemon (WAL
readers never block the writer) and refuses a database whose schema is
behind: only the daemon migrates. Each of its methods reads one moment of the
database (one read transaction), however many queries it runs: a commit of the
daemon's in between (a message routed, a delivery sent) cannot make a message's
state and its deliveries disagree. A caller that reads several times for one
answer wraps them in :meth:`StoreReader.snapshot`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from gateway.errors import StoreError
from gateway.store import (
    _case_queries,
    _export_queries,
    _intake_ops,
    _person_ops,
    _person_queries,
    _queries,
    _retention_ops,
    journal,
)
from gateway.store._connection import cannot_open, connect, snapshot
from gateway.store.anchor import Anchor, read_anchor
from gateway.store.migrate import missing

P = ParamSpec("P")
R = TypeVar("R")


def _one_moment(method: Callable[Concatenate[StoreReader, P], R]
                ) -> Callable[Concatenate[StoreReader, P], R]:
    """``method``, its queries in one read transaction (:meth:`StoreReader.snapshot`)."""
    @functools.wraps(method)
    def read(self: StoreReader, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.snapshot():
            return method(self, *args, **kwargs)
    return read


class StoreReader:
    """Read-only access for the command line (and, later, the dashboard)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.conn = connect(path, readonly=True)
        except sqlite3.OperationalError as exc:  # its folder not writable by this user
            raise StoreError(cannot_open(path, exc)) from None
        behind = missing(self.conn)
        if behind:
            self.conn.close()
            raise StoreError(f"the database {path} lacks schema migrations {behind}: start the"
                             " gateway once to upgrade it")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read one moment in the block: every read sees the database as the first found it
        (the methods' own snapshots join this one)."""
        with snapshot(self.conn):
            yield

    @_one_moment
    def list_messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Messages, newest first, with deliveries."""
        return _queries.list_messages(self.conn, **filters)

    @_one_moment
    def find_messages(self, key: str) -> list[dict[str, Any]]:
        """The messages a row id or an eCH-0223 messageId names (id, state, received_at...)."""
        return _queries.find_messages(self.conn, key)

    @_one_moment
    def count_messages(self, **filters: Any) -> int:
        """How many messages :meth:`list_messages` would list without a limit."""
        return _queries.count_messages(self.conn, **filters)

    @_one_moment
    def find_persons(self, keys: list[str]) -> list[int]:
        """The persons ``keys`` name (``local:*:<id>``: a local id of any category)."""
        return _person_queries.find_persons(self.conn, keys)

    @_one_moment
    def get_person(self, pid: int) -> dict[str, Any] | None:
        """One person: state, keys and the messages about them, in time order."""
        return _person_queries.person(self.conn, pid)

    @_one_moment
    def load_persons(self, keys: list[str]) -> dict[str, Any]:
        """The last known states of the persons ``keys`` name, by key."""
        return _person_ops.load_persons(self.conn, keys)

    @_one_moment
    def stored_persons(self, keys: list[str]) -> dict[str, Any]:
        """The stored states of the persons ``keys`` name, by key, unparsed."""
        return _person_ops.stored_persons(self.conn, keys)

    @_one_moment
    def original_of(self, source: str, data: bytes) -> int | None:
        """The message the daemon would store ``data`` from ``source`` as a duplicate of
        (None: it would be new); see :meth:`Store.original_of <gateway.store.Store.original_of>`."""
        return _intake_ops.original_of(self.conn, source, data)

    @_one_moment
    def get_message(self, mid: int) -> dict[str, Any] | None:
        """One message in full, as of one moment (one read transaction): a partner's
        message with its review, if it had one; an export's row with its export
        (``export``: id, source, ref, state); an export with a summary of its rows
        (``rows``, see :func:`~gateway.store._export_queries.rows_of`)."""
        msg = _queries.get_message(self.conn, mid)
        if msg is not None:
            msg["review"] = _case_queries.review_of(self.conn, mid)
            msg["export"] = _export_queries.export_of(self.conn, mid)
            msg["rows"] = _export_queries.rows_of(self.conn, mid)
        return msg

    @_one_moment
    def unhandled_rows(self, mid: int) -> list[tuple[int, str]]:
        """The id and ref of each of export ``mid``'s rows that is quarantined and not
        handled, in id order."""
        return _export_queries.unhandled_rows(self.conn, mid)

    @_one_moment
    def list_cases(self, limit: int, person: int | None = None) -> list[dict[str, Any]]:
        """Cases, the most recently updated first."""
        return _case_queries.list_cases(self.conn, limit, person)

    @_one_moment
    def get_case(self, case: int) -> dict[str, Any] | None:
        """One case with its messages in time order, both directions."""
        return _case_queries.get_case(self.conn, case)

    @_one_moment
    def raw(self, mid: int) -> bytes | None:
        """A message's raw bytes."""
        return _queries.raw_of(self.conn, mid)

    @_one_moment
    def count_prunable(self, before: float) -> tuple[int, int, int]:
        """How many settled messages unchanged since ``before`` retention would prune now, how
        many persons who left the register before then it would delete after them, and of
        how many receipts that matched no delivery, recorded before then, the bytes."""
        pruning = _retention_ops.prunable(self.conn, before, -1)
        return (len(pruning), len(_retention_ops.departed(self.conn, before, pruning=set(pruning))),
                len(_retention_ops.unmatched_receipts(self.conn, before)))

    @_one_moment
    def counts(self, failing_since: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Counts per state, deliveries per partner and state, overdue receipts per partner,
        unhandled quarantined input, deliveries failing since before ``failing_since`` (by
        partner): all of one moment (one read transaction), so that a write meanwhile
        cannot make the totals and the counts per partner disagree."""
        return _queries.counts(self.conn, failing_since)

    @_one_moment
    def activity(self, since: int) -> tuple[int, dict[str, int], int]:
        """The journal's head, events after ``since`` by kind, deliveries not yet final."""
        return _queries.activity(self.conn, since)

    @_one_moment
    def verify_journal(self) -> tuple[int, int | None]:
        """Check the journal's hash chain."""
        return journal.verify(self.conn)

    @_one_moment
    def against_anchor(self) -> tuple[Anchor | None, str | None]:
        """The journal's anchor, and why the database does not reach it (None: it does)."""
        anchor = read_anchor(self.path)
        return anchor, (journal.against_anchor(self.conn, anchor) if anchor else None)
