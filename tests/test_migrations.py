"""Schema migrations: a database made by an older release is brought up to date, data kept."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.store import SQLiteStore, StoreReader
from gateway.store.migrate import available, migrate


def first_schema_db(path: Path) -> None:
    """A database as release 0001 left it, with one received and one converted message."""
    conn = sqlite3.connect(path, isolation_level=None)
    number, sql = available()[0]
    conn.executescript(sql)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (number,))
    conn.executemany(
        "INSERT INTO messages (id, source, ref, raw, digest, received_at, state, canonical,"
        " updated_at) VALUES (?, 'registry', ?, ?, 'd', 0, ?, ?, 0)",
        [(1, "a.xml", b"<raw-a/>", "received", None),
         (2, "b.xml", b"<raw-b/>", "routed", b"<canonical-b/>")])
    conn.close()


def test_every_migration_applies_once_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    assert migrate(conn) == [n for n, _sql in available()]
    assert migrate(conn) == []


def test_migrations_are_numbered_one_after_another() -> None:
    # two helpers' migrations with one number: the second would be skipped where the first ran
    assert [n for n, _sql in available()] == list(range(1, len(available()) + 1))


def test_a_reader_refuses_a_database_that_lacks_migrations(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    first_schema_db(db)
    later = [n for n, _sql in available()][1:]
    with pytest.raises(StoreError, match=re.escape(f"lacks schema migrations {later}: start the gateway")):
        StoreReader(db)


def test_payloads_move_out_of_messages_with_their_bytes(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    first_schema_db(db)
    store = SQLiteStore(db)
    store.start()  # applies the later migrations
    store.close()
    conn = sqlite3.connect(db)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    assert not {"raw", "canonical"} & columns
    assert conn.execute("SELECT message, raw, canonical FROM payloads ORDER BY message").fetchall() == [
        (1, b"<raw-a/>", None), (2, b"<raw-b/>", b"<canonical-b/>")]
    conn.close()
    reader = StoreReader(db)
    try:
        assert reader.raw(2) == b"<raw-b/>"
        message = reader.get_message(1)
        assert message is not None and message["raw_bytes"] == len(b"<raw-a/>")
    finally:
        reader.close()
