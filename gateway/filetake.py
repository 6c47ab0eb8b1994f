"""Taking files that other programs write in place, in every folder the gateway reads.

Registry software, sedex clients and an operator's ``cp`` write files under
their final names, in several steps (FIELD.md). A :class:`FileTaker` lists
one folder and takes a file only when:

- it has *settled*: its size, modification and change times and inode were
  the same on two scans, and it has not changed for ``settle`` seconds
  (``settle = 0`` takes a file at first sight, for writers that rename into
  place);
- it looks *finished*: not empty, an XML document ends with its root's end
  tag, a zip with its end-of-central-directory record. An unfinished file is
  left for later scans and only after ``grace`` seconds without change is it
  handed over as :class:`Unfinished` (to be quarantined with that reason), or
  as :class:`Whole` if a finished file may look so too (a CSV header alone
  without its line end).

What was stored of a file is a :class:`~gateway.filestored.Stored`, which
:func:`~gateway.filestored.finish` moves away. Symbolic links, FIFOs, sockets and
devices are moved once into the folder's ``set-aside`` subfolder, with one
warning. Names that are not valid UTF-8 are shown escaped (``\\xNN``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gateway.completeness import unfinished
from gateway.dirwatch import is_hidden_or_temporary
from gateway.fileio import Evidence, evidence_open, move_unique, read_open
from gateway.filestored import READ_FLAGS, Left, Stored, Version

#: The subfolder of a read folder where entries that are not regular files go.
SET_ASIDE = "set-aside"
#: The most bytes of whole files a reader gathers before it stores them.
BATCH_BYTES = 16 << 20



_T = TypeVar("_T")


def name_matches(name: str, pattern: str) -> bool:
    """Whether the file name ``name`` matches the glob ``pattern``, in any case (``*.pdf``
    matches ``SCAN.PDF``): Windows software and scanners write names in capitals."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def display_name(name: str) -> str:
    """``name`` as valid text: bytes that are not UTF-8 are escaped as ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class Ready:
    """A settled file of the folder, ready to be read.

    :param name: the file name as listed (may hold escaped bytes: see :func:`display_name`).
    :param stable: seconds the file has been seen unchanged.
    """

    path: str
    name: str
    version: Version
    stable: float

    @property
    def shown(self) -> str:
        """The file name as valid text, for references and logs."""
        return display_name(self.name)

    @property
    def where(self) -> str:
        """The path as valid text, for reasons and logs."""
        return display_name(self.path)


@dataclass(frozen=True, slots=True)
class Whole:
    """A finished file read whole."""

    ready: Ready
    data: bytes
    stored: Stored


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A file over the reader's limit: not read (see :meth:`FileTaker.evidence`)."""

    ready: Ready


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A file still unfinished after ``grace``: quarantine ``data`` with :attr:`reason`."""

    ready: Ready
    data: bytes
    stored: Stored
    what: str

    @property
    def reason(self) -> str:
        """Why the file is refused: what is missing and where."""
        return (f"unfinished file {self.ready.where}: {self.what}; it did not change for"
                f" {self.ready.stable:.0f} s")


@dataclass(slots=True)
class Listing:
    """One scan of a folder.

    :param ready: settled files, in directory order.
    :param pending: names present but not ready yet (settling, or unfinished within grace).
    :param notes: warnings to log (entries set aside).
    :param wake: seconds until a pending file may become ready, if any is pending.
    """

    ready: list[Ready] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    wake: float | None = None

    def _wake_in(self, seconds: float) -> None:
        self.wake = seconds if self.wake is None else min(self.wake, seconds)


@dataclass(slots=True)
class FileTaker:
    """Lists and reads one folder for a reader (see the module docstring).

    Picklable, so a reader may scan in a worker process and keep the state:
    ``patterns`` are globs of the names to take, in any case (``*.csv`` takes
    ``EXPORT.CSV``); ``skip`` holds names not to take until restart (stored,
    but they could not be moved away).
    """

    folder: Path
    patterns: tuple[str, ...]
    settle: float
    grace: float
    skip: set[str] = field(default_factory=set)
    #: the last scan's :attr:`Listing.wake`: when to scan again, if a file is pending
    wake: float | None = None
    #: name -> (version, monotonic time it was first seen in that version)
    _seen: dict[str, tuple[Version, float]] = field(default_factory=dict)
    #: names found unfinished in this version, waiting for grace
    _waiting: dict[str, Version] = field(default_factory=dict)
    #: names that could not be set aside (warned about once)
    _stay: set[str] = field(default_factory=set)

    def scan(self) -> Listing:
        """One pass over the folder: what is ready, what is pending, what was set aside."""
        listing = Listing()
        now, mono = time.time(), time.monotonic()
        seen: dict[str, tuple[Version, float]] = {}
        waiting: dict[str, Version] = {}
        stay: set[str] = set()
        with os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                if (is_hidden_or_temporary(name) or name in self.skip
                        or not any(name_matches(name, p) for p in self.patterns)):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        self._set_aside(entry, listing, stay)
                        continue
                    version = Version.of(entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue
                before = self._seen.get(name)
                since = before[1] if before is not None and before[0] == version else mono
                if self.settle:  # else nothing waits for a second scan: keep the state small
                    seen[name] = (version, since)
                stable = max(now - version.changed_at, mono - since)
                if self._waiting.get(name) == version and stable < self.grace:
                    waiting[name] = version
                    listing.pending.add(name)
                    listing._wake_in(self.grace - stable)
                elif self.settle and (since == mono or stable < self.settle):
                    listing.pending.add(name)
                    listing._wake_in(max(self.settle - stable, self.settle / 10))
                else:
                    listing.ready.append(Ready(entry.path, name, version, stable))
        self._seen, self._waiting, self._stay = seen, waiting, stay
        self.wake = listing.wake
        return listing

    def _set_aside(self, entry: os.DirEntry[str], listing: Listing, stay: set[str]) -> None:
        """Move an entry that is not a regular file into ``set-aside`` (warn once)."""
        name = entry.name
        where = display_name(entry.path)
        kind = _kind(entry.stat(follow_symlinks=False).st_mode)
        if name in self._stay:
            stay.add(name)
            return
        try:
            dest = move_unique(Path(entry.path), self.folder / SET_ASIDE)
        except FileNotFoundError:
            return
        except OSError as exc:
            stay.add(name)
            listing.notes.append(f"{where} is {kind}, not a regular file, and cannot be set"
                                 f" aside ({exc}); it is left there and not taken")
            return
        listing.notes.append(f"{where} is {kind}, not a regular file: not taken, set aside"
                             f" as {display_name(str(dest))}")

    def read(self, ready: Ready, cap: int) -> Whole | TooLarge | Unfinished | None:
        """Read a ready file of at most ``cap`` bytes.

        ``None``: not now (it changed or vanished since the scan, or it is
        unfinished and younger than ``grace``); a later scan offers it again.
        """
        if ready.version.size > cap:
            return TooLarge(ready) if _unchanged(ready, os.fstat) is not None else None
        data = _unchanged(ready, lambda fd: read_open(fd, cap))
        if data is None:
            return None
        stored = Stored(ready.path, ready.version, hashlib.sha256(data).hexdigest())
        what = unfinished(data, settled=ready.stable >= self.grace)
        if what is None:
            return Whole(ready, data, stored)
        if ready.stable < self.grace:
            self._waiting[ready.name] = ready.version
            return None
        return Unfinished(ready, data, stored, what)

    def evidence(self, ready: Ready, keep: int) -> tuple[Evidence, Stored] | None:
        """What is kept of a :class:`TooLarge` file: its first ``keep`` bytes, size, SHA-256.

        Memory stays bounded by ``keep``. ``None``: it changed meanwhile.
        """
        evidence = _unchanged(ready, lambda fd: evidence_open(fd, keep))
        if evidence is None:
            return None
        return evidence, Stored(ready.path, ready.version, evidence.sha256)

    def left(self, lefts: Sequence[Left]) -> list[str]:
        """Note files :func:`finish` left: failed moves are skipped until restart.

        Returns one message per group, for the reader's log.
        """
        messages = []
        for left in lefts:
            shown = ", ".join(display_name(os.path.join(self.folder, n)) for n in left.names)
            if left.changed:
                messages.append(f"{shown} changed after it was stored ({left.why});"
                                " left in place to be taken again as new input")
            else:
                self.skip.update(left.names)
                messages.append(f"cannot move {shown} away after storing it ({left.why});"
                                " skipping it until restart")
        return messages


def _unchanged(ready: Ready, use: Callable[[int], _T | None]) -> _T | None:
    """``use`` the open file while it is the version the scan saw; ``None`` if it is not (any more)."""
    try:
        fd = os.open(ready.path, READ_FLAGS)
    except FileNotFoundError:
        return None
    try:
        if Version.of(os.fstat(fd)) != ready.version:
            return None
        result = use(fd)
        if result is None or Version.of(os.fstat(fd)) != ready.version:
            return None
        return result
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


