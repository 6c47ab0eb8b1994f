"""Retention: the bodies of settled messages are deleted; their records and the journal stay.

A message is *settled* when nothing more will happen to it unless an operator
acts: routed with every delivery final (delivered, acknowledged, replayed by
another, or rejected with the rejection handled by an operator), not relevant,
a duplicate, an export whose rows are all pruned, or a quarantined input an
operator handled. Pruning it deletes what
it carried (the input, its eCH-0223 text, attachments, each delivery's
payload, its receipts' bytes) and marks it ``pruned_at``; the messages and
deliveries rows, attempts, receipts and the journal stay. Quarantined inputs
nobody handled, rejections nobody handled (the case worker needs the message
the partner refused), messages waiting for review, dead deliveries and
anything still on its way are kept whatever their age.

Persons who left the register (moved out, died, deleted in the register:
``persons.departed_at``, :mod:`gateway.store._person_ops`) go too, once
departed for that long and with no message about them still whole: their
state, keys, date of birth and message links are deleted; their cases stay,
without the person. A resident's state stays, whatever its age: the events
that follow need it.

A receipt that matched no delivery (``receipt.unmatched``: our ref for another
recipient, or no attempt of ours at all, as a shared receipts folder brings
for other applications' messages) belongs to no message: its bytes are
deleted once it was recorded that long ago; its row (code, info) and the
journal stay.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from gateway.errors import StoreError
from gateway.store._sql import expect_changed
from gateway.store.journal import Entry
from gateway.store.states import DeliveryState, MessageState

#: Message states that are settled once their deliveries are.
_SETTLED = (MessageState.ROUTED, MessageState.NOT_RELEVANT, MessageState.DUPLICATE,
            MessageState.SPLIT)
#: Delivery states after which nothing happens unless an operator acts (a rejection
#: counts once handled: ``handled_rejections``).
_FINAL = (DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.REPLAYED)

_PRUNABLE = f"""
SELECT m.id FROM messages m INDEXED BY messages_whole
WHERE m.pruned_at IS NULL AND m.updated_at < ?
  AND (m.state IN ({','.join('?' * len(_SETTLED))})
       OR (m.state = ? AND EXISTS (SELECT 1 FROM handled h WHERE h.message = m.id)))
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message = m.id
                  AND ((d.state NOT IN ({','.join('?' * len(_FINAL))})
                        AND NOT (d.state = ? AND EXISTS (SELECT 1 FROM handled_rejections r
                                                         WHERE r.delivery = d.id)))
                       OR d.updated_at >= ?))
  AND NOT EXISTS (SELECT 1 FROM messages c WHERE c.parent = m.id AND c.pruned_at IS NULL)
  {{among}}
