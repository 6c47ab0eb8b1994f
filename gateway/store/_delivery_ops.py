"""Write operations of the delivery side: claims, outcomes, replays (receipts: :mod:`._receipt_ops`)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence

from gateway.batching import fitting
from gateway.contracts import Attachment
from gateway.errors import StoreConflict, StoreError
from gateway.store._retention_ops import refuse_pruned
from gateway.store._sql import expect_changed, select_in
from gateway.store.base import PolicyFor
from gateway.store.journal import Entry
from gateway.store.records import Claim, Outcome
from gateway.store.states import DUE, REPLAYABLE, DeliveryState

#: Due deliveries in one state, in due order: walks ``deliveries_due`` and stops at the limit.
_DUE_SQL = """
SELECT id, next_attempt_at FROM deliveries
WHERE state = ? AND next_attempt_at <= ? AND partner IN ({partners})
ORDER BY next_attempt_at LIMIT ?
"""
#: Attempts whose lease expired (few: at most what was in flight when a node stopped).
_EXPIRED_SQL = """
SELECT id, next_attempt_at FROM deliveries
WHERE state = ? AND lease_until < ? AND partner IN ({partners})
ORDER BY next_attempt_at LIMIT ?
"""
#: What sending each delivery of ``ids`` carries: its payload and its message's attachments
#: (``length`` of a column reads the record's header, not the blob: about 4 µs a delivery).
_SIZES_SQL = """
SELECT d.id, COALESCE(length(d.payload), length(p.canonical), length(p.raw))
             + COALESCE((SELECT sum(length(a.data)) FROM attachments a WHERE a.message = d.message), 0)
FROM deliveries d JOIN payloads p ON p.message = d.message
WHERE d.id IN ({})
"""
_CLAIMED_SQL = """
SELECT d.id, d.message, d.partner, d.state, d.attempts, d.attempt_ref,
       m.message_id, COALESCE(d.payload, p.canonical, p.raw)
