"""Write operations of an operator dealing with quarantined input (handle it, correct it, or
process it again) and with a partner's rejection (handle it)."""

from __future__ import annotations

import hashlib
import sqlite3

from gateway.contracts import RawInput
from gateway.errors import StoreConflict, StoreError
from gateway.store._intake_ops import add_raw
from gateway.store._retention_ops import refuse_pruned
from gateway.store._sql import refuse_message_state, select_in
from gateway.store.journal import Entry
from gateway.store.states import DeliveryState, MessageState


def mark_handled(conn: sqlite3.Connection, message: int, note: str, now: float,
                 correction: int | None = None) -> tuple[list[int], list[Entry]]:
    """Record that an operator dealt with ``message``; journaled. A quarantined message is
    handled itself; of any other, the deliveries its partners rejected and nobody handled
    yet (:func:`handle_rejections`), whose ids are returned (none for a quarantine).

    :raises StoreError: when there is no such message.
    :raises StoreConflict: when it is neither quarantined nor has a rejection to handle,
        or was handled already (the ``handled`` key refuses a second record, also from
        another writer).
    """
    state = conn.execute("SELECT state FROM messages WHERE id = ?", (message,)).fetchone()
    if state is not None and state[0] != MessageState.QUARANTINED:
        return handle_rejections(conn, message, state[0], note, now)
    _check_unhandled(conn, message)
    try:
        conn.execute("INSERT INTO handled (message, at, note, correction) VALUES (?, ?, ?, ?)",
                     (message, now, note, correction))
    except sqlite3.IntegrityError as exc:
        raise StoreConflict(f"message {message} was handled already") from exc
    return [], [Entry("message.handled", message, None, {"note": note, "correction": correction})]


def handle_rejections(conn: sqlite3.Connection, message: int, state: str, note: str,
                      now: float) -> tuple[list[int], list[Entry]]:
    """Mark the rejected deliveries of ``message`` (in ``state``) that nobody handled yet
    handled, with ``note``; their ids, each journaled ``delivery.handled``.

    :raises StoreConflict: none is left to handle.
    """
    rows = conn.execute(
        "INSERT INTO handled_rejections (delivery, at, note) SELECT id, ?, ? FROM deliveries"
        " WHERE message = ? AND state = ? AND id NOT IN (SELECT delivery FROM handled_rejections)"
        " ORDER BY id RETURNING delivery", (now, note, message, DeliveryState.REJECTED)).fetchall()
    if not rows:
        rejected = conn.execute("SELECT count(*) FROM deliveries WHERE message = ? AND state = ?",
                                (message, DeliveryState.REJECTED)).fetchone()[0]
        raise StoreConflict(f"the rejections of message {message} were handled already"
                            if rejected else
                            f"message {message} is {state}, not quarantined, and no partner"
                            " rejected it: nothing to handle")
    handled = sorted(did for (did,) in rows)
    partners = dict(select_in(conn, "SELECT id, partner FROM deliveries WHERE id IN ({})",
                              handled))
    return handled, [Entry("delivery.handled", message, did,
                           {"partner": partners[did], "note": note}) for did in handled]


def _check_unhandled(conn: sqlite3.Connection, message: int) -> None:
    """Raise unless ``message`` is quarantined and not handled yet (:class:`StoreConflict`)."""
    row = conn.execute(
        "SELECT m.state, h.at FROM messages m LEFT JOIN handled h ON h.message = m.id"
        " WHERE m.id = ?", (message,)).fetchone()
    if row is None:
        raise StoreError(f"no message {message}")
    if row[0] != MessageState.QUARANTINED:
        raise StoreConflict(f"message {message} is {row[0]}, not quarantined: nothing to handle")
    if row[1] is not None:
        raise StoreConflict(f"message {message} was handled already")


def add_correction(conn: sqlite3.Connection, of: int, raw: RawInput,
                   now: float) -> tuple[int, list[Entry]]:
    """Store ``raw`` as a new input that corrects quarantined message ``of``; its id.

    The new input waits in ``received`` for processing; ``of`` counts as
    handled. Both are journaled in the same transaction.

    :raises StoreError: when ``of`` cannot be handled, or ``raw`` holds the
        same bytes as an input received before (it would be a duplicate).
    """
    _check_unhandled(conn, of)
    [(digest,)] = conn.execute("SELECT digest FROM messages WHERE id = ?", (of,)).fetchall()
    if hashlib.sha256(raw.data).hexdigest() == digest:
        raise StoreError(f"the corrected file holds the same bytes as message {of}:"
                         " nothing was corrected")
    [(new, fresh)], entries = add_raw(conn, [raw], MessageState.RECEIVED, None, now)
    if not fresh:
        same = conn.execute("SELECT reason FROM messages WHERE id = ?", (new,)).fetchone()[0]
        raise StoreError(f"the corrected file is the {same}: nothing was corrected")
    _none, handled = mark_handled(conn, of, f"corrected by message {new}", now, correction=new)
    return new, [*entries, Entry("message.correction", new, None, {"of": of}), *handled]


def requeue_message(conn: sqlite3.Connection, message: int, now: float
                    ) -> tuple[None, list[Entry]]:
    """Put a quarantined, not-relevant or needs-review message back to ``received`` for
    reprocessing.

    A quarantined message becomes the original of its bytes again, unless
    another input with them was taken meanwhile.

    :raises StoreConflict: the message is in another state.
    :raises StoreError: there is no such message, or retention deleted its input.
    """
    refuse_pruned(conn, message, "it cannot be processed again")
    row = conn.execute(
        "UPDATE messages SET state = ?, reason = NULL, updated_at = ? WHERE id = ?"
        " AND state IN (?, ?, ?) RETURNING source, digest",
        (MessageState.RECEIVED, now, message, MessageState.QUARANTINED, MessageState.NOT_RELEVANT,
         MessageState.NEEDS_REVIEW),
    ).fetchone()
    if row is None:
        refuse_message_state(conn, message, "not quarantined, not relevant or needs_review: it"
                                            " cannot be processed again")
    conn.execute("INSERT INTO input_originals (source, digest, message) VALUES (?, ?, ?)"
                 " ON CONFLICT DO NOTHING", (*row, message))
    # handled was about the old outcome; a new quarantine needs an operator again
    conn.execute("DELETE FROM handled WHERE message = ?", (message,))
    return None, [Entry("message.replayed", message, None, {})]
