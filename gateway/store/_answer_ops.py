"""A partner's answers (eCH-0223 eventReports) applied to the deliveries they answer.

Recording the answer message and settling the deliveries it answers happen in
one transaction (:func:`gateway.store._intake_ops.record_processing`), so no
crash can store an answer and lose what it says.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.store._referenced import delivered, senders_of
from gateway.store._sql import expect_changed, select_in
from gateway.store.journal import Entry
from gateway.store.records import Processed
from gateway.store.states import DeliveryState, MessageState

#: The eCH-0039 header action of a positive report (business acknowledgement, DOMAIN.md).
POSITIVE_REPORT = "9"
#: Delivery states an answer from the partner can settle: every state an attempt left a
#: delivery in, since the answer proves the partner has the message. ``sending`` too, for
#: an answer faster than the record of the send (which then keeps the answer's verdict);
#: ``retry_wait``, else the retry sends a second copy; ``needs_review`` and ``dead`` (an
#: attempt that may have reached the partner), else an operator replays another copy.
#: Not ``queued`` (never sent: the answer is not about it) nor ``replayed`` (its copy is
#: the delivery now), nor ``rejected``: a negative answer stands.
_ANSWERABLE = (DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.DELIVERED,
               DeliveryState.ACKNOWLEDGED, DeliveryState.RETRY_WAIT,
               DeliveryState.NEEDS_REVIEW, DeliveryState.DEAD)
_ANSWERABLE_IN = ",".join("?" * len(_ANSWERABLE))


def apply_answers(conn: sqlite3.Connection, results: Sequence[Processed],
                   now: float) -> list[Entry]:
    """Apply each stored ``eventReport`` to the deliveries of the message it answers.

    Only deliveries to the partner the answer came from (its source) are
    matched, and of those every one an attempt was made for: sent or being
    sent, delivered, answered before, waiting for a retry, needing review or
    dead (:data:`_ANSWERABLE`); its lease and next attempt end, so nothing is
    sent again. A positive report (action 9) acknowledges them; any other
    report is the partner's rejection. Quarantined and duplicate answers
    change nothing. Every answer is journaled, matched or not.

    The message answered is the one with the ``referenceMessageId`` delivered
    to that partner; where several senders' messages have it, the one from the
    sender the answer names (:mod:`gateway.store._referenced`). An answer that
    does not tell which settles none of them, as an answer to no message of
    ours, and says so in its reason; so does an answer to a messageId never sent to
    that partner.

    An answer is applied once (``applied_answers``): the same message
    processed again (assigned after review, replayed), or another message
    with the same messageId from the same partner, settles nothing and is
    journaled as ``message.answer_repeated`` only.
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
        partner = p.inbound.partner if p.inbound is not None else source_of[p.message]
        first = conn.execute(
            "SELECT message FROM applied_answers WHERE message = ?"
            " OR partner = ? AND message_id = ?", (p.message, partner, n.message_id or None)
        ).fetchone()
        if first is not None:
            entries.append(Entry("message.answer_repeated", p.message, None, {
                "answers": n.reference_message_id, "partner": partner, "applied_by": first[0]}))
            continue
        conn.execute("INSERT INTO applied_answers (message, partner, message_id, at)"
                     " VALUES (?, ?, ?, ?)", (p.message, partner, n.message_id or None, now))
        positive = n.action == POSITIVE_REPORT
        answered = delivered(conn, partner, n.reference_message_id, senders_of(p))
        rows = conn.execute(
            "SELECT id, message FROM deliveries"
            f" WHERE message = ? AND partner = ? AND state IN ({_ANSWERABLE_IN})",
            (answered.message, partner, *_ANSWERABLE),
        ).fetchall() if answered.message is not None else []
        unplaced = answered.unplaced or (None if answered.message is not None else (
            f"referenceMessageId {n.reference_message_id} names no message sent to {partner}:"
            " this eventReport settles no delivery"))
        if unplaced:
            conn.execute("UPDATE messages SET reason = ? WHERE id = ?",
                         ("; ".join(filter(None, (p.reason, unplaced))), p.message))
        state = DeliveryState.ACKNOWLEDGED if positive else DeliveryState.REJECTED
        given = "; ".join(p.detail.get("reasons", ()))  # the report's codes and texts
        reason = None if positive else (f"negative eventReport from {partner} (message"
                                        f" {p.message}){f': {given}' if given else ''}")
        expect_changed(conn.executemany(
            "UPDATE deliveries SET state = ?, reason = ?, lease_owner = NULL, lease_until = NULL,"
            f" next_attempt_at = NULL, updated_at = ? WHERE id = ? AND state IN ({_ANSWERABLE_IN})",
            [(state, reason, now, did, *_ANSWERABLE) for did, _mid in rows]),
            len(rows), f"deliveries {[did for did, _mid in rows]} (attempted, not replayed)")
        entries.append(Entry("message.answer", p.message, None, {
            "answers": n.reference_message_id, "partner": partner, "positive": positive,
            "deliveries": [did for did, _mid in rows],
            **({"reason": unplaced} if unplaced else {})}))
        entries += [Entry(f"delivery.{state}", mid, did,
                          {"partner": partner, "answer": p.message,
                           **({} if positive else {"reason": reason})})
                    for did, mid in rows]
    return entries