FROM deliveries d JOIN messages m ON m.id = d.message JOIN payloads p ON p.message = d.message
WHERE d.id IN ({})
"""


def _due_ids(conn: sqlite3.Connection, now: float, limit: int, partners: Sequence[str]) -> list[int]:
    """The ids of the ``limit`` deliveries due first.

    One query per state, each an in-order index walk, merged here: a single
    ``OR`` query would sort every due row (a whole backlog) to return a few.
    """
    marks = ",".join("?" * len(partners))
    due: list[tuple[float, int]] = []
    for state in (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT):
        due += [(at, did) for did, at in conn.execute(
            _DUE_SQL.format(partners=marks), (state, now, *partners, limit))]
    due += [(at or 0.0, did) for did, at in conn.execute(
        _EXPIRED_SQL.format(partners=marks), (DeliveryState.SENDING, now, *partners, limit))]
    return [did for _at, did in sorted(due)[:limit]]


def claim_due(conn: sqlite3.Connection, node: str, lease: float, limit: int,
              partners: Sequence[str], now: float,
              max_bytes: int | None = None) -> tuple[list[Claim], list[Entry]]:
    """Claim due deliveries (and those whose lease expired) for one attempt each: at most
    ``limit``, and beyond the first at most ``max_bytes`` of payloads and attachments.

    A delivery whose lease expired while ``sending`` is claimed again with the
    same attempt reference: its transport treats the repeat as the same attempt.

    :raises StoreConflict: a delivery found due was no longer due when claimed.
    """
    ids = _due_ids(conn, now, limit, partners)
    if max_bytes is not None and len(ids) > 1:
        sizes = dict(select_in(conn, _SIZES_SQL, ids))
        ids = ids[:fitting((sizes.get(did, 0) for did in ids), max_bytes)]
    found = {row[0]: row for row in select_in(conn, _CLAIMED_SQL, ids)}
    rows = [found[did] for did in ids if did in found]
    files = _attachments_of(conn, [row[1] for row in rows])
    claims: list[Claim] = []
    entries: list[Entry] = []
    updates, attempts_rows = [], []
    for did, mid, partner, state, attempts, ref, message_id, payload in rows:
        resumed = state == DeliveryState.SENDING and ref is not None
        if not resumed:
            attempts += 1
            ref = str(uuid.uuid4())
            attempts_rows.append((ref, did, attempts, now))
        updates.append((DeliveryState.SENDING, attempts, ref, node, now + lease, now, now, did,
                        *DUE, now, DeliveryState.SENDING, now))
        claims.append(Claim(did, mid, partner, attempts, ref, message_id, payload,
                            files.get(mid, ()), resumed))
        entries.append(Entry("delivery.sending", mid, did, {
            "partner": partner, "attempt": attempts, "ref": ref, "resumed": resumed}))
    expect_changed(conn.executemany(
        "UPDATE deliveries SET state = ?, attempts = ?, attempt_ref = ?, lease_owner = ?,"
        " lease_until = ?, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?"
        " WHERE id = ? AND (state IN (?, ?) AND next_attempt_at <= ?"
        " OR state = ? AND lease_until < ?)",
        updates,
    ), len(updates), "deliveries to claim (due, or sending with an expired lease)")
    conn.executemany(
        "INSERT INTO attempts (ref, delivery, number, started_at) VALUES (?, ?, ?, ?)", attempts_rows
    )
    return claims, entries


def _attachments_of(conn: sqlite3.Connection, messages: Sequence[int]
                    ) -> dict[int, tuple[Attachment, ...]]:
    """message -> its attachments in name order, for the messages that have any."""
    found: dict[int, list[Attachment]] = {}
    for mid, name, data in select_in(
            conn, "SELECT message, name, data FROM attachments WHERE message IN ({})"
            " ORDER BY message, name", messages):
        found.setdefault(mid, []).append(Attachment(name, data))
    return {mid: tuple(files) for mid, files in found.items()}


def release_leases(conn: sqlite3.Connection, node: str) -> tuple[int, list[Entry]]:
    """Expire this node's leases at start-up: nothing of ours is in flight any more."""
    cur = conn.execute(
        "UPDATE deliveries SET lease_until = 0 WHERE state = ? AND lease_owner = ?",
        (DeliveryState.SENDING, node),
    )
    return cur.rowcount, []


