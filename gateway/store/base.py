"""The store contract: what the core asks of any backend.

:class:`~gateway.store.sqlite.SQLiteStore` implements it for the embedded
default. A PostgreSQL backend implements the same methods: claims with
``FOR UPDATE SKIP LOCKED`` and leases that expire, so several nodes can
share one database. Every write returns only after it is committed.

Several writers may share one database. Ids come from the insert;
uniqueness (one original per input, one routed message per messageId) is
kept by the database's keys, not by looking first; every state change names
the state it expects and raises :class:`~gateway.errors.StoreConflict`
when the row is no longer in it. ``tests/test_store_contract.py`` holds
every backend to this.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from gateway.contracts import RawInput
from gateway.outbound import Receipt
from gateway.person_state import PersonState, StoredPerson
from gateway.retry import RetryPolicy
from gateway.store.journal import Entry
from gateway.store.records import Claim, Outcome, Pending, Processed

PolicyFor = Callable[[str], RetryPolicy]
#: A store's one source of the time (UTC seconds since the epoch) it records and
#: compares: receipt times, leases, due and overdue times, journal entries. The
#: embedded store reads the machine's clock; a shared database uses its own, so
#: that nodes whose clocks drift agree on when a lease expires.
Clock = Callable[[], float]


class Store(Protocol):
    """Messages, deliveries, attempts, receipts and the journal."""

    def now(self) -> float:
        """The store's clock (:data:`Clock`): the time every write of it records."""
        ...

    def start(self) -> None:
        """Connect, apply migrations, get ready to write."""

    def hold_node(self, node: str) -> None:
        """Hold ``node`` (``[gateway] node_id``) on this database for this process, until
        :meth:`close` or the process's end, however it ends: the daemon's first step. A second
        process of the same node would expire the first's leases and send what it sends.

        :raises NodeRunning: another process holds the node.
        """

    def identity(self) -> str:
        """The database's identity: random, made once with the database (after :meth:`start`)."""
        ...

    def close(self) -> None:
        """Commit what is queued and disconnect."""

    def on_commit(self, listener: Callable[[Sequence[Entry]], None]) -> None:
        """Tell ``listener``, after each commit, the journal entries it made durable."""

    def checkpoint(self) -> None:
        """Housekeeping the backend needs now and then (blocking; run in a thread)."""

    async def add_raw(self, raws: Sequence[RawInput]) -> list[tuple[int, bool]]:
        """Store inputs as received; (id, is_new) each, ``False`` for a duplicate."""
        ...

    async def original_of(self, source: str, data: bytes) -> int | None:
        """The message an input of ``data`` from ``source`` would now be stored as a
        duplicate of by :meth:`add_raw` (same source, same bytes; a quarantined input is
        nobody's original); None when it would be new. Changes nothing."""
        ...

    async def quarantine_raw(self, raw: RawInput, reason: str, *, message_id: str | None = None,
                             sender_id: str | None = None) -> int:
        """Store an input directly as quarantined.

        It keeps ``message_id`` and ``sender_id`` (read from its eCH-0223 header) as a
        message quarantined by processing does (:meth:`record_processing`): the
        messageId unless it is longer than eCH-0058's 36 characters or another
        message was routed with it from ``sender_id`` (then ``reason`` says so).
        A duplicate (see :meth:`add_raw`) keeps neither.
        """
        ...

    async def record_processing(self, results: Sequence[Processed]) -> list[int]:
        """Store what processing decided and the deliveries it creates.

        In the same transaction: each delivery with its own payload, the
        person-state updates merged into the stored states, an export's parts
        stored as inputs of their own, the decision journaled with its rule, and
        a partner's ``eventReport`` settling the deliveries to that partner of
        the message it answers.
        """
        ...

    async def parts_of(self, parents: Sequence[int]) -> list[Pending]:
        """The parts (export rows) of split messages ``parents`` that wait to be processed."""
        ...

    async def load_persons(self, keys: Sequence[str]) -> dict[str, PersonState]:
        """The last known states of the persons ``keys`` name, by key (keys not found are absent)."""
        ...

    async def stored_persons(self, keys: Sequence[str]) -> dict[str, StoredPerson]:
        """:meth:`load_persons` as stored, unparsed: what processing hands to the workers.

        Reads what is committed now; writes waiting for their commit are not waited for
        (the pipeline finishes a batch while the one before is recorded).
        """
        ...

    async def persons_born(self, birth: str) -> list[tuple[int, PersonState]]:
        """The persons born on ``birth`` (ISO date, year-month or year), with their ids."""
        ...

    async def assignments(self, messages: Sequence[int]) -> dict[int, list[str]]:
        """The person keys operators assigned to ``messages`` waiting for review."""
        ...

    async def attempted_message_id(self, partner: str, attempt: str) -> str | None:
        """The eCH-0223 messageId of the message whose attempt with ref ``attempt`` went to
        ``partner`` (what a partner's envelope says its message answers); ``None``: none."""
        ...

    async def answered_persons(self, partner: str, message_id: str,
                               senders: Collection[str] = ()) -> list[tuple[int, PersonState]]:
        """The persons (with their ids) of the message ``message_id`` delivered to
        ``partner``: who the partner's answer is about, if it is about whom we wrote of.
        ``senders`` as for :meth:`original_source`; none when that does not tell which."""
        ...

    async def original_source(self, partner: str, message_id: str,
                              senders: Collection[str] = ()) -> str | None:
        """The source of the message ``message_id`` delivered to ``partner`` (what it answers).

        Where several messages from different senders have that messageId, the one from
        ``senders`` (the answer's ``senderId`` and ``recipientId``s); ``None`` when they
        do not tell which.
        """
        ...

    async def assign(self, message: int, keys: Sequence[str], who: str) -> None:
        """Record the person an operator assigned to ``message`` (``needs_review``), journaled,
        and put it back to ``received`` for processing."""

    async def pending(self, limit: int, *, max_bytes: int | None = None) -> list[Pending]:
        """Inputs stored but not processed yet, oldest first: at most ``limit``, and beyond
        the first at most ``max_bytes`` of input in all."""
        ...

    async def count_pending(self) -> int:
        """How many inputs are stored but not processed yet (what :meth:`pending` would give
        without limits)."""
        ...

    async def inputs(self, messages: Sequence[int]) -> list[Pending]:
        """Of the inputs ``messages``, those not processed yet (state ``received``), by id."""
        ...

    async def load_input(self, message: int) -> Pending:
        """One stored input, as received."""
        ...

    async def prune(self, before: float, limit: int) -> int:
        """Delete the bodies of up to ``limit`` settled messages unchanged since ``before``
        (store time), oldest first, keeping their records and the journal; how many.

        Settled: routed with every delivery final (delivered, acknowledged,
        rejected, replayed), not relevant, a duplicate, an export whose rows are
        all pruned, or quarantined and handled. Journals ``store.pruned``.
        """
        ...

    async def prune_persons(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` persons who left the register (moved out, died, deleted
        in it) before ``before`` (store time) and none of whose messages still has its body:
        state, keys, date of birth, message links; their cases stay, without them. How
        many. Journals ``store.persons_pruned``."""
        ...

    async def prune_receipts(self, before: float, limit: int) -> int:
        """Delete the bytes of up to ``limit`` receipts that matched no delivery
        (``receipt.unmatched``) recorded before ``before`` (store time), the oldest first,
        keeping the receipts' records; how many. Journals ``store.receipts_pruned``."""
        ...

    async def requeue_message(self, message: int) -> None:
        """Send a quarantined, not-relevant or needs-review message through processing again."""
        ...

    async def mark_handled(self, message: int, note: str) -> list[int]:
        """Record, journaled, that an operator dealt with quarantined ``message``, or else
        with the deliveries of ``message`` its partners rejected; the ids of those."""
        ...

    async def add_correction(self, of: int, raw: RawInput) -> int:
        """Store ``raw`` as a new input correcting quarantined ``of`` (now handled); its id."""
        ...

    async def claim_due(self, node: str, lease: float, limit: int, partners: Sequence[str],
                        *, max_bytes: int | None = None) -> list[Claim]:
        """Claim due deliveries (and expired leases) for one attempt each, the first due
        first: at most ``limit``, and beyond the first at most ``max_bytes`` of payloads
        and attachments in all."""
        ...

    async def release_leases(self, node: str) -> int:
        """Expire this node's leases (at its start)."""
        ...

    async def record_outcomes(self, outcomes: Sequence[Outcome], policy_for: PolicyFor,
                              receipt_timeout: Mapping[str, float]) -> None:
        """Record what send attempts achieved, and whom each was addressed to
        (:attr:`Outcome.recipient <gateway.store.records.Outcome.recipient>`, kept once known)."""
        ...

    async def record_receipts(self, receipts: Sequence[Receipt],
                              policy_for: PolicyFor) -> list[bool]:
        """Record receipts; ``True`` where one matched an attempt.

        A receipt matches the attempt its ``attempt_ref`` names, unless both name
        a recipient and they differ: then it is kept, changes no delivery, and is
        journaled as ``receipt.unmatched`` with the reason and the attempt's ids.
        """
        ...

    async def flag_overdue(self) -> list[tuple[int, int]]:
        """Flag deliveries whose receipt is overdue; (message, delivery) pairs."""
        ...

    async def next_due(self, partners: Sequence[str]) -> float | None:
        """When the next waiting delivery to one of ``partners`` is due."""
        ...

    async def note(self, event: str, detail: Mapping[str, Any]) -> None:
        """Journal an event that concerns no message in particular."""
        ...

    async def pause_partner(self, node: str, partner: str, error: str) -> float:
        """Record that a fault on ``node``'s machine (``error``) paused ``partner`` there, and
        journal ``partner.paused`` (with ``node``), in one transaction; the time (store time)
        it is paused since.

        A partner already paused on ``node`` stays paused as it was: the time its pause
        began is returned, nothing is journaled again (several rounds meet one fault). Its
        pause on another node is another pause: a fault is one machine's.
        """
        ...

    async def paused_partners(self) -> dict[tuple[str, str], tuple[float, str]]:
        """The pauses now, by (node, partner), each with (since, error) as
        :meth:`pause_partner` recorded them: a daemon that starts keeps its node's paused."""
        ...

    async def resume_partner(self, node: str, partner: str, since: float, error: str) -> int:
        """End the pause of ``partner`` on ``node`` that began at ``since`` (store time) for
        ``error``, and journal ``partner.resumed`` (with ``node``), in one transaction. The
        time it lasted no longer counts toward the ``max_age`` of the partner's open
        deliveries (each first attempt moves later by the part of the pause after it); how
        many deliveries. They are all the partner's, whichever node claimed them: with
        several nodes, a pause on one node extends the ``max_age`` of the partner's
        deliveries by that pause, though the other nodes kept sending to it.

        :raises StoreConflict: ``partner`` is not paused on ``node`` since ``since``
            (another writer of that node resumed it first); nothing is changed.
        """
        ...

    async def replay_delivery(self, delivery: int) -> int:
        """Replace a dead delivery by a fresh queued one; its id."""
        ...
