"""The way back in the store: partners' messages waiting for review, and their cases.

A case is the conversation with one partner about one business process:
the message the partner answers (found by ``referenceMessageId``, of the
sender it names where several senders used that messageId:
:mod:`gateway.store._referenced`), then by ``businessProcessId``, by our
reference (the partner's ``yourBusinessReferenceId``) and by the partner's
own reference (``ourBusinessReferenceId``), always among that partner's
cases only. A message that names none of them opens a case of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

import orjson

from gateway.person_state import PersonState, state_from_json
from gateway.store._referenced import delivered, in_cases, senders_of
from gateway.store._sql import refuse_message_state, select_in
from gateway.store.journal import Entry
from gateway.store.records import Inbound, Processed
from gateway.store.states import MessageState


def record_inbound(conn: sqlite3.Connection, results: Sequence[Processed],
                   now: float) -> list[Entry]:
    """Record what the way back found: reviews for ``needs_review``, cases for the matched.

    Runs after the batch's persons are linked, in the same transaction.
    """
    entries: list[Entry] = []
    for p in results:
        inbound = p.inbound
        if inbound is None:
            continue
        if p.state is MessageState.NEEDS_REVIEW:
            conn.execute(
                "INSERT INTO reviews (message, partner, reason, candidates, at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (message) DO UPDATE SET"
                " reason = excluded.reason, candidates = excluded.candidates, at = excluded.at",
                (p.message, inbound.partner, p.reason or "",
                 orjson.dumps(list(inbound.candidates)).decode(), now))
        elif p.state is MessageState.ROUTED:
            entries.append(_link_case(conn, p.message, inbound, senders_of(p), now))
    return entries


def _link_case(conn: sqlite3.Connection, message: int, inbound: Inbound, senders: set[str],
               now: float) -> Entry:
    """Put ``message`` into its case (found, or opened), with the message it answers."""
    partner = inbound.partner
    person = _person_of(conn, message)
    case, how, original, unplaced = None, "new", None, None
    if inbound.reference_message_id:
        case, answered = in_cases(conn, partner, inbound.reference_message_id, senders)
        if case is not None:
            how = "referenceMessageId"
        unplaced = answered.unplaced
        if answered.message is not None:  # ours, delivered to the partner (not one of theirs)
            original = conn.execute(
                "SELECT message, coalesce(min(sent_at), min(created_at)) FROM deliveries"
                " WHERE message = ? AND partner = ? GROUP BY message",
                (answered.message, partner)).fetchone()
        if case is None and original is not None:
            how = "referenceMessageId"
    for column, value, name in (
            ("business_process_id", inbound.business_process_id, "businessProcessId"),
            ("our_reference", inbound.our_reference, "yourBusinessReferenceId"),
            ("their_reference", inbound.their_reference, "ourBusinessReferenceId")):
        if case is not None or not value:  # the answered message in no case: go on
            continue
        row = conn.execute(f"SELECT id FROM cases WHERE partner = ? AND {column} = ?"
                           " ORDER BY id DESC LIMIT 1", (partner, value)).fetchone()
        if row is not None:
            case, how = row[0], name
    if case is None:
        (case,) = conn.execute(
            "INSERT INTO cases (partner, person, business_process_id, our_reference,"
            " their_reference, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (partner, person, inbound.business_process_id, inbound.our_reference,
             inbound.their_reference, now, now)).fetchone()
    else:
        conn.execute(
            "UPDATE cases SET person = coalesce(person, ?),"
            " business_process_id = coalesce(business_process_id, ?),"
            " our_reference = coalesce(our_reference, ?),"
            " their_reference = coalesce(their_reference, ?), updated_at = ? WHERE id = ?",
            (person, inbound.business_process_id, inbound.our_reference,
             inbound.their_reference, now, case))
    if original is not None:
        conn.execute("INSERT OR IGNORE INTO case_messages (case_id, message, direction, at)"
                     " VALUES (?, ?, 'out', ?)", (case, original[0], original[1]))
    conn.execute("INSERT OR IGNORE INTO case_messages (case_id, message, direction, at)"
                 " VALUES (?, ?, 'in', ?)", (case, message, now))
    return Entry("message.case", message, None, {
        "case": case, "partner": partner, "by": how,
        **({"answers": original[0]} if original is not None else {}),
        **({"person": person} if person is not None else {}),
        **({"unplaced": unplaced} if unplaced else {})})


def link_outbound(conn: sqlite3.Connection, results: Sequence[Processed],
                  deliveries: Sequence[tuple[int, str]], now: float) -> list[Entry]:
    """Put the registry's messages that continue a case into it (direction ``out``).

    A routed message continues a case with the partner it goes to when it
    answers a message of that case (``referenceMessageId``), or names its
    ``businessProcessId``, the partner's reference (as its
    ``yourBusinessReferenceId``) or ours. Cases are opened by the partner's
    messages; a message that continues none is in none until answered.
    Only messages with such references cost a look-up.
    """
    keyed = {p.message: p for p in results if p.inbound is None and p.normalised is not None
             and (p.normalised.reference_message_id or any(
                 k in p.normalised.facts for k in _OUT_KEYS))}
    entries: list[Entry] = []
    for mid, partner in deliveries:
        p = keyed.get(mid)
        if p is None or p.normalised is None:
            continue
        facts, reference = p.normalised.facts, p.normalised.reference_message_id
        case = (in_cases(conn, partner, reference, senders_of(p), from_partner=True)[0]
                if reference else None)
        for column, key in (("business_process_id", "business_process_id"),
                            ("their_reference", "your_business_reference_id"),
                            ("our_reference", "our_business_reference_id")):
            if case is None and facts.get(key):
                row = conn.execute(f"SELECT id FROM cases WHERE partner = ? AND {column} = ?"
                                   " ORDER BY id DESC LIMIT 1", (partner, facts[key])).fetchone()
                case = row[0] if row else None
        if case is None:
            continue
        conn.execute("UPDATE cases SET our_reference = coalesce(our_reference, ?),"
                     " updated_at = ? WHERE id = ?",
                     (facts.get("our_business_reference_id"), now, case))
        conn.execute("INSERT OR IGNORE INTO case_messages (case_id, message, direction, at)"
                     " VALUES (?, ?, 'out', ?)", (case, mid, now))
        entries.append(Entry("message.case", mid, None, {"case": case, "partner": partner}))
    return entries


#: The facts (from the eCH-0223 header) by which an outgoing message continues a case.
_OUT_KEYS = ("business_process_id", "our_business_reference_id", "your_business_reference_id")


def _person_of(conn: sqlite3.Connection, message: int) -> int | None:
    row = conn.execute("SELECT person FROM person_messages WHERE message = ? ORDER BY person"
                       " LIMIT 1", (message,)).fetchone()
    return int(row[0]) if row else None


def assign(conn: sqlite3.Connection, message: int, keys: Sequence[str], who: str,
           now: float) -> tuple[None, list[Entry]]:
    """Record the operator's choice for ``message`` (``needs_review``) and send it back to
    ``received``, so that processing finds the person it was assigned.

    :raises StoreConflict: the message does not wait for review.
    """
    row = conn.execute("UPDATE messages SET state = ?, reason = NULL, updated_at = ?"
                       " WHERE id = ? AND state = ? RETURNING id",
                       (MessageState.RECEIVED, now, message, MessageState.NEEDS_REVIEW)).fetchone()
    if row is None:
        refuse_message_state(conn, message, "not needs_review: only a message waiting for"
                                            " review is assigned")
    conn.execute("UPDATE reviews SET assigned = ?, assigned_by = ?, at = ? WHERE message = ?",
                 (orjson.dumps(list(keys)).decode(), who, now, message))
    return None, [Entry("message.assigned", message, None, {"by": who, "keys": len(keys)})]


def assignments(conn: sqlite3.Connection, messages: Sequence[int]) -> dict[int, list[str]]:
    """The keys operators assigned to ``messages``, for those that have them."""
    return {mid: orjson.loads(keys) for mid, keys in select_in(
        conn, "SELECT message, assigned FROM reviews WHERE message IN ({})"
        " AND assigned IS NOT NULL", messages)}


def attempted_message_id(conn: sqlite3.Connection, partner: str, attempt: str) -> str | None:
    """The eCH-0223 messageId of the message whose attempt ``attempt`` (its ref) went to
    ``partner``; ``None``: no attempt to ``partner`` has that ref."""
    row = conn.execute(
        "SELECT m.message_id FROM attempts a JOIN deliveries d ON d.id = a.delivery"
        " JOIN messages m ON m.id = d.message WHERE a.ref = ? AND d.partner = ?",
        (attempt, partner)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def answered_persons(conn: sqlite3.Connection, partner: str, message_id: str,
                     senders: Collection[str]) -> list[tuple[int, PersonState]]:
    """The persons of the message ``message_id`` delivered to ``partner`` (what the
    partner's message answers; of ``senders`` as :func:`original_source`), with their ids;
    none when no such message is known, or it is not known which."""
    answered = delivered(conn, partner, message_id, senders)
    if answered.message is None:
        return []
    return [(pid, state_from_json(state)) for pid, state in conn.execute(
        "SELECT p.id, p.state FROM person_messages pm JOIN persons p ON p.id = pm.person"
        " WHERE pm.message = ? ORDER BY p.id", (answered.message,))]


def original_source(conn: sqlite3.Connection, partner: str, message_id: str,
                    senders: Collection[str]) -> str | None:
    """The source of the message ``message_id`` delivered to ``partner`` (what it answers),
    of ``senders`` where several senders used that messageId; ``None``: none, or unknown which."""
    answered = delivered(conn, partner, message_id, senders)
    if answered.message is None:
        return None
    row = conn.execute("SELECT source FROM messages WHERE id = ?", (answered.message,)).fetchone()
    return str(row[0])
