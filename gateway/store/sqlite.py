"""The embedded store: SQLite in WAL mode with group commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.contracts import RawInput, Receipt
from gateway.errors import StoreError
from gateway.store import _delivery_ops, _handling_ops, _intake_ops, _queries, journal
from gateway.store._writer import CommitListener, GroupCommitWriter
from gateway.store.base import PolicyFor
from gateway.store.migrate import migrate, missing
from gateway.store.records import Claim, Outcome, Pending, Processed
from gateway.store.states import MessageState


def connect(path: Path, *, busy_timeout: float = 30.0, readonly: bool = False) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with full durability on commit."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout,
                               isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class SQLiteStore:
    """The store the daemon writes through; every write is group-committed."""

    def __init__(self, path: Path, *, group_commit_max: int = 1000,
                 group_commit_delay: float = 0.002, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._writer = GroupCommitWriter(self._open_writer, max_batch=group_commit_max,
                                         max_delay=group_commit_delay)

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self.path, busy_timeout=self._busy_timeout)
        migrate(conn)
        conn.row_factory = None
        # checkpoints run beside the writer (checkpoint()), not inside its commits
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (blocking: run it in a thread).

        The writer does not checkpoint itself, so its commits stay one WAL
        append and one fsync; the daemon calls this every few seconds.
        """
        conn = connect(self.path, busy_timeout=self._busy_timeout)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    @property
    def commits(self) -> tuple[int, int]:
        """(batches committed, operations in them): group-commit efficiency."""
        return self._writer.batches, self._writer.operations

    def on_commit(self, listener: CommitListener) -> None:
        """Tell ``listener`` the journal entries of every committed batch (the event publisher)."""
        self._writer.on_commit = listener

    def start(self) -> None:
        """Open the database, apply migrations, start the writer."""
        self._writer.start()

    def close(self) -> None:
        """Commit what is queued and close."""
        self._writer.stop()

    # -- intake ------------------------------------------------------------
    async def add_raw(self, raws: Sequence[RawInput]) -> list[tuple[int, bool]]:
        """Store inputs as received; return (id, is_new) after the commit."""
        return await self._writer.write(
            lambda c: _intake_ops.add_raw(c, raws, MessageState.RECEIVED, None))

    async def quarantine_raw(self, raw: RawInput, reason: str) -> int:
        """Store an input directly as quarantined."""
        rows = await self._writer.write(
            lambda c: _intake_ops.add_raw(c, [raw], MessageState.QUARANTINED, reason))
        return rows[0][0]

    async def record_processing(self, results: Sequence[Processed]) -> list[int]:
        """Store what processing decided; return the new delivery ids."""
        return await self._writer.write(lambda c: _intake_ops.record_processing(c, results))

    async def pending(self, limit: int) -> list[Pending]:
        """Inputs stored but not processed yet."""
        return await self._writer.read(lambda c: _queries.pending(c, limit))

    async def load_input(self, message: int) -> Pending:
        """One stored input, as it was received."""
        return await self._writer.read(lambda c: _queries.load_input(c, message))

    async def requeue_message(self, message: int) -> None:
        """Send a quarantined or not-relevant message through processing again."""
        await self._writer.write(lambda c: _intake_ops.requeue_message(c, message))

    async def mark_handled(self, message: int, note: str) -> None:
        """Record that an operator dealt with a quarantined message, with a note."""
        await self._writer.write(lambda c: _handling_ops.mark_handled(c, message, note))

    async def add_correction(self, of: int, raw: RawInput) -> int:
        """Store a corrected input for quarantined message ``of``; return its id."""
        return await self._writer.write(lambda c: _handling_ops.add_correction(c, of, raw))

    # -- delivery ------------------------------------------------------------
    async def claim_due(self, node: str, lease: float, limit: int,
                        partners: Sequence[str]) -> list[Claim]:
        """Claim due deliveries for one attempt each."""
        return await self._writer.write(
            lambda c: _delivery_ops.claim_due(c, node, lease, limit, partners))

    async def release_leases(self, node: str) -> int:
        """Expire this node's leases (at start-up)."""
        return await self._writer.write(lambda c: _delivery_ops.release_leases(c, node))

    async def record_outcomes(self, outcomes: Sequence[Outcome], policy_for: PolicyFor,
                              receipt_timeout: Mapping[str, float]) -> None:
        """Record the outcome of send attempts."""
        await self._writer.write(
            lambda c: _delivery_ops.record_outcomes(c, outcomes, policy_for, receipt_timeout))

    async def record_receipts(self, receipts: Sequence[Receipt], policy_for: PolicyFor) -> list[bool]:
        """Record receipts; ``True`` where one matched an attempt."""
        return await self._writer.write(
            lambda c: _delivery_ops.record_receipts(c, receipts, policy_for))

    async def flag_overdue(self) -> list[tuple[int, int]]:
        """Flag deliveries whose receipt is overdue."""
        return await self._writer.write(_delivery_ops.flag_overdue)

    async def next_due(self, partners: Sequence[str]) -> float | None:
        """When the next waiting delivery to one of ``partners`` is due."""
        return await self._writer.read(lambda c: _queries.next_due(c, partners))

    async def note(self, event: str, detail: Mapping[str, Any]) -> None:
        """Journal something that happened to no message in particular (a partner paused)."""
        await self._writer.write(lambda c: (None, [journal.Entry(event, detail=detail)]))

    async def replay_delivery(self, delivery: int) -> int:
        """Replace a dead delivery by a fresh one; return its id."""
        return await self._writer.write(lambda c: _delivery_ops.replay_delivery(c, delivery))


class StoreReader:
    """Read-only access for the command line (and, later, the dashboard)."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path, readonly=True)
        behind = missing(self.conn)
        if behind:
            self.conn.close()
            raise StoreError(f"the database {path} lacks schema migrations {behind}: start the"
                             " gateway once to upgrade it")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def list_messages(self, **filters: Any) -> list[dict[str, Any]]:
        """Messages, newest first, with deliveries."""
        return _queries.list_messages(self.conn, **filters)

    def find_messages(self, key: str) -> list[dict[str, Any]]:
        """The messages a row id or an eCH-0223 messageId names (id, state, received_at...)."""
        return _queries.find_messages(self.conn, key)

    def count_messages(self, **filters: Any) -> int:
        """How many messages :meth:`list_messages` would list without a limit."""
        return _queries.count_messages(self.conn, **filters)

    def get_message(self, mid: int) -> dict[str, Any] | None:
        """One message in full."""
        return _queries.get_message(self.conn, mid)

    def raw(self, mid: int) -> bytes | None:
        """A message's raw bytes."""
        return _queries.raw_of(self.conn, mid)

    def counts(self) -> dict[str, Any]:
        """Counts per state, overdue receipts per partner, unhandled quarantined input."""
        return _queries.counts(self.conn)

    def activity(self, since: int) -> tuple[int, dict[str, int], int]:
        """The journal's head, events after ``since`` by kind, deliveries not yet final."""
        return _queries.activity(self.conn, since)

    def verify_journal(self) -> tuple[int, int | None]:
        """Check the journal's hash chain."""
        return journal.verify(self.conn)
