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
"""

from __future__ import annotations

from pathlib import Path

from gateway.bounded import BoundedCalls
from gateway.fileio import replace_durably

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


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_durably(path, data, mode)