def record_outcomes(conn: sqlite3.Connection, outcomes: Sequence[Outcome], policy_for: PolicyFor,
                    receipt_timeout: Mapping[str, float],
                    now: float) -> tuple[None, list[Entry]]:
    """Record what each attempt achieved: sent, delivered, retry or dead.

    Only a delivery still ``sending`` this attempt changes state. An outcome
    for an attempt taken over meanwhile changes nothing (its new owner
    records it); one for a delivery a receipt settled first keeps the
    receipt's verdict and only notes that the send happened.

    :raises StoreConflict: a delivery changed between reading and writing it.
    """
    current = {row[0]: list(row[1:]) for row in select_in(
        conn, "SELECT id, message, partner, attempts, first_attempt_at, attempt_ref, state"
        " FROM deliveries WHERE id IN ({})", [o.delivery for o in outcomes])}
    entries: list[Entry] = []
    attempt_rows, sent_rows, delivered_rows, late_rows = [], [], [], []
    through: set[str] = set()  # the partners an attempt got through to
    for o in outcomes:
        row = current.get(o.delivery)
        if row is None or row[4] != o.attempt_ref:
            continue  # the claim was taken over meanwhile; its owner records it
        mid, partner, attempts, first_at, _ref, state = row
        if o.kind == "local":
            if state == DeliveryState.SENDING:
                entries.append(_local(conn, o, mid, partner, now))
            continue
        attempt_rows.append((o.kind, o.detail, o.recipient, o.attempt_ref))
        if o.kind in ("sent", "delivered"):
            through.add(partner)
        if state != DeliveryState.SENDING:
            # the receipt was faster than this record: keep its verdict, note the send
            if o.kind in ("sent", "delivered"):
                late_rows.append((now, o.delivery, o.attempt_ref, DeliveryState.SENDING))
                entries.append(Entry("delivery.sent", mid, o.delivery,
                                     {"partner": partner, "ref": o.attempt_ref}))
            continue
        if o.kind == "sent":
            due = now + receipt_timeout.get(partner, 3600.0)
            sent_rows.append((DeliveryState.SENT, now, now, due, *_sending(o)))
            entries.append(Entry("delivery.sent", mid, o.delivery,
                                 {"partner": partner, "ref": o.attempt_ref}))
        elif o.kind == "delivered":
            delivered_rows.append((DeliveryState.DELIVERED, now, now, *_sending(o)))
            entries.append(Entry("delivery.delivered", mid, o.delivery,
                                 {"partner": partner, "ref": o.attempt_ref}))
        elif o.kind == "unsure":
            entries.append(_unsure(conn, o, mid, partner, attempts, first_at or now, policy_for,
                                   now))
        else:
            entries.append(fail_attempt(conn, o.delivery, mid, partner, attempts, first_at or now,
                                 o.kind == "transient", o.detail, policy_for, now,
                                 (DeliveryState.SENDING,), o.retry_after))
        row[5] = STATE_AFTER[entries[-1].event]  # a second outcome in this call sees it
    expect_changed(conn.executemany(  # a recipient once reported is kept
        "UPDATE attempts SET outcome = ?, detail = ?, recipient = COALESCE(?, recipient)"
        " WHERE ref = ?", attempt_rows),
        len(attempt_rows), "attempts to record")
    expect_changed(conn.executemany(  # an earlier attempt's overdue flag is not this one's
        f"UPDATE deliveries SET {SETTLED}, sent_at = ?, receipt_due_at = ?, overdue = 0"
        f" WHERE {_SENDING}", sent_rows), len(sent_rows), "deliveries sent (sending this attempt)")
    expect_changed(conn.executemany(
        f"UPDATE deliveries SET {SETTLED}, sent_at = ? WHERE {_SENDING}", delivered_rows),
        len(delivered_rows), "deliveries delivered (sending this attempt)")
    expect_changed(conn.executemany(
        "UPDATE deliveries SET sent_at = COALESCE(sent_at, ?)"
        " WHERE id = ? AND attempt_ref = ? AND state != ?", late_rows),
        len(late_rows), "deliveries a receipt settled (no longer sending)")
    conn.executemany(  # `status`: a partner that takes deliveries again is failing no more
        "INSERT INTO partner_successes (partner, at) VALUES (?, ?)"
        " ON CONFLICT (partner) DO UPDATE SET at = max(at, excluded.at)",
        [(partner, now) for partner in sorted(through)])
    return None, entries


#: A delivery leaving ``sending`` without a reason: (state, updated_at) come first.
SETTLED = "state = ?, reason = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ?"
#: The row of a delivery still ``sending`` one attempt: (id, attempt_ref, 'sending') follow.
_SENDING = "id = ? AND attempt_ref = ? AND state = ?"
#: The state a delivery is in after the journal event an outcome made.
STATE_AFTER = {
    "delivery.sent": DeliveryState.SENT, "delivery.delivered": DeliveryState.DELIVERED,
    "delivery.retry": DeliveryState.RETRY_WAIT, "delivery.dead": DeliveryState.DEAD,
    "delivery.unsure": DeliveryState.SENDING,
}


def _sending(o: Outcome) -> tuple[int, str, DeliveryState]:
    """The parameters of :data:`_SENDING` for the delivery of ``o``."""
    return o.delivery, o.attempt_ref, DeliveryState.SENDING


