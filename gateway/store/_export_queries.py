"""Read-only queries about exports: an input that split into parts (its rows, column
``parent``), and the rows of one."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.states import MessageState

#: The quarantined rows not handled whose ids an export's summary lists (the first, by
#: id): an export of 10,000 rows has as many.
ROW_IDS_SHOWN = 20

_UNHANDLED = (f"parent = ? AND state = '{MessageState.QUARANTINED}'"
              " AND id NOT IN (SELECT message FROM handled)")


def export_of(conn: sqlite3.Connection, mid: int) -> dict[str, Any] | None:
    """The export message ``mid`` is a row of (id, source, ref, state); None if it is none."""
    row = conn.execute("SELECT e.id, e.source, e.ref, e.state FROM messages m"
                       " JOIN messages e ON e.id = m.parent WHERE m.id = ?", (mid,)).fetchone()
    return dict(row) if row is not None else None


def rows_of(conn: sqlite3.Connection, mid: int) -> dict[str, Any] | None:
    """A summary of the rows of export ``mid``: how many (``total``), how many in each
    state (``states``), how many are quarantined and not handled by an operator
    (``unhandled``) and the ids of the first :data:`ROW_IDS_SHOWN` of these
    (``unhandled_ids``), how many are still rejected as the split made them: quarantined
    for the reason they were quarantined for then (``as_split``); None if ``mid`` has no
    rows."""
    states = dict(conn.execute("SELECT state, count(*) FROM messages WHERE parent = ?"
                               " GROUP BY state ORDER BY state", (mid,)).fetchall())
    if not states:
        return None
    unhandled = conn.execute(f"SELECT count(*) FROM messages WHERE {_UNHANDLED}",
                             (mid,)).fetchone()[0]
    as_split = conn.execute(
        "SELECT count(*) FROM messages m WHERE parent = ? AND state = ? AND reason IS"
        " (SELECT detail ->> 'reason' FROM journal WHERE message = m.id AND event = ?"
        " ORDER BY seq LIMIT 1)",
        (mid, MessageState.QUARANTINED, f"message.{MessageState.QUARANTINED}")).fetchone()[0]
    return {"total": sum(states.values()), "states": states, "unhandled": unhandled,
            "unhandled_ids": [i for i, _ref in unhandled_rows(conn, mid, ROW_IDS_SHOWN)],
            "as_split": as_split}


def unhandled_rows(conn: sqlite3.Connection, mid: int, limit: int = -1) -> list[tuple[int, str]]:
    """The id and ref of each of export ``mid``'s rows that is quarantined and not
    handled, in id order (at most ``limit``; -1: all)."""
    return [(r[0], r[1]) for r in conn.execute(
        f"SELECT id, ref FROM messages WHERE {_UNHANDLED} ORDER BY id LIMIT ?", (mid, limit))]
