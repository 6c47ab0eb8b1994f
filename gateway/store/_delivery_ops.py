"""Write operations of the delivery side: claims, outcomes, receipts, replays."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence

from gateway.contracts import Attachment, Receipt, ReceiptOutcome
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
              partners: Sequence[str], now: float) -> tuple[list[Claim], list[Entry]]:
    """Claim due deliveries (and those whose lease expired) for one attempt each.

    A delivery whose lease expired while ``sending`` is claimed again with the
    same attempt reference: its transport treats the repeat as the same attempt.

    :raises StoreConflict: a delivery found due was no longer due when claimed.
    """
    ids = _due_ids(conn, now, limit, partners)
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
            entries.append(_fail(conn, o.delivery, mid, partner, attempts, first_at or now,
                                 o.kind == "transient", o.detail, policy_for, now,
                                 (DeliveryState.SENDING,), o.retry_after))
        row[5] = _STATE_AFTER[entries[-1].event]  # a second outcome in this call sees it
    expect_changed(conn.executemany(  # a recipient once reported is kept
        "UPDATE attempts SET outcome = ?, detail = ?, recipient = COALESCE(?, recipient)"
        " WHERE ref = ?", attempt_rows),
        len(attempt_rows), "attempts to record")
    expect_changed(conn.executemany(  # an earlier attempt's overdue flag is not this one's
        f"UPDATE deliveries SET {_SETTLED}, sent_at = ?, receipt_due_at = ?, overdue = 0"
        f" WHERE {_SENDING}", sent_rows), len(sent_rows), "deliveries sent (sending this attempt)")
    expect_changed(conn.executemany(
        f"UPDATE deliveries SET {_SETTLED}, sent_at = ? WHERE {_SENDING}", delivered_rows),
        len(delivered_rows), "deliveries delivered (sending this attempt)")
    expect_changed(conn.executemany(
        "UPDATE deliveries SET sent_at = COALESCE(sent_at, ?)"
        " WHERE id = ? AND attempt_ref = ? AND state != ?", late_rows),
        len(late_rows), "deliveries a receipt settled (no longer sending)")
    return None, entries


#: A delivery leaving ``sending`` without a reason: (state, updated_at) come first.
_SETTLED = "state = ?, reason = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ?"
#: The row of a delivery still ``sending`` one attempt: (id, attempt_ref, 'sending') follow.
_SENDING = "id = ? AND attempt_ref = ? AND state = ?"
#: The state a delivery is in after the journal event an outcome made.
_STATE_AFTER = {
    "delivery.sent": DeliveryState.SENT, "delivery.delivered": DeliveryState.DELIVERED,
    "delivery.retry": DeliveryState.RETRY_WAIT, "delivery.dead": DeliveryState.DEAD,
    "delivery.unsure": DeliveryState.SENDING,
}


def _sending(o: Outcome) -> tuple[int, str, DeliveryState]:
    """The parameters of :data:`_SENDING` for the delivery of ``o``."""
    return o.delivery, o.attempt_ref, DeliveryState.SENDING


def _fail(conn: sqlite3.Connection, did: int, mid: int, partner: str, attempts: int,
          first_at: float, transient: bool, detail: str, policy_for: PolicyFor,
          now: float, expect: Sequence[DeliveryState], retry_after: float | None = None) -> Entry:
    policy = policy_for(partner)
    at = policy.next_attempt_at(attempts, first_at, now, retry_after) if transient else None
    if at is not None:
        _set(conn, did, expect, DeliveryState.RETRY_WAIT, detail, now, next_attempt_at=at)
        return Entry("delivery.retry", mid, did, {"partner": partner, "attempt": attempts,
                                                  "error": detail, "next_attempt_at": at})
    why = policy.why_not(attempts) if transient else "permanent error"
    _set(conn, did, expect, DeliveryState.DEAD, f"{why}: {detail}", now)
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
        _set(conn, o.delivery, (DeliveryState.SENDING,), DeliveryState.DEAD,
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


def _local(conn: sqlite3.Connection, o: Outcome, mid: int, partner: str, now: float) -> Entry:
    """Keep the attempt ``sending``, uncounted, claimable again once its partner resumes."""
    expect_changed(conn.execute(
        f"UPDATE deliveries SET reason = ?, lease_until = ?, updated_at = ? WHERE {_SENDING}",
        (o.detail, now, now, *_sending(o))),
        1, f"delivery {o.delivery} (sending attempt {o.attempt_ref})")
    return Entry("delivery.paused", mid, o.delivery,
                 {"partner": partner, "ref": o.attempt_ref, "error": o.detail})


def _set(conn: sqlite3.Connection, did: int, expect: Sequence[DeliveryState],
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


def record_receipts(conn: sqlite3.Connection, receipts: Sequence[Receipt],
                    policy_for: PolicyFor, now: float) -> tuple[list[bool], list[Entry]]:
    """Store receipts and apply them to the attempts they answer; ``True`` where matched.

    A receipt answers an attempt by content: its ref, and its recipient where
    both the receipt and the attempt name one (an attempt recorded without
    one is matched by its ref alone). A receipt that answers no attempt of
    ours (an unknown ref, or our ref for another recipient) is kept, changes
    no delivery and is journaled as ``receipt.unmatched`` with the reason.

    Only a receipt for the delivery's current attempt changes it: one that
    proves delivery (:func:`_proves_delivery`) settles it as ``delivered``
    from any state that attempt left it in (:data:`_PROVABLE`), any other
    only while the attempt awaits its receipt (:data:`_RECEIVABLE`); the
    rest are ``receipt.late``.

    :raises StoreConflict: a delivery changed between reading and writing it.
    """
    answered = {row[0]: row[1:] for row in select_in(
        conn, "SELECT a.ref, d.id, d.message, d.partner, d.state, d.attempts, d.first_attempt_at,"
        " d.attempt_ref, a.recipient, a.repeats, EXISTS (SELECT 1 FROM receipts x"
        f" WHERE x.attempt_ref = a.ref AND x.outcome IN ({_VERDICTS})) FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery WHERE a.ref IN ({})",
        [r.attempt_ref for r in receipts])}
    matched: list[bool] = []
    entries: list[Entry] = []
    receipt_rows, delivered_rows = [], []
    state_now: dict[str, str] = {}  # the state an earlier receipt of this batch left
    for r in receipts:
        row = answered.get(r.attempt_ref)
        addressed = row[-3] if row else None
        foreign = addressed is not None and r.recipient is not None and r.recipient != addressed
        answers = row is not None and not foreign
        receipt_rows.append((r.attempt_ref, row[0] if row is not None and answers else None,
                             r.outcome, r.code, r.info, r.at.timestamp(), now, r.raw,
                             r.recipient))
        matched.append(answers)
        detail = {"ref": r.attempt_ref, "code": r.code, "info": r.info, "outcome": r.outcome,
                  "alert": r.alert}
        if row is None:
            detail["reason"] = "no attempt of ours has this ref"
            entries.append(Entry("receipt.unmatched", None, None, detail))
            continue
        did, mid, partner, state, attempts, first_at, current, _addressed, repeats, judged = row
        detail["partner"] = partner
        if foreign:  # our ref, but another recipient's receipt: the delivery stays as it is
            detail.update(recipient=r.recipient, addressed=addressed,
                          reason=f"it is for recipient {r.recipient}, the attempt was"
                                 f" addressed to {addressed}")
            entries.append(Entry("receipt.unmatched", mid, did, detail))
            continue
        state = state_now.get(r.attempt_ref, state)
        proof = _proves_delivery(r.outcome, repeats)
        # the first receipt's verdict on an attempt stands; proof settles what no receipt did
        judged = judged or r.attempt_ref in state_now
        if current != r.attempt_ref or state not in (
                _PROVABLE if proof and not judged else _RECEIVABLE):
            entries.append(Entry("receipt.late", mid, did, detail))
            continue
        if r.outcome is ReceiptOutcome.WAIT:
            entries.append(Entry("receipt.wait", mid, did, detail))
            continue
        if proof:
            delivered_rows.append((DeliveryState.DELIVERED, now, did, r.attempt_ref, state))
            if state not in _RECEIVABLE:  # the attempt had left it failed: it was not
                detail["was"] = state
            entries.append(Entry("delivery.delivered", mid, did, detail))
            state_now[r.attempt_ref] = DeliveryState.DELIVERED
        elif r.outcome is ReceiptOutcome.NEEDS_REVIEW:
            _set(conn, did, (state,), DeliveryState.NEEDS_REVIEW, f"receipt {r.code}: {r.info}",
                 now)
            entries.append(Entry("delivery.needs_review", mid, did, detail))
            state_now[r.attempt_ref] = DeliveryState.NEEDS_REVIEW
        else:  # a failure; so is "already known" for an attempt never repeated
            entries.append(Entry("receipt.failed", mid, did, detail))
            entries.append(_fail(conn, did, mid, partner, attempts, first_at or now,
                                 r.outcome is ReceiptOutcome.FAILED_TRANSIENT,
                                 f"receipt {r.code}: {r.info}", policy_for, now, (state,)))
            state_now[r.attempt_ref] = _STATE_AFTER[entries[-1].event]
    conn.executemany(
        "INSERT INTO receipts (attempt_ref, delivery, outcome, code, info, at, recorded_at, raw,"
        " recipient) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", receipt_rows)
    expect_changed(conn.executemany(
        f"UPDATE deliveries SET {_SETTLED}, next_attempt_at = NULL"
        " WHERE id = ? AND attempt_ref = ? AND state = ?",
        delivered_rows), len(delivered_rows), "deliveries delivered (in the state this attempt left)")
    return matched, entries


#: The states in which a receipt can settle a delivery: its attempt awaits the receipt.
_RECEIVABLE = (DeliveryState.SENT, DeliveryState.SENDING)
#: The states a receipt proving delivery settles too, when it answers the attempt that left
#: the delivery there without a receipt's verdict (an unsure attempt at ``max_age``: dead,
#: "it may have reached the partner"), else an operator replays another copy. Not
#: ``replayed``: its copy is the delivery now. An attempt a receipt failed or sent to
#: review keeps that verdict (eCH-0090: every receipt ends its message).
_PROVABLE = (*_RECEIVABLE, DeliveryState.RETRY_WAIT, DeliveryState.NEEDS_REVIEW,
             DeliveryState.DEAD)


#: Receipt outcomes that are a verdict on their attempt (stored as their values).
_VERDICTS = ", ".join(f"'{o.value}'" for o in (
    ReceiptOutcome.FAILED_TRANSIENT, ReceiptOutcome.FAILED_PERMANENT,
    ReceiptOutcome.NEEDS_REVIEW, ReceiptOutcome.ALREADY_KNOWN))


def _proves_delivery(outcome: ReceiptOutcome, repeats: int) -> bool:
    """Whether a receipt with ``outcome`` for an attempt repeated ``repeats`` times proves
    the partner got it: delivered, or "already known" for an attempt that was repeated
    (unsure), whose first copy is what the transport knows."""
    return outcome is ReceiptOutcome.DELIVERED or (
        outcome is ReceiptOutcome.ALREADY_KNOWN and repeats > 0)


def flag_overdue(conn: sqlite3.Connection, now: float) -> tuple[list[tuple[int, int]], list[Entry]]:
    """Flag sent deliveries whose receipt is overdue; return (message, delivery) pairs."""
    rows = conn.execute(
        "SELECT message, id, partner, attempt_ref FROM deliveries"
        " WHERE state = ? AND overdue = 0 AND receipt_due_at < ?",
        (DeliveryState.SENT, now),
    ).fetchall()
    expect_changed(conn.executemany(
        "UPDATE deliveries SET overdue = 1, updated_at = ? WHERE id = ? AND state = ? AND overdue = 0",
        [(now, row[1], DeliveryState.SENT) for row in rows]), len(rows),
        "deliveries overdue (sent, not flagged)")
    return [(mid, did) for mid, did, _p, _r in rows], [
        Entry("receipt.overdue", mid, did, {"partner": partner, "ref": ref})
        for mid, did, partner, ref in rows]


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
    _set(conn, delivery, sorted(REPLAYABLE), DeliveryState.REPLAYED, None, now)
    [(new,)] = conn.execute(
        "INSERT INTO deliveries (message, partner, state, created_at, next_attempt_at, replay_of,"
        " updated_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (mid, partner, DeliveryState.QUEUED, now, now, delivery, now, payload),
    ).fetchall()
    return new, [Entry("delivery.replayed", mid, delivery,
                       {"partner": partner, "new_delivery": new})]
