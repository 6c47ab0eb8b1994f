"""Small SQL helpers the store's write operations share."""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

#: Values bound per ``IN (...)`` query (SQLite allows 32,766 since 3.32; this keeps statements short).
IN_CHUNK = 500


def select_in(conn: sqlite3.Connection, sql: str, values: Iterable[Hashable], *,
              head: tuple[object, ...] = (), tail: tuple[object, ...] = ()) -> Iterator[Any]:
    """Rows of ``sql`` whose ``IN ({})`` takes the distinct ``values``, a chunk at a time."""
    items = list(dict.fromkeys(values))
    for i in range(0, len(items), IN_CHUNK):
        chunk = items[i:i + IN_CHUNK]
        yield from conn.execute(sql.format(",".join("?" * len(chunk))), (*head, *chunk, *tail))


def next_rowid(conn: sqlite3.Connection, table: str) -> int:
    """The id SQLite would give the next row of ``table`` (inside the writer's transaction)."""
    return int(conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0])
