"""The database file the store opened, and the journal anchor beside it.

The store writes into the file it opened and no other: one deleted or replaced
while the daemon runs (a backup restored over it) makes the store lost
(:class:`~gateway.errors.StoreLost`), and nothing more is written. The journal's
head is anchored outside the database (``gateway.db.anchor``, :mod:`gateway.store.anchor`)
at start, every few seconds when it moved, and at stop, so that a database put
back from an older backup is told from the one the anchor names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from gateway.errors import StoreLost, StoreUnavailable
from gateway.store import journal
from gateway.store.anchor import Anchor, write_anchor

#: The store's logger: the head at start and stop is said as the store says it.
log = logging.getLogger("gateway.store.sqlite")


class DatabaseFile:
    """The database at ``path`` as opened: its file's identity, its journal's anchor."""

    def __init__(self, path: Path, clock: Callable[[], float],
                 on_lost: Callable[[StoreLost], None] | None) -> None:
        self.path = path
        #: Why the store is lost, once it is: nothing more is written.
        self.lost: StoreLost | None = None
        #: The database's identity, random, made with it (once opened).
        self.identity = ""
        self._clock = clock
        self._on_lost = on_lost
        self._file: tuple[int, int] | None = None  # (device, inode) of the database opened
        self._anchored: tuple[int, str] | None = None

    def opened(self, conn: sqlite3.Connection) -> None:
        """Remember the file just opened on ``conn`` and the database's identity."""
        self.identity = journal.identity(conn) or ""
        st = os.stat(self.path)
        self._file = (st.st_dev, st.st_ino)

    def same(self) -> bool:
        """Whether the file at ``path`` is the database opened (``False``: none is there)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._file

    def check(self) -> None:
        """Raise :class:`StoreLost` unless ``path`` is still the database opened."""
        if self.lost is not None:
            raise self.lost
        if self.same():
            return
        why = "replaced" if self.path.exists() else "deleted"
        self.lost = StoreLost(f"the database {self.path} was {why} while running")
        if self._on_lost is not None:
            self._on_lost(self.lost)
        raise self.lost

    def anchor(self, conn: sqlite3.Connection, always: bool = False) -> Anchor | None:
        """The anchor to write now, or ``None`` when the head has not moved."""
        seq, digest = journal.head(conn)
        if self._anchored == (seq, digest) and not always:
            return None
        self._anchored = (seq, digest)
        return Anchor(self.identity, seq, digest, self._clock())

    async def keep(self, anchor: Anchor | None) -> None:
        """Write ``anchor`` (the head read now, if it moved) in a thread.

        :raises StoreUnavailable: it cannot be written now (disk full); tried again next time.
        """
        if anchor is None:
            return
        try:
            await asyncio.to_thread(write_anchor, self.path, anchor)
        except OSError as exc:
            self._anchored = None
            raise StoreUnavailable(f"cannot write the journal anchor: {exc}") from exc

    def write_now(self, anchor: Anchor | None, when: str) -> None:
        """Write ``anchor`` now (at ``when``: start, stop) and log the head."""
        if anchor is None:
            return
        write_anchor(self.path, anchor)
        log.info("journal head at %s: entry %d, hash %s (database %s)", when, anchor.seq,
                 anchor.hash, anchor.identity)
