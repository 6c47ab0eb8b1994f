"""Read queries about persons: who a key names, and their timeline (``persons show``),
both directions."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.store._case_queries import directions


def find_persons(conn: sqlite3.Connection, keys: list[str]) -> list[int]:
    """The persons ``keys`` name; ``local:*:<id>`` matches a local id of any category."""
    found: set[int] = set()
    for key in keys:
        if key.startswith("local:*:"):  # a CLI look-up: a scan of the local ids is fine
            tail = ":" + key.removeprefix("local:*:")
            found.update(pid for k, pid in conn.execute(
                "SELECT key, person FROM person_keys WHERE key >= 'local:' AND key < 'local;'")
                if k.endswith(tail) and ":" not in k[len("local:"):-len(tail)])
        else:
            found.update(pid for (pid,) in conn.execute(
                "SELECT person FROM person_keys WHERE key = ?", (key,)))
    return sorted(found)


def person(conn: sqlite3.Connection, pid: int) -> dict[str, Any] | None:
    """One person: the state, the keys, and the messages about them in time order."""
    row = conn.execute("SELECT id, state, updated_at, updated_by, departed_at FROM persons"
                       " WHERE id = ?", (pid,)).fetchone()
    if row is None:
        return None
    out: dict[str, Any] = {"id": row[0], "state": json.loads(row[1]), "updated_at": row[2],
                           "updated_by": row[3], "departed_at": row[4]}
    out["keys"] = [k for (k,) in conn.execute(
        "SELECT key FROM person_keys WHERE person = ? ORDER BY key", (pid,))]
    messages = []
    for mid, received, source, ref, state, kind, message_id, reason in conn.execute(
            "SELECT m.id, m.received_at, m.source, m.ref, m.state, m.kind, m.message_id, m.reason"
            " FROM person_messages pm JOIN messages m ON m.id = pm.message"
            " WHERE pm.person = ? ORDER BY m.received_at, m.id", (pid,)):
        decided = conn.execute("SELECT detail FROM journal WHERE message = ? AND event = ?"
                               " ORDER BY seq DESC LIMIT 1", (mid, "message.decided")).fetchone()
        normalised = conn.execute("SELECT detail FROM journal WHERE message = ? AND event = ?"
                                  " ORDER BY seq DESC LIMIT 1",
                                  (mid, "message.normalised")).fetchone()
        facts = json.loads(normalised[0]) if normalised else {}
        messages.append({
            "id": mid, "received_at": received, "source": source, "ref": ref, "state": state,
            "kind": kind, "message_id": message_id, "reason": reason,
            "event": facts.get("event") or facts.get("source_event"),
            "rule": json.loads(decided[0])["rule"] if decided else None,
            "deliveries": [{"partner": p, "state": s} for p, s in conn.execute(
                "SELECT partner, state FROM deliveries WHERE message = ? ORDER BY id", (mid,))],
        })
    ways = directions(conn, [m["id"] for m in messages])
    for m in messages:
        m["direction"] = ways[m["id"]]
    out["messages"] = messages
    out["cases"] = [c for (c,) in conn.execute(
        "SELECT id FROM cases WHERE person = ? ORDER BY id", (pid,))]
    return out
