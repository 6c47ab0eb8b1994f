"""The journal's anchor: its head kept outside the database, in a small file beside it.

The daemon writes ``<database>.anchor`` at start, every few seconds and at
stop: the database's identity and the journal's last entry (sequence number
and hash). A database deleted, replaced by another, or restored from an
older backup no longer reaches the anchor, and ``journal verify`` says so
(:func:`gateway.store.journal.against_anchor`). The anchor may lag behind
the database (it is written after commits), never run ahead of it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from gateway.errors import StoreLost
from gateway.fileio import write_file


@dataclass(frozen=True, slots=True)
class Anchor:
    """The journal head a database reached, as last recorded outside it."""

    identity: str
    seq: int
    hash: str
    at: float


def anchor_path(db: Path) -> Path:
    """Where the anchor of the database ``db`` lives."""
    return db.with_name(db.name + ".anchor")


def read_anchor(db: Path) -> Anchor | None:
    """The anchor of ``db``, or ``None`` if it has none yet.

    :raises StoreLost: the anchor file is there but unreadable.
    """
    path = anchor_path(db)
    try:
        fields = orjson.loads(path.read_bytes())
        return Anchor(str(fields["identity"]), int(fields["seq"]), str(fields["hash"]),
                      float(fields["at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreLost(f"the journal anchor {path} cannot be read: {exc}") from exc


def write_anchor(db: Path, anchor: Anchor) -> None:
    """Replace the anchor of ``db`` atomically and durably.

    Each writer (the daemon, a command-line tool, in any thread) writes its
    own temporary file: two writing at once must not rename each other's.
    """
    path = anchor_path(db)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    write_file(temp, orjson.dumps(asdict(anchor)) + b"\n")
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
