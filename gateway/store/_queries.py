"""Read-only queries: what the CLI, the dashboard and recovery ask of the store."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.batching import fitting
from gateway.errors import StoreError
from gateway.store._retention_ops import refuse_pruned
from gateway.store._sql import select_in
from gateway.store.records import Pending
from gateway.store.states import FINISHED, DeliveryState, MessageState

_MESSAGE_COLS = ("id, source, ref, received_at, state, reason, kind, message_id, sender_id,"
                 " reference_message_id, version, duplicate_of, updated_at, pruned_at")


def _message_dict(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row)


def deliveries_of(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The deliveries of the given messages, by message id."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        rows = conn.execute(
            "SELECT id, message, partner, state, reason, attempts, attempt_ref, next_attempt_at,"
            " sent_at, receipt_due_at, overdue, replay_of, h.at AS handled_at,"
            " h.note AS handled_note FROM deliveries"
            " LEFT JOIN handled_rejections h ON h.delivery = deliveries.id"
            f" WHERE message IN ({','.join('?' * len(part))}) ORDER BY id",
            part,
        )
        for row in rows:
            d = dict(row)
            d["overdue"] = bool(d["overdue"])
            at, note = d.pop("handled_at"), d.pop("handled_note")
            d["handled"] = None if at is None else {"at": at, "note": note}
            out[d.pop("message")].append(d)
    return out


#: The messages with a delivery a partner rejected that no operator has handled yet.
_UNHANDLED_REJECTIONS = (f"SELECT message FROM deliveries WHERE state = '{DeliveryState.REJECTED}'"
                         " AND id NOT IN (SELECT delivery FROM handled_rejections)")


def _filters(state: str | None, delivery_state: str | None, unhandled: bool,
             partner: str | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause (or ``""``) and its arguments for the message filters (``partner``
    with ``delivery_state``: a delivery to that partner in that state)."""
    where: list[str] = []
    args: list[Any] = []
    if state:
        where.append("state = ?")
        args.append(state)
    if delivery_state or partner:
        wanted = [(column, value) for column, value in (("state", delivery_state),
                                                        ("partner", partner)) if value]
        where.append("id IN (SELECT message FROM deliveries WHERE"
                     f" {' AND '.join(f'{column} = ?' for column, _ in wanted)})")
        args += [value for _, value in wanted]
    if unhandled:
        where.append(f"(state = '{MessageState.QUARANTINED}' AND id NOT IN"
                     f" (SELECT message FROM handled) OR id IN ({_UNHANDLED_REJECTIONS}))")
    return (f" WHERE {' AND '.join(where)}" if where else ""), args


