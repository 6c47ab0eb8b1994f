"""Schema migrations: numbered SQL files applied once, in order."""

from __future__ import annotations

import sqlite3
import time
from importlib import resources

from gateway.errors import StoreError


def available() -> list[tuple[int, str]]:
    """The migrations shipped with the package, as (number, SQL)."""
    files = resources.files("gateway.store") / "migrations"
    found: dict[int, tuple[str, str]] = {}
    for item in files.iterdir():
        if not item.name.endswith(".sql"):
            continue
        number = int(item.name.split("_", 1)[0])
        if number in found:
            # the second would be taken for applied wherever the first was
            raise StoreError(f"migrations {found[number][0]} and {item.name} share number {number}")
        found[number] = (item.name, item.read_text(encoding="utf-8"))
    return sorted((number, sql) for number, (_name, sql) in found.items())


def missing(conn: sqlite3.Connection) -> list[int]:
    """The shipped migrations ``conn``'s database lacks (without changing it)."""
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")} if known else set()
    return [number for number, _sql in available() if number not in done]


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn`` has not seen yet; return their numbers.

    Each is applied under the write lock, looked for again there: processes
    starting at once on one database apply each migration once.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for number, sql in available():
        if number in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?",
                            (number,)).fetchone():  # another process applied it meanwhile
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (number, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied


def _statements(sql: str) -> list[str]:
    """The statements of a migration, each whole (a trigger's body holds ``;`` of its own)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in (*statements, current.strip()) if s.strip(" ;\n")]