def fail_attempt(conn: sqlite3.Connection, did: int, mid: int, partner: str, attempts: int,
          first_at: float, transient: bool, detail: str, policy_for: PolicyFor,
          now: float, expect: Sequence[DeliveryState], retry_after: float | None = None) -> Entry:
    policy = policy_for(partner)
    at = policy.next_attempt_at(attempts, first_at, now, retry_after) if transient else None
    if at is not None:
        set_state(conn, did, expect, DeliveryState.RETRY_WAIT, detail, now, next_attempt_at=at)
        return Entry("delivery.retry", mid, did, {"partner": partner, "attempt": attempts,
                                                  "error": detail, "next_attempt_at": at})
    why = policy.why_not(attempts) if transient else "permanent error"
    set_state(conn, did, expect, DeliveryState.DEAD, f"{why}: {detail}", now)
    return Entry("delivery.dead", mid, did,
                 {"partner": partner, "attempt": attempts, "error": detail, "why": why})


def _unsure(conn: sqlite3.Connection, o: Outcome, mid: int, partner: str, attempts: int,
            first_at: float, policy_for: PolicyFor, now: float) -> Entry:
    """Keep the attempt in ``sending``; its lease ends when it is to be repeated.

    No node holds it meanwhile (nothing of it is in flight), so a start that
    releases its node's leases does not repeat it before its delay. The
    attempt is not counted, so its repeats are (``attempts.repeats``): each
    waits longer than the one before (:meth:`RetryPolicy.resume_at`).
    """
    policy = policy_for(partner)
    found = conn.execute("UPDATE attempts SET repeats = repeats + 1 WHERE ref = ?"
                         " RETURNING repeats", (o.attempt_ref,)).fetchone()
    repeats = found[0] - 1 if found is not None else 0
    at = policy.resume_at(attempts, first_at, now, repeats)
    if at is None:
        why = f"maximum age of {policy.max_age:.0f}s reached"
        set_state(conn, o.delivery, (DeliveryState.SENDING,), DeliveryState.DEAD,
             f"{why}: {o.detail} (it may have reached the partner)", now)
        return Entry("delivery.dead", mid, o.delivery,
                     {"partner": partner, "attempt": attempts, "error": o.detail, "why": why})
    expect_changed(conn.execute(
        f"UPDATE deliveries SET reason = ?, lease_owner = NULL, lease_until = ?,"
        f" next_attempt_at = ?, updated_at = ? WHERE {_SENDING}", (o.detail, at, at, now,
                                                                   *_sending(o))),
        1, f"delivery {o.delivery} (sending attempt {o.attempt_ref})")
    return Entry("delivery.unsure", mid, o.delivery, {
        "partner": partner, "attempt": attempts, "ref": o.attempt_ref, "error": o.detail,
        "resume_at": at})


#: Deliveries whose attempts are still to come or to be told of: a pause holds them up.
_OPEN = (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.RETRY_WAIT)


def pause_partner(conn: sqlite3.Connection, node: str, partner: str, error: str,
                  now: float) -> tuple[float, list[Entry]]:
    """Record that ``partner`` is paused on ``node`` by ``error`` (a fault on that node's
    machine) from ``now``, journaled as ``partner.paused``; the time it is paused since.

    A partner already paused on ``node`` stays paused as it was (another round of that
    node met the fault first): its pause's start is returned and nothing is journaled
    again. Its pause on another node is another row: each node's fault is its own.
    """
    found = conn.execute(
        "INSERT INTO partner_pauses (node, partner, since, error) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (node, partner) DO NOTHING RETURNING since",
        (node, partner, now, error)).fetchone()
    if found is None:
        [(since,)] = conn.execute(
            "SELECT since FROM partner_pauses WHERE node = ? AND partner = ?",
            (node, partner)).fetchall()
        return float(since), []
    return float(found[0]), [Entry("partner.paused", detail={
        "partner": partner, "node": node, "error": error})]