def list_messages(conn: sqlite3.Connection, *, state: str | None = None,
                  delivery_state: str | None = None, unhandled: bool = False,
                  partner: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    """Messages, newest first, each with its deliveries and whether it was handled.

    ``unhandled`` keeps what waits for an operator to handle it (``messages handle``):
    quarantined messages, and messages with a delivery a partner rejected.
    """
    clause, args = _filters(state, delivery_state, unhandled, partner)
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLS} FROM messages{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    msgs = [_message_dict(r) for r in rows]
    ids = [m["id"] for m in msgs]
    by_id = deliveries_of(conn, ids)
    handled = handled_of(conn, ids)
    for m in msgs:
        m["deliveries"] = by_id[m["id"]]
        m["handled"] = handled.get(m["id"])
    return msgs


def count_messages(conn: sqlite3.Connection, *, state: str | None = None,
                   delivery_state: str | None = None, unhandled: bool = False,
                   partner: str | None = None) -> int:
    """How many messages :func:`list_messages` would list without a limit."""
    clause, args = _filters(state, delivery_state, unhandled, partner)
    return int(conn.execute(f"SELECT count(*) FROM messages{clause}", args).fetchone()[0])


def handled_of(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """How an operator handled each of the given messages that was handled."""
    return {
        row[0]: {"at": row[1], "note": row[2], "correction": row[3]}
        for row in select_in(conn, "SELECT message, at, note, correction FROM handled"
                             " WHERE message IN ({})", ids)
    }


#: A key naming a message by its row id only (``row:12``), never by messageId.
ROW_PREFIX = "row:"


def find_messages(conn: sqlite3.Connection, key: str) -> list[dict[str, Any]]:
    """The messages ``key`` names: ``row:N`` the row with id N; a number the row with that
    id and every one with that messageId (registries that number their messages 1, 2,
    3 ... make both likely); anything else every one with that messageId. In id order."""
    cols = "SELECT id, state, received_at, source, ref, sender_id FROM messages"
    number = key.removeprefix(ROW_PREFIX)
    by_row = [dict(r) for r in conn.execute(f"{cols} WHERE id = ?", (int(number),))
              ] if number.isascii() and number.isdigit() else []
    if key.startswith(ROW_PREFIX):
        return by_row
    by_id = [dict(r) for r in conn.execute(f"{cols} WHERE message_id = ? ORDER BY id", (key,))]
    return sorted({m["id"]: m for m in by_row + by_id}.values(), key=lambda m: m["id"])


def get_message(conn: sqlite3.Connection, mid: int) -> dict[str, Any] | None:
    """One message with its deliveries, attempts, receipts, journal, raw size and files; the
    eCH-0223 version it came in where it was upgraded (``received_version``, else None); of a
    duplicate, the header the message it duplicates was read with (``original``)."""
    row = conn.execute(
        f"SELECT {_MESSAGE_COLS}, meta, length(raw) AS raw_bytes"
        " FROM messages JOIN payloads ON payloads.message = messages.id WHERE id = ?",
        (mid,),
    ).fetchone()
    if row is None:
        return None
    msg = _message_dict(row)
    msg["meta"] = json.loads(msg["meta"])
    msg["deliveries"] = deliveries_of(conn, [mid])[mid]
    msg["handled"] = handled_of(conn, [mid]).get(mid)
    msg["attachments"] = [
        {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in conn.execute(
            "SELECT name, data FROM attachments WHERE message = ? ORDER BY name", (mid,))]
    for d in msg["deliveries"]:
        d["attempt_log"] = [dict(r) for r in conn.execute(
            "SELECT ref, number, started_at, outcome, detail, recipient FROM attempts"
            " WHERE delivery = ?"
            " ORDER BY number", (d["id"],))]
        d["receipts"] = [dict(r) for r in conn.execute(
            "SELECT attempt_ref, outcome, code, info, at, recipient FROM receipts"
            " WHERE delivery = ?"
            " ORDER BY id", (d["id"],))]
    msg["journal"] = [
        {**dict(r), "detail": json.loads(r["detail"])}
        for r in conn.execute(
            "SELECT seq, at, delivery, event, detail FROM journal WHERE message = ? ORDER BY seq",
            (mid,))
    ]
    read = [e["detail"] for e in msg["journal"] if e["event"] == "message.normalised"]
    msg["received_version"] = read[-1].get("received_version") if read else None
    msg["original"] = None if msg["duplicate_of"] is None else _header_of(conn, msg["duplicate_of"])
    return msg


def _header_of(conn: sqlite3.Connection, mid: int) -> dict[str, Any] | None:
    """What message ``mid`` was read as: its id, kind, messageId, sender and version."""
    row = conn.execute("SELECT id, kind, message_id, sender_id, version FROM messages"
                       " WHERE id = ?", (mid,)).fetchone()
    return None if row is None else dict(row)


def raw_of(conn: sqlite3.Connection, mid: int) -> bytes | None:
    """The raw bytes of a message, as received (``None``: no such message).

    :raises StoreError: retention deleted them.
    """
    refuse_pruned(conn, mid, "it cannot be shown as received")
    row = conn.execute("SELECT raw FROM payloads WHERE message = ?", (mid,)).fetchone()
    return bytes(row[0]) if row else None


def counts(conn: sqlite3.Connection,
           failing_since: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Messages and deliveries per state, the deliveries not finished per partner and state
    (``unsettled``; finished ones, :data:`FINISHED`, only grow in number and are counted in
    the totals alone), overdue receipts and deliveries
    waiting to be sent per partner, unhandled quarantine, the rejected deliveries no
    operator has handled per partner (``rejected``), messages pruned by retention, the
    person states kept (and how many of those persons left the register), and the partners
    paused by a fault on a node's machine, one per node and partner (since when, why, and
    how many of the partner's deliveries wait: all of them, whichever node paused it), and
    the deliveries of the partners in ``failing_since`` failing since before then
    (``failing``, :func:`failing`)."""
    open_states = sorted(set(DeliveryState) - FINISHED)
    unsettled: dict[str, dict[str, int]] = {}
    for partner, state, n in conn.execute(  # by the state index: not every delivery is read
            "SELECT partner, state, count(*) FROM deliveries INDEXED BY deliveries_due"
            f" WHERE state IN ({', '.join('?' * len(open_states))})"
            " GROUP BY partner, state ORDER BY partner, state", open_states):
        unsettled.setdefault(partner, {})[state] = n
    return {
        "messages": dict(conn.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall()),
        "deliveries": dict(conn.execute(
            "SELECT state, count(*) FROM deliveries GROUP BY state").fetchall()),
        "unsettled": unsettled,
        "overdue": dict(conn.execute(
            "SELECT partner, count(*) FROM deliveries WHERE overdue = 1 AND state = ?"
            " GROUP BY partner", (DeliveryState.SENT,)).fetchall()),
        "waiting": dict(conn.execute(
            "SELECT partner, count(*) FROM deliveries WHERE state IN (?, ?) GROUP BY partner",
            (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT)).fetchall()),
        "unhandled": conn.execute(
            "SELECT count(*) FROM messages WHERE state = ? AND id NOT IN"
            " (SELECT message FROM handled)", (MessageState.QUARANTINED,)).fetchone()[0],
        "rejected": dict(conn.execute(
            "SELECT partner, count(*) FROM deliveries WHERE state = ? AND id NOT IN"
            " (SELECT delivery FROM handled_rejections) GROUP BY partner",
            (DeliveryState.REJECTED,)).fetchall()),
        "needs_review": conn.execute("SELECT count(*) FROM messages WHERE state = ?",
                                     (MessageState.NEEDS_REVIEW,)).fetchone()[0],
        "pruned": conn.execute("SELECT count(*) FROM messages WHERE pruned_at IS NOT NULL"
                               ).fetchone()[0],
        "persons": {"known": conn.execute("SELECT count(*) FROM persons").fetchone()[0],
                    "departed": conn.execute("SELECT count(*) FROM persons INDEXED BY"
                                             " persons_departed WHERE departed_at IS NOT NULL"
                                             ).fetchone()[0]},
        "paused": [{"node": node, "partner": partner, "since": since, "error": error,
                    "deliveries": conn.execute(
                        "SELECT count(*) FROM deliveries WHERE partner = ? AND state IN (?, ?, ?)",
                        (partner, DeliveryState.QUEUED, DeliveryState.RETRY_WAIT,
                         DeliveryState.SENDING)).fetchone()[0]}
                   for (node, partner), (since, error) in paused_partners(conn).items()],
        "failing": failing(conn, failing_since or {}),
    }


def failing(conn: sqlite3.Connection, since: Mapping[str, float]) -> dict[str, int]:
    """Per partner of ``since``, its deliveries failing since before ``since[partner]``, if any.

    A delivery fails while its attempts fail: waiting for its next (``retry_wait``), or
    ``sending`` again after a failed or unsure one (it has a ``reason``), its first attempt
    before that time. It counts only if it failed after the partner last took a delivery
    (``partner_successes``): a partner working again is failing no more, though what
    failed before waits for its next attempt. A partner paused by a fault on a node's
    machine is not failing: its pause is said instead.
    """
    found = {}
    for partner, before in since.items():
        n = conn.execute(
            "SELECT count(*) FROM deliveries INDEXED BY deliveries_due WHERE state IN (?, ?)"
            " AND partner = ? AND reason IS NOT NULL AND first_attempt_at <= ?"
            " AND updated_at > coalesce((SELECT at FROM partner_successes WHERE partner = ?), 0)"
            " AND partner NOT IN (SELECT partner FROM partner_pauses)",
            (DeliveryState.RETRY_WAIT, DeliveryState.SENDING, partner, before, partner),
        ).fetchone()[0]
        if n:
            found[partner] = n
    return found


def paused_partners(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[float, str]]:
    """The partners paused by a fault on a node's machine: (since, error) of each pause, by
    (node, partner)."""
    return {(node, partner): (since, error) for node, partner, since, error in conn.execute(
        "SELECT node, partner, since, error FROM partner_pauses ORDER BY node, partner")}


def activity(conn: sqlite3.Connection, since: int) -> tuple[int, dict[str, int], int]:
    """The journal's head, its events after entry ``since`` by kind, and the open deliveries."""
    head = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
    events = dict(conn.execute(
        "SELECT event, count(*) FROM journal WHERE seq > ? GROUP BY event", (since,)).fetchall())
    open_ = conn.execute(
        "SELECT count(*) FROM deliveries WHERE state IN (?, ?, ?, ?)",
        (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT, DeliveryState.SENDING, DeliveryState.SENT),
    ).fetchone()[0]
    return head, events, open_


def pending(conn: sqlite3.Connection, limit: int, max_bytes: int | None = None) -> list[Pending]:
    """Inputs stored but never processed (the process stopped in between), oldest first:
    at most ``limit``, and beyond the first at most ``max_bytes`` of input (their sizes
    are read first, from the records' headers, so that only those are loaded)."""
    rows = conn.execute(
        # the literal state lets SQLite use the partial index messages_received
        "SELECT id, length(raw) FROM messages JOIN payloads ON message = id"
        f" WHERE state = '{MessageState.RECEIVED}' ORDER BY id LIMIT ?",
        (limit,),
    ).fetchall()
    if max_bytes is not None:
        rows = rows[:fitting((size for _id, size in rows), max_bytes)]
    return inputs(conn, [mid for mid, _size in rows])


def count_pending(conn: sqlite3.Connection) -> int:
    """How many inputs are stored but not processed."""
    return int(conn.execute(  # the literal state: the partial index messages_received
        f"SELECT count(*) FROM messages WHERE state = '{MessageState.RECEIVED}'").fetchone()[0])


def inputs(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Pending]:
    """The stored inputs ``ids`` that still wait to be processed, by id."""
    return [Pending(r[0], r[1], r[2], bytes(r[3]), json.loads(r[4])) for r in select_in(
        conn, "SELECT id, source, ref, raw, meta FROM messages JOIN payloads ON message = id"
        " WHERE id IN ({}) AND state = ? ORDER BY id", ids, tail=(MessageState.RECEIVED,))]


def load_input(conn: sqlite3.Connection, mid: int) -> Pending:
    """One stored input, as it was received.

    :raises StoreError: there is no such message, or retention deleted its input.
    """
    r = conn.execute("SELECT id, source, ref, raw, meta FROM messages JOIN payloads ON message = id"
                     " WHERE id = ?",
                     (mid,)).fetchone()
    if r is None:
        raise StoreError(f"no message {mid}")
    refuse_pruned(conn, mid, "it cannot be read as received")
    return Pending(r[0], r[1], r[2], bytes(r[3]), json.loads(r[4]))


def next_due(conn: sqlite3.Connection, partners: Sequence[str]) -> float | None:
    """When the earliest waiting delivery to one of ``partners`` becomes due, if any."""
    marks = ",".join("?" * len(partners))
    row = conn.execute(
        f"SELECT min(next_attempt_at) FROM deliveries WHERE state IN (?, ?) AND partner IN ({marks})",
        (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT, *partners),
    ).fetchone()
    return row[0] if row else None
