"""Waking up when files appear in a directory: inotify events, polling as fallback.

On Linux the watcher reads inotify directly on the event loop (one
non-blocking read drains a whole burst of events); elsewhere, or when the
kernel refuses a watch, it polls every ``poll_interval``. Readers never
rely on the events for correctness: they rescan the directory, so a lost
or coalesced event only delays a file until the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
#: A file was written and closed, moved in, or created (a link or a rename target).
_IN_MASK = 0x00000008 | 0x00000080 | 0x00000100


def is_hidden_or_temporary(name: str) -> bool:
    """True for names a reader must skip: hidden, temporary or partial files."""
    return name.startswith((".", "~")) or name.endswith((".tmp", ".part", ".partial", "~"))


def ready_files(directory: Path, *, prefix: str = "",
                suffix: str = "") -> Iterator[os.DirEntry[str]]:
    """Regular, non-hidden files of ``directory`` matching ``prefix``/``suffix``."""
    with os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if is_hidden_or_temporary(name):
                continue
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            if entry.is_file(follow_symlinks=False):
                yield entry


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class DirWatcher:
    """Wakes a waiting task when a file is written, created or moved into ``directory``."""

    def __init__(self, directory: Path, poll_interval: float = 1.0) -> None:
        self.directory = directory
        self.poll_interval = poll_interval
        self._event = asyncio.Event()
        self._fd: int | None = None

    def start(self) -> None:
        """Start watching; falls back to polling when inotify is unavailable."""
        libc = _libc()
        if libc is None:
            return
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(self.directory), _IN_MASK) < 0:
            err = ctypes.get_errno()
            if fd >= 0:
                os.close(fd)
            log.warning("no inotify for %s (%s); polling every %.1fs",
                        self.directory, os.strerror(err), self.poll_interval)
            return
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._drain)

    def _drain(self) -> None:
        assert self._fd is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 65536):
                pass
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Return on the next file event or after ``poll_interval`` (or ``timeout``, if shorter)."""
        wait = self.poll_interval if timeout is None else min(timeout, self.poll_interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), wait)
        self._event.clear()

    def stop(self) -> None:
        """Stop watching."""
        if self._fd is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
