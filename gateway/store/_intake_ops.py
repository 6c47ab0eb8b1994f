"""Write operations of the intake side: storing inputs and what was decided about them."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

import orjson

from gateway.contracts import RawInput
from gateway.errors import StoreError
from gateway.store._sql import next_rowid, select_in
from gateway.store.journal import Entry
from gateway.store.records import Processed
from gateway.store.states import DeliveryState, MessageState


def add_raw(conn: sqlite3.Connection, raws: Sequence[RawInput], state: MessageState,
            reason: str | None) -> tuple[list[tuple[int, bool]], list[Entry]]:
    """Insert inputs exactly as received; return (id, is_new) for each.

    An input whose bytes were already received from the same source (a
    source that stopped between storing and removing a file offers it again)
    is stored as ``duplicate`` of the first (``duplicate_of``) and goes no
    further; a problem it came with (``reason``) is kept in its reason. A
    quarantined input is nobody's original: its corrected resend is taken.
    """
    now = time.time()
    digests = [hashlib.sha256(raw.data).hexdigest() for raw in raws]
    first_of = _first_ids(conn, raws, digests)
    base = next_rowid(conn, "messages")
    rows, out, entries = [], [], []
    for offset, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        mid = base + offset
        first = first_of.get((raw.source, digest), mid)
        if first == mid and state is not MessageState.QUARANTINED:
            first_of[(raw.source, digest)] = mid  # the original of later copies in this batch
        row_state, row_reason, duplicate_of = state, reason, None
        entries.append(Entry("message.received", mid, None,
                             {"source": raw.source, "ref": raw.ref, "bytes": len(raw.data)}))
        if first != mid:
            row_state, duplicate_of = MessageState.DUPLICATE, first
            row_reason = f"same input as message {first}" + (f"; also: {reason}" if reason else "")
            entries.append(Entry("message.duplicate", mid, None, {
                "duplicate_of": first, "reason": row_reason, "source": raw.source,
                **({"problem": reason} if reason else {})}))
        elif row_state is not MessageState.RECEIVED:
            entries.append(Entry(f"message.{row_state}", mid, None,
                                 {"reason": row_reason, "source": raw.source}))
        rows.append((mid, raw.source, raw.ref, orjson.dumps(dict(raw.meta)).decode(), digest, now,
                     row_state, row_reason, duplicate_of, now))
        out.append((mid, first == mid))
    conn.executemany(
        "INSERT INTO messages (id, source, ref, meta, digest, received_at, state, reason,"
        " duplicate_of, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany("INSERT INTO payloads (message, raw) VALUES (?, ?)",
                     [(mid, raw.data) for (mid, _new), raw in zip(out, raws, strict=True)])
    return out, entries


def _first_ids(conn: sqlite3.Connection, raws: Sequence[RawInput],
               digests: Sequence[str]) -> dict[tuple[str, str], int]:
    """(source, digest) -> the message first stored with those bytes, for this batch."""
    by_source: dict[str, set[str]] = {}
    for raw, digest in zip(raws, digests, strict=True):
        by_source.setdefault(raw.source, set()).add(digest)
    return {
        (source, digest): mid
        for source, wanted in by_source.items()
        for digest, mid in select_in(
            conn, "SELECT digest, min(id) FROM messages WHERE source = ? AND digest IN ({})"
            " AND state != ? GROUP BY digest", wanted, head=(source,),
            tail=(MessageState.QUARANTINED,))
    }


def record_processing(conn: sqlite3.Connection, results: Sequence[Processed]
                      ) -> tuple[list[int], list[Entry]]:
    """Store each message's new state and, when routed, its deliveries (transactional outbox).

    A routed message whose eCH-0223 messageId was routed before (earlier, or
    earlier in this batch) becomes a ``duplicate`` of that message. A
    partner's answer (an ``eventReport``) is applied to the deliveries it
    answers in this same transaction (:func:`_apply_answers`), so no crash
    can store an answer and lose what it says. Returns the new delivery ids.
    """
    now = time.time()
    routed_before = _routed_ids(conn, results)
    updates, canonical, attachments, deliveries = [], [], [], []
    entries: list[Entry] = []
    for p in results:
        n = p.normalised
        duplicate_of = None
        if p.state is MessageState.ROUTED and n is not None and n.message_id:
            earlier = routed_before.setdefault(n.message_id, p.message)
            if earlier != p.message:
                p.state, duplicate_of = MessageState.DUPLICATE, earlier
                p.reason = f"messageId {n.message_id} was already routed as message {earlier}"
        updates.append((
            p.state, p.reason,
            n.kind if n else None, n.message_id if n else None,
            n.reference_message_id if n else None, n.version if n else None,
            duplicate_of, now, p.message,
        ))
        if n is not None and not p.raw_is_canonical:
            canonical.append((n.xml, p.message))
        if n is not None:
            attachments += [(p.message, a.name, a.data) for a in n.attachments]
            entries.append(Entry("message.normalised", p.message, None,
                                 {"kind": n.kind, "message_id": n.message_id, **p.detail}))
        if p.state is MessageState.ROUTED:
            deliveries += [(p.message, route) for route in p.routes]
        else:
            extra = {"duplicate_of": duplicate_of} if duplicate_of is not None else {}
            entries.append(Entry(f"message.{p.state}", p.message, None,
                                 {"reason": p.reason, **extra, **({} if n else dict(p.detail))}))
    conn.executemany(
        "UPDATE messages SET state = ?, reason = ?, kind = ?, message_id = ?,"
        " reference_message_id = ?, version = ?, duplicate_of = ?, updated_at = ? WHERE id = ?",
        updates,
    )
    if canonical:
        conn.executemany("UPDATE payloads SET canonical = ? WHERE message = ?", canonical)
    if attachments:
        conn.executemany(
            "INSERT OR REPLACE INTO attachments (message, name, data) VALUES (?, ?, ?)", attachments)
    created = _insert_deliveries(conn, [(mid, r.partner) for mid, r in deliveries], now)
    entries += [Entry("delivery.queued", mid, did, {"partner": r.partner, "reason": r.reason})
                for did, (mid, r) in zip(created, deliveries, strict=True)]
    entries += _apply_answers(conn, results, now)
    return created, entries


#: The eCH-0039 header action of a positive report (business acknowledgement, DOMAIN.md).
POSITIVE_REPORT = "9"
#: Delivery states an answer from the partner can settle.
_ANSWERABLE = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED)


def _apply_answers(conn: sqlite3.Connection, results: Sequence[Processed],
                   now: float) -> list[Entry]:
    """Apply each stored ``eventReport`` to the deliveries of the message it answers.

    Only deliveries to the partner the answer came from (its source) are
    matched. A positive report (action 9) acknowledges them; any other
    report is the partner's rejection. Quarantined and duplicate answers
    change nothing. Every answer is journaled, matched or not.
    """
    answers = [p for p in results
               if p.normalised is not None and p.normalised.kind == "eventReport"
               and p.normalised.reference_message_id
               and p.state not in (MessageState.QUARANTINED, MessageState.DUPLICATE)]
    if not answers:
        return []
    source_of = dict(select_in(conn, "SELECT id, source FROM messages WHERE id IN ({})",
                               [p.message for p in answers]))
    entries: list[Entry] = []
    for p in answers:
        n = p.normalised
        assert n is not None and n.reference_message_id is not None
        partner = source_of[p.message]
        positive = n.action == POSITIVE_REPORT
        rows = conn.execute(
            "SELECT d.id, d.message FROM deliveries d JOIN messages m ON m.id = d.message"
            " WHERE m.message_id = ? AND d.partner = ? AND d.state IN (?, ?, ?)",
            (n.reference_message_id, partner, *_ANSWERABLE),
        ).fetchall()
        state = DeliveryState.ACKNOWLEDGED if positive else DeliveryState.REJECTED
        reason = None if positive else f"negative eventReport from {partner} (message {p.message})"
        conn.executemany("UPDATE deliveries SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                         [(state, reason, now, did) for did, _mid in rows])
        entries.append(Entry("message.answer", p.message, None, {
            "answers": n.reference_message_id, "partner": partner, "positive": positive,
            "deliveries": [did for did, _mid in rows]}))
        entries += [Entry(f"delivery.{state}", mid, did,
                          {"partner": partner, "answer": p.message,
                           **({} if positive else {"reason": reason})})
                    for did, mid in rows]
    return entries


def _routed_ids(conn: sqlite3.Connection, results: Sequence[Processed]) -> dict[str, int]:
    """messageId -> the message already routed with it, for the messageIds in ``results``."""
    wanted = (p.normalised.message_id for p in results
              if p.normalised is not None and p.normalised.message_id)
    return dict(select_in(
        conn, "SELECT message_id, min(id) FROM messages WHERE message_id IN ({}) AND state = ?"
        " GROUP BY message_id", wanted, tail=(MessageState.ROUTED,)))


def _insert_deliveries(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]],
                       now: float) -> list[int]:
    """Insert queued deliveries; their ids, in order."""
    if not rows:
        return []
    base = next_rowid(conn, "deliveries")
    ids = list(range(base, base + len(rows)))
    conn.executemany(
        "INSERT INTO deliveries (id, message, partner, state, created_at, next_attempt_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(did, mid, partner, DeliveryState.QUEUED, now, now, now)
         for did, (mid, partner) in zip(ids, rows, strict=True)],
    )
    return ids


def requeue_message(conn: sqlite3.Connection, message: int) -> tuple[None, list[Entry]]:
    """Put a quarantined or not-relevant message back to ``received`` for reprocessing."""
    now = time.time()
    cur = conn.execute(
        "UPDATE messages SET state = ?, reason = NULL, updated_at = ? WHERE id = ? AND state IN (?, ?)",
        (MessageState.RECEIVED, now, message, MessageState.QUARANTINED, MessageState.NOT_RELEVANT),
    )
    if cur.rowcount != 1:
        raise StoreError(f"message {message} is not quarantined or not relevant")
    # handled was about the old outcome; a new quarantine needs an operator again
    conn.execute("DELETE FROM handled WHERE message = ?", (message,))
    return None, [Entry("message.replayed", message, None, {})]
