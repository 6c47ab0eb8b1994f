"""A polling source's cursor file in the gateway's data folder, read and written in bounded calls.

A source that polls a partner's outbox (REST, SOAP, a registry's events)
keeps where it is in a small file of the data folder: read at its start,
written durably (:func:`~gateway.fileio.replace_durably`) each time the
cursor moves, once what came before it is stored. The data folder may be on
a share that hangs: each read and write is a call of a
:class:`~gateway.bounded.BoundedCalls`, given up on after
:data:`CURSOR_TIMEOUT` as a :class:`~gateway.errors.TransientError`. The
source says so in its log and polls again later (what came since the last
cursor written comes again, which the store keeps as duplicates); nothing
else waits for the call: not the event loop, not the stop.

A source whose cursor file had another name in an earlier version takes the
old file over at its first read (:meth:`CursorFile.take_over`), so an upgrade
neither skips nor repeats what it polls.
"""

from __future__ import annotations

from pathlib import Path

from gateway.bounded import BoundedCalls
from gateway.fileio import rename_no_replace, replace_durably, sync_folder

#: Seconds reading or writing a cursor file may take (its folder may hang).
CURSOR_TIMEOUT = 60.0


class CursorFile:
    """The cursor file at ``path``, written with permissions ``mode``."""

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        self.path = path
        self.mode = mode
        #: Calls into its folder, bounded.
        self.calls = BoundedCalls(CURSOR_TIMEOUT)

    async def read(self) -> bytes | None:
        """What was written last; ``None`` while nothing was (a first start).

        :raises ~gateway.errors.TransientError: it was not read within :data:`CURSOR_TIMEOUT`
            (or a call given up on before has not returned yet).
        :raises OSError: it cannot be read.
        """
        return await self.calls.or_transient(_read, self.path,
                                             doing=f"reading its cursor {self.path}")

    async def write(self, data: bytes) -> None:
        """Replace what it holds with ``data``, durably (its folder is made if missing).

        :raises ~gateway.errors.TransientError: it was not written within
            :data:`CURSOR_TIMEOUT` (or a call given up on before has not returned yet).
        :raises OSError: it cannot be written.
        """
        await self.calls.or_transient(_write, self.path, data, self.mode,
                                      doing=f"writing its cursor {self.path}")

    async def take_over(self, old: Path) -> bool:
        """Make the file ``old`` (an earlier name of it) this cursor file, durably, unless this
        one exists already (it is the newer: ``old`` is left as it is); whether it did.

        :raises ~gateway.errors.TransientError: it was not done within :data:`CURSOR_TIMEOUT`
            (or a call given up on before has not returned yet).
        :raises OSError: ``old`` cannot be moved.
        """
        return await self.calls.or_transient(_take_over, old, self.path,
                                             doing=f"taking over {old} as its cursor {self.path}")


def _take_over(old: Path, path: Path) -> bool:
    """Rename ``old`` to ``path`` unless ``path`` exists (or ``old`` does not), then make
    the rename durable in both folders (and the folder made for ``path``, in its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        rename_no_replace(old, path)
    except (FileExistsError, FileNotFoundError):
        return False
    for folder in dict.fromkeys((path.parent, old.parent, path.parent.parent)):
        sync_folder(folder)
    return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes, mode: int) -> None:
    made = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_durably(path, data, mode)
    if made:  # the folder's own name, too, must survive a crash
        sync_folder(path.parent.parent)
