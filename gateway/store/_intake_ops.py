"""Write operations of the intake side: storing inputs and what was decided about them."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

import orjson

from gateway.contracts import RawInput
from gateway.errors import StoreError
from gateway.store import journal
from gateway.store._sql import next_rowid, select_in
from gateway.store.journal import Entry
from gateway.store.records import Processed
from gateway.store.states import DeliveryState, MessageState


def add_raw(conn: sqlite3.Connection, raws: Sequence[RawInput], state: MessageState,
            reason: str | None) -> list[tuple[int, bool]]:
    """Insert inputs exactly as received; return (id, is_new) for each.

    An input whose bytes were already received from the same source (a
    source that stopped between storing and removing a file offers it again)
    is stored as ``duplicate`` of the first and goes no further.
    """
    now = time.time()
    digests = [hashlib.sha256(raw.data).hexdigest() for raw in raws]
    first_of = _first_ids(conn, raws, digests)
    base = next_rowid(conn, "messages")
    rows, out, entries = [], [], []
    for offset, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        mid = base + offset
        first = first_of.setdefault((raw.source, digest), mid)
        row_state, row_reason = state, reason
        if first != mid:
            row_state, row_reason = MessageState.DUPLICATE, f"same input as message {first}"
        rows.append((mid, raw.source, raw.ref, orjson.dumps(dict(raw.meta)).decode(), digest, now,
                     row_state, row_reason, now))
        out.append((mid, first == mid))
        entries.append(Entry("message.received", mid, None,
                             {"source": raw.source, "ref": raw.ref, "bytes": len(raw.data)}))
        if row_state is not MessageState.RECEIVED:
            entries.append(Entry(f"message.{row_state}", mid, None, {"reason": row_reason}))
    conn.executemany(
        "INSERT INTO messages (id, source, ref, meta, digest, received_at, state, reason,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany("INSERT INTO payloads (message, raw) VALUES (?, ?)",
                     [(mid, raw.data) for (mid, _new), raw in zip(out, raws, strict=True)])
    journal.append(conn, entries, now)
    return out


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
            " GROUP BY digest", wanted, head=(source,))
    }


def record_processing(conn: sqlite3.Connection, results: Sequence[Processed]) -> list[int]:
    """Store each message's new state and, when routed, its deliveries (transactional outbox).

    A routed message whose eCH-0223 messageId was routed before (earlier, or
    earlier in this batch) becomes a ``duplicate``. Returns the new delivery ids.
    """
    now = time.time()
    routed_before = _routed_ids(conn, results)
    updates, canonical, attachments, deliveries = [], [], [], []
    entries: list[Entry] = []
    for p in results:
        n = p.normalised
        if p.state is MessageState.ROUTED and n is not None and n.message_id:
            earlier = routed_before.setdefault(n.message_id, p.message)
            if earlier != p.message:
                p.state = MessageState.DUPLICATE
                p.reason = f"messageId {n.message_id} was already routed as message {earlier}"
        updates.append((
            p.state, p.reason,
            n.kind if n else None, n.message_id if n else None,
            n.reference_message_id if n else None, n.version if n else None,
            now, p.message,
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
            entries.append(Entry(f"message.{p.state}", p.message, None,
                                 {"reason": p.reason, **({} if n else dict(p.detail))}))
    conn.executemany(
        "UPDATE messages SET state = ?, reason = ?, kind = ?, message_id = ?,"
        " reference_message_id = ?, version = ?, updated_at = ? WHERE id = ?",
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
    journal.append(conn, entries, now)
    return created


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


def reject_by_answer(conn: sqlite3.Connection, message: int, referenced: str,
                     reason: str) -> list[int]:
    """Mark deliveries of the message with eCH ``messageId`` ``referenced`` as rejected."""
    now = time.time()
    rows = conn.execute(
        "SELECT d.id, d.message FROM deliveries d JOIN messages m ON m.id = d.message"
        " WHERE m.message_id = ? AND d.state IN (?, ?, ?)",
        (referenced, DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED),
    ).fetchall()
    for did, _mid in rows:
        conn.execute("UPDATE deliveries SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                     (DeliveryState.REJECTED, reason, now, did))
    journal.append(conn, [Entry("delivery.rejected", mid, did, {"reason": reason, "answer": message})
                          for did, mid in rows], now)
    return [did for did, _ in rows]


def requeue_message(conn: sqlite3.Connection, message: int) -> None:
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
    journal.append(conn, [Entry("message.replayed", message, None, {})], now)
