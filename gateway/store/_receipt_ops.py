"""Receipts: the transport's word on an attempt, and receipts that did not come in time.

A receipt settles the attempt it answers by content (its ``attempt_ref`` and
recipient), never by file name; the first receipt's verdict on an attempt
stands, and only proof of delivery settles what no receipt judged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.outbound import Receipt, ReceiptOutcome
from gateway.store._delivery_ops import SETTLED, STATE_AFTER, fail_attempt, set_state
from gateway.store._sql import expect_changed, select_in
from gateway.store.base import PolicyFor
from gateway.store.journal import Entry
from gateway.store.states import DeliveryState


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
        f" WHERE x.delivery = a.delivery AND x.attempt_ref = a.ref"
        f" AND x.outcome IN ({_VERDICTS})) FROM attempts a"
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
            set_state(conn, did, (state,), DeliveryState.NEEDS_REVIEW, f"receipt {r.code}: {r.info}",
                 now)
            entries.append(Entry("delivery.needs_review", mid, did, detail))
            state_now[r.attempt_ref] = DeliveryState.NEEDS_REVIEW
        else:  # a failure; so is "already known" for an attempt never repeated
            entries.append(Entry("receipt.failed", mid, did, detail))
            entries.append(fail_attempt(conn, did, mid, partner, attempts, first_at or now,
                                 r.outcome is ReceiptOutcome.FAILED_TRANSIENT,
                                 f"receipt {r.code}: {r.info}", policy_for, now, (state,)))
            state_now[r.attempt_ref] = STATE_AFTER[entries[-1].event]
    conn.executemany(
        "INSERT INTO receipts (attempt_ref, delivery, outcome, code, info, at, recorded_at, raw,"
        " recipient) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", receipt_rows)
    expect_changed(conn.executemany(
        f"UPDATE deliveries SET {SETTLED}, next_attempt_at = NULL"
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
