"""Write operations of the delivery side: claims, outcomes, receipts, replays."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence

from gateway.contracts import Attachment, Receipt, ReceiptOutcome
from gateway.errors import StoreError
from gateway.store import journal
from gateway.store.base import PolicyFor
from gateway.store.journal import Entry
from gateway.store.records import Claim, Outcome
from gateway.store.states import REPLAYABLE, DeliveryState

_CLAIM_SQL = """
SELECT d.id, d.message, d.partner, d.state, d.attempts, d.attempt_ref,
       m.message_id, COALESCE(m.canonical, m.raw)
FROM deliveries d JOIN messages m ON m.id = d.message
WHERE ((d.state IN (?, ?) AND d.next_attempt_at <= ?)
   OR (d.state = ? AND d.lease_until < ?))
  AND d.partner IN ({partners})
ORDER BY d.next_attempt_at
LIMIT ?
"""


def claim_due(conn: sqlite3.Connection, node: str, lease: float, limit: int,
              partners: Sequence[str]) -> list[Claim]:
    """Claim due deliveries (and those whose lease expired) for one attempt each.

    A delivery whose lease expired while ``sending`` is claimed again with the
    same attempt reference: its transport treats the repeat as the same attempt.
    """
    now = time.time()
    sql = _CLAIM_SQL.format(partners=",".join("?" * len(partners)))
    rows = conn.execute(
        sql,
        (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT, now, DeliveryState.SENDING, now,
         *partners, limit),
    ).fetchall()
    claims: list[Claim] = []
    entries: list[Entry] = []
    attempts_rows = []
    for did, mid, partner, state, attempts, ref, message_id, payload in rows:
        resumed = state == DeliveryState.SENDING and ref is not None
        if not resumed:
            attempts += 1
            ref = str(uuid.uuid4())
            attempts_rows.append((ref, did, attempts, now))
        conn.execute(
            "UPDATE deliveries SET state = ?, attempts = ?, attempt_ref = ?, lease_owner = ?,"
            " lease_until = ?, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?"
            " WHERE id = ?",
            (DeliveryState.SENDING, attempts, ref, node, now + lease, now, now, did),
        )
        files = tuple(
            Attachment(name, data)
            for name, data in conn.execute(
                "SELECT name, data FROM attachments WHERE message = ? ORDER BY name", (mid,)
            )
        )
        claims.append(Claim(did, mid, partner, attempts, ref, message_id, payload, files, resumed))
        entries.append(Entry("delivery.sending", mid, did,
                             {"attempt": attempts, "ref": ref, "resumed": resumed}))
    conn.executemany(
        "INSERT INTO attempts (ref, delivery, number, started_at) VALUES (?, ?, ?, ?)", attempts_rows
    )
    journal.append(conn, entries, now)
    return claims


def release_leases(conn: sqlite3.Connection, node: str) -> int:
    """Expire this node's leases at start-up: nothing of ours is in flight any more."""
    cur = conn.execute(
        "UPDATE deliveries SET lease_until = 0 WHERE state = ? AND lease_owner = ?",
        (DeliveryState.SENDING, node),
    )
    return cur.rowcount


def record_outcomes(conn: sqlite3.Connection, outcomes: Sequence[Outcome], policy_for: PolicyFor,
                    receipt_timeout: Mapping[str, float]) -> None:
    """Record what each attempt achieved: sent, delivered, retry or dead."""
    now = time.time()
    entries: list[Entry] = []
    for o in outcomes:
        row = conn.execute(
            "SELECT message, partner, attempts, first_attempt_at, attempt_ref, state FROM deliveries"
            " WHERE id = ?",
            (o.delivery,),
        ).fetchone()
        if row is None or row[4] != o.attempt_ref:
            continue  # the claim was taken over meanwhile; its owner records it
        mid, partner, attempts, first_at, _ref, state = row
        conn.execute("UPDATE attempts SET outcome = ?, detail = ? WHERE ref = ?",
                     (o.kind, o.detail, o.attempt_ref))
        if state != DeliveryState.SENDING:
            # the receipt was faster than this record: keep its verdict, note the send
            if o.kind in ("sent", "delivered"):
                conn.execute("UPDATE deliveries SET sent_at = COALESCE(sent_at, ?) WHERE id = ?",
                             (now, o.delivery))
                entries.append(Entry("delivery.sent", mid, o.delivery, {"ref": o.attempt_ref}))
            continue
        if o.kind == "sent":
            due = now + receipt_timeout.get(partner, 3600.0)
            _set(conn, o.delivery, DeliveryState.SENT, None, now, sent_at=now, receipt_due_at=due)
            entries.append(Entry("delivery.sent", mid, o.delivery, {"ref": o.attempt_ref}))
        elif o.kind == "delivered":
            _set(conn, o.delivery, DeliveryState.DELIVERED, None, now, sent_at=now)
            entries.append(Entry("delivery.delivered", mid, o.delivery, {"ref": o.attempt_ref}))
        else:
            entries.append(_fail(conn, o.delivery, mid, partner, attempts, first_at or now,
                                 o.kind == "transient", o.detail, policy_for, now))
    journal.append(conn, entries, now)


