"""Small SQL helpers the store's write operations share."""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

from gateway.errors import StoreConflict, StoreError

#: Values bound per ``IN (...)`` query (SQLite allows 32,766 since 3.32; this keeps statements short).
IN_CHUNK = 500
#: Values bound per multi-row INSERT (far below SQLite's limit of 32,766).
_MAX_BOUND = 4000


def select_in(conn: sqlite3.Connection, sql: str, values: Iterable[Hashable], *,
              head: tuple[object, ...] = (), tail: tuple[object, ...] = ()) -> Iterator[Any]:
    """Rows of ``sql`` whose ``IN ({})`` takes the distinct ``values``, a chunk at a time."""
    items = list(dict.fromkeys(values))
    for i in range(0, len(items), IN_CHUNK):
        chunk = items[i:i + IN_CHUNK]
        yield from conn.execute(sql.format(",".join("?" * len(chunk))), (*head, *chunk, *tail))


def expect_changed(cur: sqlite3.Cursor, count: int, what: str) -> None:
    """Raise :class:`StoreConflict` unless the statement just run changed ``count`` rows.

    :param what: the rows and the state they were expected in, for the message.
    """
    if cur.rowcount != count:
        raise StoreConflict(f"{what}: {cur.rowcount} of {count} changed (another writer changed"
                            " them first); nothing was stored")


def insert_ids(conn: sqlite3.Connection, table: str, columns: Sequence[str],
               rows: Sequence[Sequence[object]]) -> list[int]:
    """Insert ``rows`` into ``table``; the ids the inserts gave them, in the order of ``rows``.

    One multi-row ``INSERT ... RETURNING id`` per chunk (a statement per row
    costs twice as much). RETURNING lists rows in no set order, but each new
    row gets an id above every id before it, so within one statement the ids
    rise in the order of the VALUES: sorted, they are the rows' ids in order.
    """
    marks = f"({', '.join('?' * len(columns))})"
    ids: list[int] = []
    step = max(1, _MAX_BOUND // len(columns))
    for i in range(0, len(rows), step):
        chunk = rows[i:i + step]
        ids += sorted(row[0] for row in conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(chunk))}"
            " RETURNING id", [value for row in chunk for value in row]))
    return ids


def refuse_message_state(conn: sqlite3.Connection, message: int, why: str) -> NoReturn:
    """Refuse an operation on ``message``, whose state was not the one it expects.

    :raises StoreError: there is no such message.
    :raises StoreConflict: ``message N is <state>, <why>``.
    """
    state = conn.execute("SELECT state FROM messages WHERE id = ?", (message,)).fetchone()
    if state is None:
        raise StoreError(f"no message {message}")
    raise StoreConflict(f"message {message} is {state[0]}, {why}")
