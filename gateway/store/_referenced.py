"""The message another one refers to by its ``referenceMessageId``.

A messageId is unique only with its sender (sedex: the pair (senderId,
messageId)), so a ``referenceMessageId`` may name several messages, from
different senders. Where it names more than one, those whose sender is
known and is none of the ``senders`` the referring message names (an
answer's ``recipientId``: the one who sent what it answers) are left out.
Where that leaves other than one, the reference places nothing: it is taken
as a reference to no message of ours (no delivery settled, no case joined by
it, no registry chosen by it), with the reason, rather than put an answer on
another person's message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.store.records import Processed


@dataclass(frozen=True, slots=True)
class Referenced:
    """The message a reference names (``None``: none), or why it names none of several."""

    message: int | None
    unplaced: str | None = None


def delivered(conn: sqlite3.Connection, partner: str, message_id: str,
              senders: Collection[str]) -> Referenced:
    """The message ``message_id`` delivered to ``partner`` (what the partner's answer answers)."""
    rows = conn.execute(
        "SELECT DISTINCT m.id, m.sender_id FROM messages m JOIN deliveries d ON d.message = m.id"
        " WHERE m.message_id = ? AND d.partner = ? ORDER BY m.id", (message_id, partner)).fetchall()
    return narrowed(message_id, rows, senders, f"sent to {partner}")


def in_cases(conn: sqlite3.Connection, partner: str, message_id: str, senders: Collection[str],
             from_partner: bool = False) -> tuple[int | None, Referenced]:
    """The message ``message_id`` exchanged with ``partner`` (in a case with it, or delivered
    to it), and the case with ``partner`` that holds it (the newest, if several do).

    :param from_partner: the partner's own messages count as named by ``senders`` (the
        referring message is ours, and may answer one of theirs).
    """
    rows = conn.execute(
        "SELECT m.id, m.sender_id, max(c.id),"
        " max(CASE WHEN c.id IS NOT NULL AND cm.direction = 'in' THEN 1 ELSE 0 END)"
        " FROM messages m LEFT JOIN case_messages cm ON cm.message = m.id"
        " LEFT JOIN cases c ON c.id = cm.case_id AND c.partner = ?"
        " WHERE m.message_id = ? GROUP BY m.id HAVING max(c.id) IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message = m.id AND d.partner = ?)"
        " ORDER BY m.id", (partner, message_id, partner)).fetchall()
    if from_partner:
        senders = {*senders, *(sender for _m, sender, _c, inbound in rows if inbound and sender)}
    found = narrowed(message_id, [(mid, sender) for mid, sender, _c, _in in rows], senders,
                     f"exchanged with {partner}")
    case = {mid: case for mid, _s, case, _in in rows}.get(found.message)
    return case, found


def senders_of(p: Processed) -> set[str]:
    """The senders ``p``'s reference may name: its own ``senderId`` and its ``recipientId``s."""
    n = p.normalised
    return {s for s in ((n.sender_id if n else None),
                        *(p.inbound.recipients if p.inbound else ())) if s}


def participant(sender_id: str) -> str:
    """A participant id as compared: ``sedex://T1-2511-1`` and ``T1-2511-1`` are one."""
    return sender_id.removeprefix(_SEDEX)


_SEDEX = "sedex://"


def narrowed(message_id: str, rows: Sequence[tuple[int, str | None]], senders: Collection[str],
             where: str) -> Referenced:
    """The one of ``rows`` (message, sender) the reference names (see the module)."""
    known = {participant(s) for s in senders}
    kept = rows if len(rows) < 2 else [(m, s) for m, s in rows
                                       if s is None or participant(s) in known]
    if len(kept) == 1:
        return Referenced(kept[0][0])
    if not rows:
        return Referenced(None)
    named = ", ".join(f"{m} from {f'sender {s}' if s else 'an unknown sender'}" for m, s in rows)
    return Referenced(None, f"referenceMessageId {message_id} names {len(rows)} messages {where}"
                            f" ({named}) and the senderId and recipientId of this one"
                            f" ({', '.join(sorted(senders)) or 'not known'}) do not tell which:"
                            " taken as referring to none of them")