def _fail(conn: sqlite3.Connection, did: int, mid: int, partner: str, attempts: int,
          first_at: float, transient: bool, detail: str, policy_for: PolicyFor,
          now: float) -> Entry:
    policy = policy_for(partner)
    at = policy.next_attempt_at(attempts, first_at, now) if transient else None
    if at is not None:
        _set(conn, did, DeliveryState.RETRY_WAIT, detail, now, next_attempt_at=at)
        return Entry("delivery.retry_wait", mid, did,
                     {"attempt": attempts, "error": detail, "next_attempt_at": at})
    why = policy.why_not(attempts) if transient else "permanent error"
    _set(conn, did, DeliveryState.DEAD, f"{why}: {detail}", now)
    return Entry("delivery.dead", mid, did, {"attempt": attempts, "error": detail, "why": why})


def _set(conn: sqlite3.Connection, did: int, state: DeliveryState, reason: str | None,
         now: float, **cols: float | None) -> None:
    sets = "".join(f", {name} = ?" for name in cols)
    conn.execute(
        f"UPDATE deliveries SET state = ?, reason = ?, lease_owner = NULL, lease_until = NULL,"
        f" updated_at = ?{sets} WHERE id = ?",
        (state, reason, now, *cols.values(), did),
    )


_FINAL_FOR_RECEIPT = {
    ReceiptOutcome.DELIVERED: DeliveryState.DELIVERED,
    ReceiptOutcome.NEEDS_REVIEW: DeliveryState.NEEDS_REVIEW,
}


def record_receipts(conn: sqlite3.Connection, receipts: Sequence[Receipt],
                    policy_for: PolicyFor) -> list[bool]:
    """Store receipts and apply them to the attempts they answer; ``True`` where matched."""
    now = time.time()
    matched: list[bool] = []
    entries: list[Entry] = []
    for r in receipts:
        row = conn.execute(
            "SELECT d.id, d.message, d.partner, d.state, d.attempts, d.first_attempt_at,"
            " d.attempt_ref FROM attempts a JOIN deliveries d ON d.id = a.delivery WHERE a.ref = ?",
            (r.attempt_ref,),
        ).fetchone()
        conn.execute(
            "INSERT INTO receipts (attempt_ref, delivery, outcome, code, info, at, recorded_at, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.attempt_ref, row[0] if row else None, r.outcome, r.code, r.info,
             r.at.timestamp(), now, r.raw),
        )
        matched.append(row is not None)
        if row is None:
            continue
        did, mid, partner, state, attempts, first_at, current = row
        detail = {"ref": r.attempt_ref, "code": r.code, "info": r.info, "outcome": r.outcome}
        if current != r.attempt_ref or state not in (DeliveryState.SENT, DeliveryState.SENDING):
            entries.append(Entry("receipt.late", mid, did, detail))
            continue
        if r.outcome is ReceiptOutcome.WAIT:
            entries.append(Entry("receipt.wait", mid, did, detail))
        elif r.outcome in _FINAL_FOR_RECEIPT:
            new = _FINAL_FOR_RECEIPT[r.outcome]
            reason = None if new is DeliveryState.DELIVERED else f"receipt {r.code}: {r.info}"
            _set(conn, did, new, reason, now)
            entries.append(Entry(f"delivery.{new}", mid, did, detail))
        else:
            entries.append(Entry("receipt.failed", mid, did, detail))
            entries.append(_fail(conn, did, mid, partner, attempts, first_at or now,
                                 r.outcome is ReceiptOutcome.FAILED_TRANSIENT,
                                 f"receipt {r.code}: {r.info}", policy_for, now))
    journal.append(conn, entries, now)
    return matched


def flag_overdue(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """Flag sent deliveries whose receipt is overdue; return (message, delivery) pairs."""
    now = time.time()
    rows = conn.execute(
        "SELECT message, id FROM deliveries WHERE state = ? AND overdue = 0 AND receipt_due_at < ?",
        (DeliveryState.SENT, now),
    ).fetchall()
    conn.executemany("UPDATE deliveries SET overdue = 1, updated_at = ? WHERE id = ?",
                     [(now, did) for _mid, did in rows])
    journal.append(conn, [Entry("receipt.overdue", mid, did, {}) for mid, did in rows], now)
    return [(mid, did) for mid, did in rows]


def replay_delivery(conn: sqlite3.Connection, delivery: int) -> int:
    """Replace a dead (or rejected, or needs-review) delivery by a fresh queued one."""
    now = time.time()
    row = conn.execute("SELECT message, partner, state FROM deliveries WHERE id = ?",
                       (delivery,)).fetchone()
    if row is None:
        raise StoreError(f"no delivery {delivery}")
    mid, partner, state = row
    if state not in REPLAYABLE:
        raise StoreError(f"delivery {delivery} is {state}; only {sorted(REPLAYABLE)} can be replayed")
    _set(conn, delivery, DeliveryState.REPLAYED, None, now)
    cur = conn.execute(
        "INSERT INTO deliveries (message, partner, state, created_at, next_attempt_at, replay_of,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mid, partner, DeliveryState.QUEUED, now, now, delivery, now),
    )
    new = cur.lastrowid
    assert new is not None
    journal.append(conn, [Entry("delivery.replayed", mid, delivery, {"new_delivery": new})], now)
    return new
