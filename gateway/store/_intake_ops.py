"""Write operations of the intake side: storing inputs and what was decided about them."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.contracts import Normalised, RawInput
from gateway.errors import KeyReuseRejected
from gateway.store._answer_ops import apply_answers
from gateway.store._inbound_ops import link_outbound, record_inbound
from gateway.store._person_ops import link_subjects, record_persons, residence
from gateway.store._sql import expect_changed, insert_ids, select_in
from gateway.store.journal import Entry
from gateway.store.records import Pending, Processed
from gateway.store.states import DeliveryState, MessageState

log = logging.getLogger(__name__)


def add_raw(conn: sqlite3.Connection, raws: Sequence[RawInput], state: MessageState,
            reason: str | None, now: float) -> tuple[list[tuple[int, bool]], list[Entry]]:
    """Insert inputs exactly as received; return (id, is_new) for each.

    An input whose bytes were already received from the same source (a
    source that stopped between storing and removing a file offers it again)
    is stored as ``duplicate`` of the first (``duplicate_of``) and goes no
    further; a problem it came with (``reason``) is kept in its reason. A
    quarantined input is nobody's original: its corrected resend is taken.
    Which input is the original is decided by the ``input_originals`` key,
    so two writers storing the same bytes at once cannot both store one.

    An input with an idempotency key (``meta["idempotency_key"]``) that its
    source stored an input with before is not stored again: its (id, is_new)
    is the first input's id and ``False``.

    :raises KeyReuseRejected: that key came with other bytes before (nothing is stored).
    """
    digests = [hashlib.sha256(raw.data).hexdigest() for raw in raws]
    earlier, same, claimed = _claim_keys(conn, raws, digests)
    fresh = [i for i in range(len(raws)) if i not in earlier and i not in same]
    rows, entries = _store_inputs(conn, [raws[i] for i in fresh], [digests[i] for i in fresh],
                                  state, reason, now)
    stored = dict(zip(fresh, rows, strict=True))
    conn.executemany("UPDATE idempotency_keys SET message = ? WHERE source = ? AND key = ?",
                     [(stored[i][0], *key) for key, i in claimed.items()])
    out = [stored.get(i) or (earlier[i] if i in earlier else stored[same[i]][0], False)
           for i in range(len(raws))]
    return out, entries


#: The :attr:`RawInput.meta` key of an input's idempotency key (an HTTP ``Idempotency-Key``).
IDEMPOTENCY_KEY = "idempotency_key"
#: The longest eCH-0223 messageId (eCH-0058 ``messageIdType``): a longer one read from a
#: quarantined input is no messageId, and is not kept.
MESSAGE_ID_MAX = 36


def _claim_keys(conn: sqlite3.Connection, raws: Sequence[RawInput], digests: Sequence[str]
                ) -> tuple[dict[int, int], dict[int, int], dict[tuple[str, str], int]]:
    """Claim the idempotency key of each input that has one.

    :return: the inputs stored before (index -> message), the repeats within
        ``raws`` (index -> index of the first), the keys claimed now (-> index).
    :raises KeyReuseRejected: a key came with other bytes.
    """
    earlier: dict[int, int] = {}
    same: dict[int, int] = {}
    claimed: dict[tuple[str, str], int] = {}
    for i, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        if IDEMPOTENCY_KEY not in raw.meta:
            continue
        key = (raw.source, str(raw.meta[IDEMPOTENCY_KEY]))
        if key in claimed:
            if digests[claimed[key]] != digest:
                raise KeyReuseRejected(*key, None)
            same[i] = claimed[key]
        elif conn.execute("INSERT INTO idempotency_keys (source, key, digest) VALUES (?, ?, ?)"
                          " ON CONFLICT DO NOTHING", (*key, digest)).rowcount == 1:
            claimed[key] = i
        else:
            first, first_digest = conn.execute(
                "SELECT message, digest FROM idempotency_keys WHERE source = ? AND key = ?",
                key).fetchone()
            if first_digest != digest:
                raise KeyReuseRejected(*key, first)
            earlier[i] = first
    return earlier, same, claimed


def _store_inputs(conn: sqlite3.Connection, raws: Sequence[RawInput], digests: Sequence[str],
                  state: MessageState, reason: str | None, now: float
                  ) -> tuple[list[tuple[int, bool]], list[Entry]]:
    """Insert inputs (see :func:`add_raw`, which has claimed their idempotency keys)."""
    if not raws:
        return [], []
    ids = insert_ids(conn, "messages", _MESSAGE_COLUMNS, [
        (raw.source, raw.ref, orjson.dumps(dict(raw.meta)).decode(), digest, now, state, reason, now)
        for raw, digest in zip(raws, digests, strict=True)])
    keys = [(raw.source, digest) for raw, digest in zip(raws, digests, strict=True)]
    claimed = 0
    if state is not MessageState.QUARANTINED:  # the first of each key (in this batch too) wins
        claimed = conn.executemany(
            "INSERT INTO input_originals (source, digest, message) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING", [(*key, mid) for key, mid in zip(keys, ids, strict=True)]
        ).rowcount
    # all claimed (the usual case): each is its own original; else look the originals up
    originals = {} if claimed == len(ids) else _originals_of(conn, keys)
    out: list[tuple[int, bool]] = []
    entries: list[Entry] = []
    for raw, key, mid in zip(raws, keys, ids, strict=True):
        entries.append(Entry("message.received", mid, None,
                             {"source": raw.source, "ref": raw.ref, "bytes": len(raw.data)}))
        first = originals.get(key, mid)
        out.append((mid, first == mid))
        if first == mid:
            if state is not MessageState.RECEIVED:
                entries.append(Entry(f"message.{state}", mid, None,
                                     {"reason": reason, "source": raw.source}))
            continue
        why = f"same input as message {first}" + (f"; also: {reason}" if reason else "")
        expect_changed(conn.execute(
            "UPDATE messages SET state = ?, reason = ?, duplicate_of = ? WHERE id = ? AND state = ?",
            (MessageState.DUPLICATE, why, first, mid, state)), 1, f"new message {mid} ({state})")
        entries.append(Entry("message.duplicate", mid, None, {
            "duplicate_of": first, "reason": why, "source": raw.source,
            **({"problem": reason} if reason else {})}))
    rows = list(zip(ids, (raw.data for raw in raws), strict=True))
    conn.executemany("INSERT INTO payloads (message, raw) VALUES (?, ?)",
                     [(mid, data) for mid, data in rows if len(data) <= WRITTEN_IN_PLACE])
    for mid, data in rows:
        if len(data) > WRITTEN_IN_PLACE:
            conn.execute("INSERT INTO payloads (message, raw) VALUES (?, zeroblob(?))",
                         (mid, len(data)))
            with conn.blobopen("payloads", "raw", mid) as blob:
                blob.write(data)
    return out, entries


#: Inputs larger than this are written into their row in place (``zeroblob``, then
#: ``blobopen``): bound as a parameter, SQLite copies the input and the writer's cached
#: statement keeps that copy until its next use, a base delivery of 274 MB held twice
#: while it is processed (and longer, if no input comes after it).
WRITTEN_IN_PLACE = 1 << 20


_MESSAGE_COLUMNS = ("source", "ref", "meta", "digest", "received_at", "state", "reason",
                    "updated_at")


def _originals_of(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], int]:
    """(source, digest) -> the message holding those bytes, for the ``keys`` one holds."""
    by_source: dict[str, list[str]] = {}
    for source, digest in keys:
        by_source.setdefault(source, []).append(digest)
    return {
        (source, digest): mid
        for source, digests in by_source.items()
        for digest, mid in select_in(
            conn, "SELECT digest, message FROM input_originals WHERE source = ? AND digest IN ({})",
            digests, head=(source,))
    }


def quarantine_raw(conn: sqlite3.Connection, raw: RawInput, reason: str,
                   message_id: str | None, sender_id: str | None, now: float
                   ) -> tuple[int, list[Entry]]:
    """Store ``raw`` as quarantined (see :func:`add_raw`); its id.

    It keeps ``message_id`` and ``sender_id``, read from its eCH-0223 header, as a
    message quarantined by processing does (:func:`record_processing`): the
    messageId where :func:`_kept_message_id` allows. One stored as a duplicate, or
    the first input of its idempotency key, is left as it is.
    """
    kept: str | None = None
    said: str | None = reason
    if message_id:
        kept, said = _kept_message_id(conn, None, message_id, sender_id, reason)
    [(mid, new)], entries = add_raw(conn, [raw], MessageState.QUARANTINED, said, now)
    if new and (kept or sender_id):
        expect_changed(conn.execute(
            "UPDATE messages SET message_id = ?, sender_id = ? WHERE id = ? AND state = ?",
            (kept, sender_id, mid, MessageState.QUARANTINED)), 1, f"new message {mid} (quarantined)")
    return mid, entries


def original_of(conn: sqlite3.Connection, source: str, data: bytes) -> int | None:
    """The message an input of ``data`` from ``source`` would be stored as a duplicate of
    (see :func:`add_raw`); None when it would be new."""
    key = (source, hashlib.sha256(data).hexdigest())
    return _originals_of(conn, [key]).get(key)


def record_processing(conn: sqlite3.Connection, results: Sequence[Processed], now: float
                      ) -> tuple[list[int], list[Entry]]:
    """Store each message's new state and, when routed, its deliveries (transactional outbox).

    A routed message whose eCH-0223 messageId was routed before from the same
    sender (earlier, or earlier in this batch: the ``routed_message_ids`` key
    decides) becomes a ``duplicate`` of that message. A quarantined message keeps the
    messageId it was read with where :func:`_kept_message_id` allows. A
    partner's answer (an ``eventReport``) is applied to the deliveries it
    answers in this same transaction (:func:`_apply_answers`), so no crash
    can store an answer and lose what it says. Returns the new delivery ids.
    """
    updates, canonical, attachments, deliveries = [], [], [], []
    subjects: list[tuple[int, Sequence[str]]] = []
    entries: list[Entry] = []
    results = _still_received(conn, results, now)
    links: set[tuple[int, int]] = set()
    for p in results:
        n = p.normalised
        duplicate_of = None
        message_id, sender_id = (n.message_id, n.sender_id) if n else (p.message_id, p.sender_id)
        if p.state is MessageState.ROUTED and n is not None and n.message_id:
            earlier = _claim_message_id(conn, n.message_id, n.sender_id, p.message)
            if earlier != p.message:
                p.state, duplicate_of = MessageState.DUPLICATE, earlier
                sender = f" from sender {n.sender_id}" if n.sender_id else ""
                p.reason = f"messageId {n.message_id}{sender} was already routed as message {earlier}"
        elif p.state is MessageState.QUARANTINED and message_id:
            message_id, p.reason = _kept_message_id(conn, p.message, message_id, sender_id,
                                                    p.reason)
        updates.append((
            p.state, p.reason,
            n.kind if n else None, message_id,
            n.reference_message_id if n else None, n.version if n else None,
            sender_id, duplicate_of, now, p.message,
        ))
        # an input that became no message (a baseDelivery, an event without counterpart)
        # has no canonical form: writing b"" rewrote its row, the input with it (a base
        # delivery of 274 MB read into memory and written to the WAL again)
        if n is not None and not p.raw_is_canonical and n.xml:
            canonical.append((n.xml, p.message))
        if n is not None:
            attachments += [(p.message, a.name, a.data) for a in n.attachments]
            received = {"received_version": n.received_version} if n.received_version else {}
            entries.append(Entry("message.normalised", p.message, None,
                                 {"kind": n.kind, "message_id": n.message_id, **received,
                                  **p.detail}))
        if p.decision is not None:
            d = p.decision
            entries.append(Entry("message.decided", p.message, None, {
                "rule": d.rule, "reason": d.reason, "partners": list(d.partners),
                **{k: v for k, v in (("business_key", d.business_key),
                                     ("deadline", d.deadline.isoformat() if d.deadline else None),
                                     ("business_comment", d.business_comment),
                                     ("documents", list(d.documents))) if v}}))
        if p.persons:  # a partner's message is not the register's word on who lives here
            departed = (residence(n.facts.get("person_event"))
                        if n is not None and p.inbound is None else None)
            entries += record_persons(conn, p.message, p.persons, now, links, departed)
        if n is not None and n.subject:
            subjects.append((p.message, n.subject))
        if p.state is MessageState.SPLIT and n is not None:
            entries += _store_parts(conn, p.message, n, now)
        if p.state is MessageState.ROUTED:
            deliveries += [(p.message, route, p.payloads.get(route.partner)) for route in p.routes]
        else:
            extra: dict[str, Any] = ({"duplicate_of": duplicate_of}
                                     if duplicate_of is not None else {})
            if p.inbound is not None and p.state is MessageState.NEEDS_REVIEW:
                extra = {"partner": p.inbound.partner, "candidates": len(p.inbound.candidates)}
            entries.append(Entry(f"message.{p.state}", p.message, None,
                                 {"reason": p.reason, **extra, **({} if n else dict(p.detail))}))
    link_subjects(conn, subjects, links)
    conn.executemany(
        "UPDATE messages SET state = ?, reason = ?, kind = ?, message_id = ?,"
        " reference_message_id = ?, version = ?, sender_id = ?, duplicate_of = ?, updated_at = ?"
        " WHERE id = ?",
        updates,
    )
    if canonical:
        conn.executemany("UPDATE payloads SET canonical = ? WHERE message = ?", canonical)
    if attachments:
        conn.executemany(
            "INSERT OR REPLACE INTO attachments (message, name, data) VALUES (?, ?, ?)", attachments)
    created = _insert_deliveries(conn, [(mid, r.partner, payload)
                                        for mid, r, payload in deliveries], now)
    entries += [Entry("delivery.queued", mid, did, {"partner": r.partner, "reason": r.reason})
                for did, (mid, r, _payload) in zip(created, deliveries, strict=True)]
    entries += record_inbound(conn, results, now)
    entries += link_outbound(conn, results, [(mid, r.partner) for mid, r, _p in deliveries], now)
    entries += apply_answers(conn, results, now)
    return created, entries


def _still_received(conn: sqlite3.Connection, results: Sequence[Processed],
                    now: float) -> list[Processed]:
    """The results whose message still waits for its outcome (state ``received``), taken
    for recording.

    Another writer (a second node, an operator's replay) may have recorded one
    meanwhile: then this outcome is dropped, never written over theirs.
    """
    taken = {mid for (mid,) in select_in(
        conn, "UPDATE messages SET updated_at = ? WHERE state = ? AND id IN ({}) RETURNING id",
        [p.message for p in results], head=(now, MessageState.RECEIVED))}
    for p in results:
        if p.message not in taken:
            log.warning("message %d was recorded by another writer meanwhile; this outcome is"
                        " dropped", p.message)
    return [p for p in results if p.message in taken]


def _claim_message_id(conn: sqlite3.Connection, message_id: str, sender_id: str | None,
                      message: int) -> int:
    """The message routed with ``message_id`` from ``sender_id``: ``message``, unless one was
    routed with that pair before (an unknown sender is ``''``, see migration 0016)."""
    key = (message_id, sender_id or "")
    if conn.execute("INSERT INTO routed_message_ids (message_id, sender_id, message)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (*key, message)).rowcount == 1:
        return message
    return int(conn.execute("SELECT message FROM routed_message_ids WHERE message_id = ?"
                            " AND sender_id = ?", key).fetchone()[0])


def _kept_message_id(conn: sqlite3.Connection, message: int | None, message_id: str,
                     sender_id: str | None, reason: str | None) -> tuple[str | None, str | None]:
    """The messageId quarantined ``message`` (``None``: one not stored yet) keeps, and its
    ``reason``: ``message_id``, unless it is none (longer than eCH-0058's 36 characters) or
    another message was routed with it from ``sender_id`` (the pair is unique among routed
    messages, ``routed_message_ids``): then none, and the reason says so. Not claimed: the
    message routed once it is corrected claims it.
    """
    if len(message_id) > MESSAGE_ID_MAX:
        return None, reason
    routed = conn.execute("SELECT message FROM routed_message_ids WHERE message_id = ?"
                          " AND sender_id = ?", (message_id, sender_id or "")).fetchone()
    if routed is None or routed[0] == message:
        return message_id, reason
    sender = f" from sender {sender_id}" if sender_id else ""
    return None, (f"{reason}; its messageId {message_id}{sender} is that of message {routed[0]},"
                  " routed before: not kept on this one")


def _insert_deliveries(conn: sqlite3.Connection, rows: Sequence[tuple[int, str, bytes | None]],
                       now: float) -> list[int]:
    """Insert queued deliveries (each with its own payload, or NULL for the message's); their ids."""
    return insert_ids(
        conn, "deliveries",
        ("message", "partner", "state", "created_at", "next_attempt_at", "updated_at", "payload"),
        [(mid, partner, DeliveryState.QUEUED, now, now, now, payload)
         for mid, partner, payload in rows])


def _store_parts(conn: sqlite3.Connection, parent: int, n: Normalised,
                 now: float) -> list[Entry]:
    """Store an export's parts as inputs of their own (rejected ones quarantined with their reason)."""
    rows, entries = add_raw(conn, n.parts, MessageState.RECEIVED, None, now)
    for raw, reason in n.rejected_parts:
        more, more_entries = add_raw(conn, [raw], MessageState.QUARANTINED, reason, now)
        rows += more
        entries += more_entries
    expect_changed(conn.executemany("UPDATE messages SET parent = ? WHERE id = ? AND parent IS NULL",
                                    [(parent, mid) for mid, _new in rows]),
                   len(rows), f"parts of message {parent} (in no other export)")
    return entries


def parts_of(conn: sqlite3.Connection, parents: Sequence[int]) -> list[Pending]:
    """The parts of ``parents`` that wait to be processed."""
    return [Pending(mid, source, ref, bytes(raw), orjson.loads(meta))
            for mid, source, ref, meta, raw in select_in(
                conn, "SELECT m.id, m.source, m.ref, m.meta, p.raw FROM messages m"
                " JOIN payloads p ON p.message = m.id WHERE m.parent IN ({}) AND m.state = ?"
                " ORDER BY m.id", parents, tail=(MessageState.RECEIVED,))]
