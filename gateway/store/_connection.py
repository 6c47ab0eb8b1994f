"""Opening the SQLite database: WAL, full durability, and the writer's own tuning.

The writer checkpoints itself once the WAL is long (:data:`WAL_CHECKPOINT_PAGES`);
the daemon's checkpoint gives the pages retention freed back to the file system,
a few at a time (:func:`release_free_pages`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path, *, busy_timeout: float = 30.0, readonly: bool = False,
            create: bool = True) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with full durability on commit (``create``: make it if missing)."""
    if readonly or not create:
        mode = "ro" if readonly else "rw"
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True,
                               timeout=busy_timeout,
                               isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                               check_same_thread=False)
        # 8 KiB pages (a new database only): a message's row (input and eCH-0223 text,
        # about 7 KiB) is one page, not a page and an overflow page, so a commit writes
        # the same bytes in about half as many WAL frames (one pwrite each)
        conn.execute("PRAGMA page_size=8192")
        # pages freed by retention go back to the file system bit by bit (checkpoint())
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


def cannot_open(path: Path, exc: sqlite3.Error) -> str:
    """Why ``path`` cannot be opened, for one line: SQLite's reason, and where it says the
    file or its folder cannot be written (a reader makes ``-shm`` and ``-wal`` beside a
    database no process has open), what to do."""
    why = f"cannot open the database {path}: {exc}"
    if any(words in str(exc) for words in ("unable to open", "readonly", "read-only")):
        why += (f"; a command reading or writing it needs to write in {path.parent} (beside"
                " the database, its -shm and -wal files): run it as the gateway's user"
                " (sudo -u ech-gateway ...)")
    return why


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction on ``conn``: its queries see the database as the first found it.

    Cheap in WAL mode: the writer goes on meanwhile, and a checkpoint leaves only the
    pages written since it began in the WAL, until it ends. Inside another (a
    transaction open on ``conn``), it is that one's.
    """
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def tune_writer(conn: sqlite3.Connection) -> None:
    """Make ``conn`` the store's writer: plain tuples, its own checkpoints, undo in memory."""
    conn.row_factory = None
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    # each operation runs under a savepoint, whose undo copies go to a temporary
    # file unless kept in memory (they are never needed after a crash: WAL is)
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-16384")


#: WAL pages after which a commit checkpoints, in the commit thread (8 KiB each). The
#: writer checkpoints itself, between its commits, so that the checkpoint reaches the
#: WAL's end and the next commit starts the WAL over: a checkpoint beside a writer that
#: never pauses never catches up, and the WAL grew by every byte written (half a GB per
#: 20,000 inputs), each write extending the file (new blocks, zeroed, then copied).
WAL_CHECKPOINT_PAGES = 4096

#: Free pages given back to the file system per checkpoint (8 KiB each): a few MiB at a
#: time, so that the writer waits briefly for the lock this takes.
RELEASE_PAGES = 512


def release_free_pages(conn: sqlite3.Connection) -> None:
    """Give up to :data:`RELEASE_PAGES` free pages back to the file system (databases made
    with ``auto_vacuum=INCREMENTAL``; older ones shrink only by a ``VACUUM``: README,
    "Retention and disk space")."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        return
    if conn.execute("PRAGMA freelist_count").fetchone()[0]:
        # (a script: execute() would step it once, which frees one page)
        conn.executescript(f"PRAGMA incremental_vacuum({RELEASE_PAGES});")
