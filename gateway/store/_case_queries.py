"""Read queries of the way back: cases (``cases list``/``show``) and reviews (``messages show``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_CASE_COLS = ("id", "partner", "person", "business_process_id", "our_reference",
              "their_reference", "opened_at", "updated_at")


def list_cases(conn: sqlite3.Connection, limit: int, person: int | None = None
               ) -> list[dict[str, Any]]:
    """Cases, the most recently updated first, each with its number of messages."""
    where, args = ("WHERE c.person = ?", (person,)) if person is not None else ("", ())
    rows = conn.execute(
        f"SELECT {', '.join('c.' + c for c in _CASE_COLS)},"
        " (SELECT count(*) FROM case_messages cm WHERE cm.case_id = c.id)"
        f" FROM cases c {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?", (*args, limit))
    return [{**dict(zip(_CASE_COLS, r[:-1], strict=True)), "messages": r[-1]} for r in rows]


def get_case(conn: sqlite3.Connection, case: int) -> dict[str, Any] | None:
    """One case with its messages in time order, both directions."""
    row = conn.execute(f"SELECT {', '.join(_CASE_COLS)} FROM cases WHERE id = ?",
                       (case,)).fetchone()
    if row is None:
        return None
    out: dict[str, Any] = dict(zip(_CASE_COLS, row, strict=True))
    out["messages"] = [
        {"id": mid, "direction": direction, "at": at, "source": source, "state": state,
         "kind": kind, "message_id": message_id, "reference_message_id": reference,
         "deliveries": [{"partner": p, "state": s} for p, s in conn.execute(
             "SELECT partner, state FROM deliveries WHERE message = ? ORDER BY id", (mid,))]}
        for mid, direction, at, source, state, kind, message_id, reference in conn.execute(
            "SELECT m.id, cm.direction, cm.at, m.source, m.state, m.kind, m.message_id,"
            " m.reference_message_id FROM case_messages cm JOIN messages m ON m.id = cm.message"
            " WHERE cm.case_id = ? ORDER BY cm.at, m.id", (case,)).fetchall()]
    return out


def review_of(conn: sqlite3.Connection, message: int) -> dict[str, Any] | None:
    """What a partner's message waiting for review (or once waiting) is about: its candidates."""
    row = conn.execute("SELECT partner, reason, candidates, assigned, assigned_by, at FROM reviews"
                       " WHERE message = ?", (message,)).fetchone()
    if row is None:
        return None
    return {"partner": row[0], "reason": row[1], "candidates": json.loads(row[2]),
            "assigned": json.loads(row[3]) if row[3] else None, "assigned_by": row[4],
            "at": row[5]}


def directions(conn: sqlite3.Connection, messages: list[int]) -> dict[int, str]:
    """``in`` for the messages that came from a partner (in a case); others are ``out``."""
    if not messages:
        return {}
    marks = ",".join("?" * len(messages))
    found = dict(conn.execute(f"SELECT message, direction FROM case_messages WHERE message IN"
                              f" ({marks}) AND direction = 'in'", messages).fetchall())
    return {mid: found.get(mid, "out") for mid in messages}