ORDER BY m.id LIMIT ?"""


def prunable(conn: sqlite3.Connection, before: float, limit: int,
             among: Sequence[int] | None = None) -> list[int]:
    """Up to ``limit`` settled messages, oldest first, that have not changed since ``before``
    (of ``among`` only, when given)."""
    extra = "" if among is None else f"AND m.id IN ({','.join('?' * len(among))})"
    return [mid for (mid,) in conn.execute(
        _PRUNABLE.format(among=extra),
        (before, *_SETTLED, MessageState.QUARANTINED, *_FINAL, DeliveryState.REJECTED, before,
         *(among or ()), limit))]


def prune(conn: sqlite3.Connection, before: float, limit: int,
          now: float) -> tuple[int, list[Entry]]:
    """Delete the bodies of up to ``limit`` settled messages unchanged since ``before``;
    how many, and the journal entry that says so (none when there were none)."""
    ids = prunable(conn, before, limit)
    if not ids:
        return 0, []
    _delete_bodies(conn, ids, now)
    # an export's file is settled once its last row is: it comes before them, so look again
    parents = [p for (p,) in conn.execute(
        f"SELECT DISTINCT parent FROM messages WHERE parent IS NOT NULL"
        f" AND id IN ({','.join('?' * len(ids))})", ids)]
    files = prunable(conn, before, len(parents), parents) if parents else []
    if files:
        _delete_bodies(conn, files, now)
        ids = sorted(ids + files)
    return len(ids), [Entry("store.pruned", None, None, {
        "messages": len(ids), "first": ids[0], "last": ids[-1], "unchanged_since": before})]


def departed(conn: sqlite3.Connection, before: float, limit: int = -1,
             pruning: Collection[int] = ()) -> list[int]:
    """Up to ``limit`` persons (-1: all) who left the register before ``before`` and have no
    message that still has its body, in the order they became known; ``pruning``: messages
    to count as pruned already (what a dry run of retention, pruning them first, finds)."""
    whole: dict[int, list[int]] = {}
    for pid, mid in conn.execute(
            "SELECT p.id, m.id FROM persons p INDEXED BY persons_departed"
            " LEFT JOIN person_messages pm ON pm.person = p.id"
            " LEFT JOIN messages m ON m.id = pm.message AND m.pruned_at IS NULL"
            " WHERE p.departed_at < ? ORDER BY p.id", (before,)):
        whole.setdefault(pid, []).extend([mid] if mid is not None else [])
    gone = [pid for pid, mids in whole.items() if all(mid in pruning for mid in mids)]
    return gone if limit < 0 else gone[:limit]


def prune_persons(conn: sqlite3.Connection, before: float, limit: int) -> tuple[int, list[Entry]]:
    """Delete up to ``limit`` persons who left the register before ``before`` (and whose
    messages are pruned); how many, and the journal entry that says so (none for none)."""
    ids = departed(conn, before, limit)
    if not ids:
        return 0, []
    marks = ",".join("?" * len(ids))
    conn.execute(f"UPDATE cases SET person = NULL WHERE person IN ({marks})", ids)
    for table in ("person_messages", "person_keys", "person_births"):
        conn.execute(f"DELETE FROM {table} WHERE person IN ({marks})", ids)
    expect_changed(conn.execute(f"DELETE FROM persons WHERE id IN ({marks})", ids), len(ids),
                   "departed persons to prune")
    return len(ids), [Entry("store.persons_pruned", None, None, {
        "persons": len(ids), "ids": ids, "departed_before": before})]


def unmatched_receipts(conn: sqlite3.Connection, before: float, limit: int = -1) -> list[int]:
    """Up to ``limit`` receipts (-1: all) that matched no delivery, recorded before ``before``
    and still holding their bytes, the oldest first."""
    return [rid for (rid,) in conn.execute(
        "SELECT id FROM receipts INDEXED BY receipts_unmatched WHERE delivery IS NULL"
        " AND raw IS NOT NULL AND recorded_at < ? ORDER BY recorded_at LIMIT ?", (before, limit))]


def prune_receipts(conn: sqlite3.Connection, before: float,
                   limit: int) -> tuple[int, list[Entry]]:
    """Delete the bytes of up to ``limit`` receipts that matched no delivery, recorded before
    ``before``; how many, and the journal entry that says so (none for none)."""
    ids = unmatched_receipts(conn, before, limit)
    if not ids:
        return 0, []
    marks = ",".join("?" * len(ids))
    expect_changed(conn.execute(f"UPDATE receipts SET raw = NULL WHERE raw IS NOT NULL"
                                f" AND id IN ({marks})", ids), len(ids),
                   "unmatched receipts to prune (with their bytes)")
    return len(ids), [Entry("store.receipts_pruned", None, None, {
        "receipts": len(ids), "recorded_before": before})]


def _delete_bodies(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> None:
    """Delete what messages ``ids`` carried; mark them pruned."""
    marks = ",".join("?" * len(ids))
    # deleted and written again empty: a row shrunk in place leaves its page as big as it was
    conn.execute(f"DELETE FROM payloads WHERE message IN ({marks})", ids)
    conn.executemany("INSERT INTO payloads (message, raw) VALUES (?, X'')", [(i,) for i in ids])
    conn.execute(f"UPDATE deliveries SET payload = NULL WHERE payload IS NOT NULL"
                 f" AND message IN ({marks})", ids)
    conn.execute(f"DELETE FROM attachments WHERE message IN ({marks})", ids)
    conn.execute(f"UPDATE receipts SET raw = NULL WHERE raw IS NOT NULL AND delivery IN"
                 f" (SELECT id FROM deliveries WHERE message IN ({marks}))", ids)
    expect_changed(conn.execute(
        f"UPDATE messages SET pruned_at = ? WHERE pruned_at IS NULL AND id IN ({marks})",
        (now, *ids)), len(ids), "messages to prune (whole)")


def refuse_pruned(conn: sqlite3.Connection, message: int, what: str) -> None:
    """Raise :class:`StoreError` if retention deleted the bodies of ``message``.

    :param what: what cannot be done without them, for the message.
    """
    row = conn.execute("SELECT pruned_at FROM messages WHERE id = ?", (message,)).fetchone()
    if row is not None and row[0] is not None:
        when = datetime.fromtimestamp(row[0], UTC).isoformat(timespec="seconds")
        raise StoreError(f"message {message} was pruned at {when} ([retention] keep): its input"
                         f" and payloads are deleted, so {what}; its records and journal remain")
