"""The embedded store: SQLite in WAL mode with group commit.

The store makes sure it writes into the database it opened: before each
commit batch and on :meth:`SQLiteStore.keep_anchor` (every 2 s) it checks
that the file at its path is still the one it opened (device and inode).
A database deleted or replaced while running is *lost*: nothing more is
committed, and ``on_lost`` is told once. At start the database must reach
its journal anchor (:mod:`gateway.store.anchor`), else it refuses to open.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.contracts import RawInput
from gateway.errors import StoreError, StoreLost
from gateway.outbound import Receipt
from gateway.person_state import PersonState, StoredPerson
from gateway.store import (
    _delivery_ops,
    _handling_ops,
    _inbound_ops,
    _intake_ops,
    _node_lock,
    _person_ops,
    _queries,
    _receipt_ops,
    _retention_ops,
    journal,
)
from gateway.store._cannot_write import unavailable
from gateway.store._connection import cannot_open, connect, release_free_pages, tune_writer
from gateway.store._database_file import DatabaseFile
from gateway.store._intake_batch import IntakeBatcher
from gateway.store._writer import CommitListener, GroupCommitWriter
from gateway.store.anchor import Anchor, anchor_path, read_anchor
from gateway.store.base import Clock, PolicyFor
from gateway.store.migrate import migrate
from gateway.store.records import Claim, Outcome, Pending, Processed


class SQLiteStore:
    """The store the daemon writes through; every write is group-committed."""

    def __init__(self, path: Path, *, group_commit_max: int = 1000,
                 group_commit_delay: float = 0.002, busy_timeout: float = 30.0,
                 on_lost: Callable[[StoreLost], None] | None = None,
                 clock: Clock = time.time) -> None:
        """:param clock: the store's one source of the time it records (leases, due times,
            the journal); tests pass a fake one."""
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._db = DatabaseFile(path, clock, on_lost)
        self._writer = GroupCommitWriter(self._open_writer, max_batch=group_commit_max,
                                         max_delay=group_commit_delay, guard=self._db.check,
                                         clock=clock)
        self._intake = IntakeBatcher(self._writer, self.now)
        self._node_lock: int | None = None  # the node's lock file (hold_node), held till close

    def now(self) -> float:
        """The store's clock: the time every write of it records."""
        return self._clock()

    def identity(self) -> str:
        """The database's identity: random, made once with the database (after :meth:`start`)."""
        return self._db.identity

    @property
    def lost(self) -> StoreLost | None:
        """Why the store is lost (the database deleted or replaced), once it is."""
        return self._db.lost

    def _open_writer(self) -> sqlite3.Connection:
        anchor = read_anchor(self.path)
        if anchor is not None and not self.path.exists():
            raise StoreLost(f"journal MISSING: the database {self.path} is gone; its anchor"
                            f" {anchor_path(self.path)} names journal entry {anchor.seq}."
                            f" {_REMEDY}")
        try:
            conn = connect(self.path, busy_timeout=self._busy_timeout)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            migrate(conn)
            problem = journal.against_anchor(conn, anchor) if anchor is not None else None
            if problem is not None:
                raise StoreLost(f"journal {problem} ({self.path}). {_REMEDY}")
            self._db.opened(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise self._unavailable(exc) from exc
        except BaseException:
            conn.close()
            raise
        tune_writer(conn)
        return conn

    def _unavailable(self, exc: sqlite3.Error) -> Exception:
        """``exc``, as :class:`StoreUnavailable` when the disk is full or another program
        holds the database's write lock (:func:`~gateway.store._cannot_write.unavailable`)."""
        return unavailable(exc, self.path, self._busy_timeout)

    async def keep_anchor(self) -> None:
        """Check that the database is still there; write its anchor if the journal moved.

        :raises StoreLost: the database file was deleted or replaced.
        :raises StoreUnavailable: the anchor cannot be written now (disk full).
        """
        self._db.check()
        await self._db.keep(self._writer.read_now(self._db.anchor))

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (blocking: run it in a thread).

        Under load the writer checkpoints itself, after the commit that takes the
        WAL past :data:`~gateway.store._connection.WAL_CHECKPOINT_PAGES`; the daemon calls this every few
        seconds, for the rest. Pages retention freed are given back to the file
        system first, a few MiB at a time, so the file shrinks
        (:func:`~gateway.store._connection.release_free_pages`).

        Nothing is done unless the file at ``path`` is the database opened: a
        checkpoint into a database put in its place (a restored backup) would
        copy this database's WAL into it. The writer reports the loss.

        :raises StoreUnavailable: the disk is full (the WAL keeps everything meanwhile), or
            another program holds the write lock the pages' release takes.
        """
        if self.lost is not None or not self._db.same():
            return
        conn = connect(self.path, busy_timeout=self._busy_timeout, create=False)
        try:
            if self._db.same():  # (still: the file opened is ours)
                release_free_pages(conn)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
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
        """Open the database, apply migrations, check it against its anchor, start the writer.

        :raises StoreLost: the database does not reach its journal anchor.
        :raises StoreUnavailable: another program holds the database's write lock for longer
            than the busy timeout (which opening it and its migrations may need), or the disk
            is full.
        :raises StoreError: the database cannot be opened (its folder is not writable by this
            user, say), saying why (:func:`~gateway.store._connection.cannot_open`).
        """
        try:
            self._writer.start()
        except sqlite3.OperationalError as exc:
            raise StoreError(cannot_open(self.path, exc)) from None
        self._db.write_now(self._writer.read_now(lambda c: self._db.anchor(c, always=True)),
                           "start")

    def hold_node(self, node: str) -> None:
        """Hold ``node`` on this database until :meth:`close`: a lock file beside it
        (:mod:`gateway.store._node_lock`).

        :raises NodeRunning: another process holds the node.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._node_lock = _node_lock.hold(self.path, node)

    def close(self) -> None:
        """Commit what is queued, anchor the journal's head, and close (letting go of the node)."""
        try:
            self._close()
        finally:
            if self._node_lock is not None:
                os.close(self._node_lock)
                self._node_lock = None

    def _close(self) -> None:
        anchors: list[Anchor | None] = []

        def last(conn: sqlite3.Connection) -> None:
            try:
                self._db.check()
            except StoreLost:
                return  # the anchor keeps naming what the lost database reached
            anchors.append(self._db.anchor(conn, always=True))

        self._writer.stop(last)
        for anchor in anchors:
            self._db.write_now(anchor, "stop")

    # -- intake ------------------------------------------------------------
    async def add_raw(self, raws: Sequence[RawInput]) -> list[tuple[int, bool]]:
        """Store inputs as received; return (id, is_new) after the commit.

        Concurrent calls share one operation (:mod:`gateway.store._intake_batch`).
        """
        return await self._intake.add(raws)

    async def quarantine_raw(self, raw: RawInput, reason: str, *, message_id: str | None = None,
                             sender_id: str | None = None) -> int:
        """Store an input directly as quarantined, with the header's ids where it may."""
        return await self._writer.write(lambda c: _intake_ops.quarantine_raw(
            c, raw, reason, message_id, sender_id, self.now()))

    async def original_of(self, source: str, data: bytes) -> int | None:
        """The message ``data`` from ``source`` would be a duplicate of; None: it would be new."""
        return await self._writer.read(lambda c: _intake_ops.original_of(c, source, data))

    async def record_processing(self, results: Sequence[Processed]) -> list[int]:
        """Store what processing decided; return the new delivery ids."""
        return await self._writer.write(
            lambda c: _intake_ops.record_processing(c, results, self.now()))

    async def parts_of(self, parents: Sequence[int]) -> list[Pending]:
        """The parts of split messages that wait to be processed."""
        return await self._writer.read(lambda c: _intake_ops.parts_of(c, parents))

    async def load_persons(self, keys: Sequence[str]) -> dict[str, PersonState]:
        """The last known states of the persons ``keys`` name, by key."""
        return await self._writer.read(lambda c: _person_ops.load_persons(c, keys))

    async def stored_persons(self, keys: Sequence[str]) -> dict[str, StoredPerson]:
        """The stored states of the persons ``keys`` name, by key, unparsed: as committed
        now, not behind the writes queued for the next commit."""
        return self._writer.read_now(lambda c: _person_ops.stored_persons(c, keys))

    async def persons_born(self, birth: str) -> list[tuple[int, PersonState]]:
        """The persons born on ``birth`` (ISO), with their ids."""
        return await self._writer.read(lambda c: _person_ops.persons_born(c, birth))

    async def assignments(self, messages: Sequence[int]) -> dict[int, list[str]]:
        """The person keys operators assigned to ``messages`` (``messages assign``)."""
        return await self._writer.read(lambda c: _inbound_ops.assignments(c, messages))

    async def attempted_message_id(self, partner: str, attempt: str) -> str | None:
        """The eCH-0223 messageId of the message attempt ``attempt`` carried to ``partner``."""
        return await self._writer.read(
            lambda c: _inbound_ops.attempted_message_id(c, partner, attempt))

    async def answered_persons(self, partner: str, message_id: str,
                               senders: Collection[str] = ()) -> list[tuple[int, PersonState]]:
        """The persons of the message ``message_id`` delivered to ``partner``, with their ids."""
        return await self._writer.read(
            lambda c: _inbound_ops.answered_persons(c, partner, message_id, senders))

    async def original_source(self, partner: str, message_id: str,
                              senders: Collection[str] = ()) -> str | None:
        """The source of the message ``message_id`` that was delivered to ``partner`` (from one
        of ``senders`` where several senders used that messageId)."""
        return await self._writer.read(
            lambda c: _inbound_ops.original_source(c, partner, message_id, senders))

    async def assign(self, message: int, keys: Sequence[str], who: str) -> None:
        """Assign a person to a message waiting for review, and requeue it."""
        await self._writer.write(
            lambda c: _inbound_ops.assign(c, message, keys, who, self.now()))

    async def pending(self, limit: int, *, max_bytes: int | None = None) -> list[Pending]:
        """Inputs stored but not processed yet."""
        return await self._writer.read(lambda c: _queries.pending(c, limit, max_bytes))

    async def count_pending(self) -> int:
        """How many inputs are stored but not processed yet."""
        return await self._writer.read(_queries.count_pending)

    async def inputs(self, messages: Sequence[int]) -> list[Pending]:
        """Of the inputs ``messages``, those not processed yet."""
        return await self._writer.read(lambda c: _queries.inputs(c, messages))

    async def load_input(self, message: int) -> Pending:
        """One stored input, as it was received."""
        return await self._writer.read(lambda c: _queries.load_input(c, message))

    async def requeue_message(self, message: int) -> None:
        """Send a quarantined, not-relevant or needs-review message through processing again."""
        await self._writer.write(lambda c: _handling_ops.requeue_message(c, message, self.now()))

    async def mark_handled(self, message: int, note: str) -> list[int]:
        """Record that an operator dealt with a quarantined message, or with its partners'
        rejections (the deliveries handled), with a note."""
        return await self._writer.write(
            lambda c: _handling_ops.mark_handled(c, message, note, self.now()))

    async def add_correction(self, of: int, raw: RawInput) -> int:
        """Store a corrected input for quarantined message ``of``; return its id."""
        return await self._writer.write(
            lambda c: _handling_ops.add_correction(c, of, raw, self.now()))

    # -- delivery ------------------------------------------------------------
    async def claim_due(self, node: str, lease: float, limit: int, partners: Sequence[str],
                        *, max_bytes: int | None = None) -> list[Claim]:
        """Claim due deliveries for one attempt each."""
        return await self._writer.write(lambda c: _delivery_ops.claim_due(
            c, node, lease, limit, partners, self.now(), max_bytes))

    async def release_leases(self, node: str) -> int:
        """Expire this node's leases (at start-up)."""
        return await self._writer.write(lambda c: _delivery_ops.release_leases(c, node))

    async def record_outcomes(self, outcomes: Sequence[Outcome], policy_for: PolicyFor,
                              receipt_timeout: Mapping[str, float]) -> None:
        """Record the outcome of send attempts."""
        await self._writer.write(
            lambda c: _delivery_ops.record_outcomes(c, outcomes, policy_for, receipt_timeout,
                                                    self.now()))

    async def record_receipts(self, receipts: Sequence[Receipt], policy_for: PolicyFor) -> list[bool]:
        """Record receipts; ``True`` where one matched an attempt."""
        return await self._writer.write(
            lambda c: _receipt_ops.record_receipts(c, receipts, policy_for, self.now()))

    async def flag_overdue(self) -> list[tuple[int, int]]:
        """Flag deliveries whose receipt is overdue."""
        return await self._writer.write(lambda c: _receipt_ops.flag_overdue(c, self.now()))

    async def next_due(self, partners: Sequence[str]) -> float | None:
        """When the next waiting delivery to one of ``partners`` is due."""
        return await self._writer.read(lambda c: _queries.next_due(c, partners))

    async def note(self, event: str, detail: Mapping[str, Any]) -> None:
        """Journal something that happened to no message in particular (the disk nearly full)."""
        await self._writer.write(lambda c: (None, [journal.Entry(event, detail=detail)]))

    async def pause_partner(self, node: str, partner: str, error: str) -> float:
        """Pause ``partner`` on ``node`` (a fault on its machine), journaled; since when (store
        time) (:func:`~gateway.store._delivery_ops.pause_partner`)."""
        return await self._writer.write(
            lambda c: _delivery_ops.pause_partner(c, node, partner, error, self.now()))

    async def paused_partners(self) -> dict[tuple[str, str], tuple[float, str]]:
        """The partners paused now: (since, error) of each pause, by (node, partner)."""
        return await self._writer.read(_queries.paused_partners)

    async def resume_partner(self, node: str, partner: str, since: float, error: str) -> int:
        """End ``partner``'s pause on ``node``, journaled; its open deliveries' ``max_age`` no
        longer counts the pause; how many (:func:`~gateway.store._delivery_ops.resume_partner`)."""
        return await self._writer.write(
            lambda c: _delivery_ops.resume_partner(c, node, partner, since, error, self.now()))

    async def prune(self, before: float, limit: int) -> int:
        """Delete the bodies of up to ``limit`` settled messages unchanged since ``before``
        (store time); how many (:mod:`gateway.store._retention_ops`)."""
        return await self._writer.write(
            lambda c: _retention_ops.prune(c, before, limit, self.now()))

    async def prune_persons(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` persons who left the register before ``before`` (store time)
        and whose messages are pruned; how many (:mod:`gateway.store._retention_ops`)."""
        return await self._writer.write(
            lambda c: _retention_ops.prune_persons(c, before, limit))

    async def prune_receipts(self, before: float, limit: int) -> int:
        """Delete the bytes of up to ``limit`` receipts that matched no delivery, recorded
        before ``before`` (store time); how many (:mod:`gateway.store._retention_ops`)."""
        return await self._writer.write(
            lambda c: _retention_ops.prune_receipts(c, before, limit))

    async def replay_delivery(self, delivery: int) -> int:
        """Replace a dead delivery by a fresh one; return its id."""
        return await self._writer.write(
            lambda c: _delivery_ops.replay_delivery(c, delivery, self.now()))


_REMEDY = ("Restore the database (or remove the anchor file to start with this database"
           " anyway); `ech-gateway journal verify` tells more")
