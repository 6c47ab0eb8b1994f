"""The hash-chained journal: every state change and decision, append-only.

Each entry's hash covers its own fields and the previous entry's hash, so
editing or deleting an entry breaks the chain from there on
(``ech-gateway journal verify``). Deleting entries from the end, or
replacing the whole database, keeps a valid chain: the anchor outside the
database (:mod:`gateway.store.anchor`) catches those.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store.anchor import Anchor

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry to append."""

    event: str
    message: int | None = None
    delivery: int | None = None
    detail: Mapping[str, Any] | None = None


def detail_json(detail: Mapping[str, Any] | None) -> str:
    """An entry's detail as compact JSON with sorted keys (what its hash covers)."""
    return orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS, default=str).decode()


def entry_hash(seq: int, at: float, message: int | None, delivery: int | None,
               event: str, detail: str, prev_hash: str) -> str:
    """The hash of one entry, chained to ``prev_hash``."""
    text = f"{seq}|{at!r}|{message}|{delivery}|{event}|{detail}|{prev_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


def append(conn: sqlite3.Connection, entries: Iterable[Entry], at: float) -> None:
    """Append ``entries`` after the current last entry, inside the caller's transaction."""
    row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
    rows = []
    for e in entries:
        seq += 1
        detail = detail_json(e.detail)
        h = entry_hash(seq, at, e.message, e.delivery, e.event, detail, prev)
        rows.append((seq, at, e.message, e.delivery, e.event, detail, prev, h))
        prev = h
    conn.executemany(
        "INSERT INTO journal (seq, at, message, delivery, event, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def verify(conn: sqlite3.Connection) -> tuple[int, int | None]:
    """Check the whole chain; return (entries checked, first broken seq or None)."""
    prev = GENESIS
    count = 0
    cur = conn.execute(
        "SELECT seq, at, message, delivery, event, detail, prev_hash, hash FROM journal ORDER BY seq"
    )
    for seq, at, message, delivery, event, detail, prev_hash, h in cur:
        count += 1
        if prev_hash != prev or entry_hash(seq, at, message, delivery, event, detail, prev) != h:
            return count, seq
        prev = h
    return count, None


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The journal's last entry: (seq, hash), or (0, GENESIS) when it is empty."""
    row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def identity(conn: sqlite3.Connection) -> str | None:
    """The database's identity (made when the database was), if it has one."""
    try:
        row = conn.execute("SELECT id FROM store_identity").fetchone()
    except sqlite3.OperationalError:  # a database older than migration 0006
        return None
    return str(row[0]) if row else None


def against_anchor(conn: sqlite3.Connection, anchor: Anchor) -> str | None:
    """Why the database does not reach ``anchor`` (``TRUNCATED: ...``, ``REPLACED: ...``), or None."""
    found = identity(conn)
    if found != anchor.identity:
        return (f"REPLACED: this database is {found}, the anchor was written for"
                f" {anchor.identity}")
    if anchor.seq == 0:
        return None
    row = conn.execute("SELECT hash FROM journal WHERE seq = ?", (anchor.seq,)).fetchone()
    if row is None:
        last, _hash = head(conn)
        return f"TRUNCATED: the journal ends at entry {last}, the anchor names entry {anchor.seq}"
    if row[0] != anchor.hash:
        return f"REPLACED: journal entry {anchor.seq} is not the one the anchor names"
    return None
