"""Files whose bytes the gateway stored: which version of a file that was, and moving it away.

What was stored of a file is a :class:`Stored`: its path, the :class:`Version`
read (size, times, inode) and the bytes' digest. :func:`finish` moves files
away only while they are still those bytes: a file rewritten meanwhile stays
(its reader takes it again, as a new input), and so does one a writer still
writes into while it is moved.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from gateway.fileio import move_unique

#: How readers open a file they did not write: never through a symbolic link, never
#: waiting on a FIFO.
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_DIGEST_CHUNK = 1 << 20


class Version(NamedTuple):
    """What identifies one state of a file: any write or replacement changes it.

    (Named tuples, here and in :class:`Stored`: a reader hands many of them
    to a worker process, and they pickle three times faster than dataclasses.)
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> Version:
        """The version an ``lstat``/``fstat`` result describes."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    @property
    def changed_at(self) -> float:
        """When the file last changed (content or metadata), in seconds since the epoch."""
        return max(self.mtime_ns, self.ctime_ns) / 1e9


class Stored(NamedTuple):
    """A file whose bytes are stored: what must still be there to move it away."""

    path: str
    version: Version
    sha256: str


@dataclass(frozen=True, slots=True)
class Left:
    """Stored files that were not moved away.

    :param changed: ``True`` when they changed after they were read (they are
        taken again as new input); ``False`` when the move failed.
    """

    names: tuple[str, ...]
    why: str
    changed: bool


def finish(groups: Sequence[tuple[Sequence[Stored], Path | None]]) -> list[Left]:
    """Move each group of stored files into its folder (``None``: delete them).

    All files of a group move, or none: a group any file of which changed
    since it was read stays where it is (to be taken again), as does one
    whose move fails. A file gone already is fine. Runs in a worker process
    too: it returns what it left instead of logging.
    """
    lefts = []
    made: set[Path] = set()
    for stored, dest in groups:
        names = tuple(os.path.basename(s.path) for s in stored)
        try:
            if dest is not None and dest not in made:
                dest.mkdir(parents=True, exist_ok=True)
                made.add(dest)
            checked = [_check(s) for s in stored]
            changed = next((c for c in checked if isinstance(c, str)), None)
            if changed is None:
                moved = [_move(s, c, dest) for s, c in zip(stored, checked, strict=True)]
                changed = next((why for why in moved if why is not None), None)
        except OSError as exc:
            lefts.append(Left(names, str(exc), False))
            continue
        if changed is not None:
            lefts.append(Left(names, changed, True))
    return lefts


def _check(stored: Stored) -> os.stat_result | str | None:
    """The file as it is if it holds the bytes stored, else how it differs (``None``: gone)."""
    try:
        st = os.lstat(stored.path)
    except FileNotFoundError:
        return None
    now = Version.of(st)
    if now == stored.version:
        return st
    if now.size != stored.version.size:
        return f"{stored.version.size} bytes stored, {now.size} bytes now"
    if _digest(stored.path) != stored.sha256:
        return "same size, other bytes"
    return st


def _move(stored: Stored, checked: os.stat_result | str | None, dest: Path | None) -> str | None:
    """Move (or delete) one checked file; what changed during the move, if anything."""
    if not isinstance(checked, os.stat_result):
        return None  # gone already
    try:
        if dest is None:
            os.unlink(stored.path)
            return None
        moved = move_unique(stored.path, dest, make_dir=False)
    except FileNotFoundError:
        return None
    # a writer still holding the file open writes into the moved file: give it back
    after = os.lstat(moved)
    if (after.st_size, after.st_mtime_ns) == (checked.st_size, checked.st_mtime_ns):
        return None
    move_unique(moved, os.path.dirname(stored.path))
    return f"written to while it was moved to {dest}"


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, READ_FLAGS)
    try:
        while chunk := os.read(fd, _DIGEST_CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()