def resume_partner(conn: sqlite3.Connection, node: str, partner: str, since: float,
                   error: str, now: float) -> tuple[int, list[Entry]]:
    """End ``partner``'s pause on ``node`` (from ``since``, for ``error``), journaled; the
    paused time no longer counts toward the ``max_age`` of its open deliveries; how many.

    Nothing was tried while it lasted, so each open delivery's first attempt moves
    later by the part of the pause after it: a pause over a weekend does not leave
    its deliveries dead at their next failure. All the partner's open deliveries move,
    whichever node claimed them (a waiting delivery belongs to no node): with several
    nodes, a pause on one node extends the ``max_age`` of the partner's deliveries by
    that pause, though the other nodes kept sending.

    :raises StoreConflict: ``partner`` is not paused on ``node`` since ``since`` (another
        writer of that node resumed it first): its deliveries were moved then, and are
        not moved twice.
    """
    expect_changed(conn.execute(
        "DELETE FROM partner_pauses WHERE node = ? AND partner = ? AND since = ?",
        (node, partner, since)),
        1, f"the pause of partner {partner} on node {node} (paused since {since})")
    moved = conn.execute(
        "UPDATE deliveries SET first_attempt_at = first_attempt_at + (? - max(first_attempt_at, ?))"
        " WHERE partner = ? AND first_attempt_at < ?"
        f" AND state IN ({', '.join('?' * len(_OPEN))})",
        (now, since, partner, now, *_OPEN)).rowcount
    return moved, [Entry("partner.resumed", detail={
        "partner": partner, "node": node, "paused_for": round(now - since, 1), "error": error,
        "deliveries": moved})]


def _local(conn: sqlite3.Connection, o: Outcome, mid: int, partner: str, now: float) -> Entry:
    """Keep the attempt ``sending``, uncounted, claimable again once its partner resumes."""
    expect_changed(conn.execute(
        f"UPDATE deliveries SET reason = ?, lease_until = ?, updated_at = ? WHERE {_SENDING}",
        (o.detail, now, now, *_sending(o))),
        1, f"delivery {o.delivery} (sending attempt {o.attempt_ref})")
    return Entry("delivery.paused", mid, o.delivery,
                 {"partner": partner, "ref": o.attempt_ref, "error": o.detail})


def set_state(conn: sqlite3.Connection, did: int, expect: Sequence[DeliveryState],
         state: DeliveryState, reason: str | None, now: float, **cols: float | None) -> None:
    """Move delivery ``did`` from one of the ``expect`` states to ``state``, lease ended.

    :raises StoreConflict: it is in none of them (another writer moved it first).
    """
    sets = "".join(f", {name} = ?" for name in cols)
    expect_changed(conn.execute(
        f"UPDATE deliveries SET state = ?, reason = ?, lease_owner = NULL, lease_until = NULL,"
        f" updated_at = ?{sets} WHERE id = ? AND state IN ({','.join('?' * len(expect))})",
        (state, reason, now, *cols.values(), did, *expect),
    ), 1, f"delivery {did} ({' or '.join(expect)})")


def replay_delivery(conn: sqlite3.Connection, delivery: int,
                    now: float) -> tuple[int, list[Entry]]:
    """Replace a dead (or rejected, or needs-review) delivery by a fresh queued one, with the
    same payload (the partner's eCH-0223 version of the message).

    :raises StoreError: there is no such delivery, or retention deleted its payload.
    :raises StoreConflict: it is in another state (already replayed, still on its way).
    """
    row = conn.execute("SELECT message, partner, state, payload FROM deliveries WHERE id = ?",
                       (delivery,)).fetchone()
    if row is None:
        raise StoreError(f"no delivery {delivery}")
    mid, partner, state, payload = row
    refuse_pruned(conn, mid, "its delivery cannot be sent again")
    if state not in REPLAYABLE:
        raise StoreConflict(
            f"delivery {delivery} is {state}; only {sorted(REPLAYABLE)} can be replayed")
    set_state(conn, delivery, sorted(REPLAYABLE), DeliveryState.REPLAYED, None, now)
    [(new,)] = conn.execute(
        "INSERT INTO deliveries (message, partner, state, created_at, next_attempt_at, replay_of,"
        " updated_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (mid, partner, DeliveryState.QUEUED, now, now, delivery, now, payload),
    ).fetchall()
    return new, [Entry("delivery.replayed", mid, delivery,
                       {"partner": partner, "new_delivery": new})]
