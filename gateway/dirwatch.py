"""Waking up when files appear in a directory: inotify events, polling as fallback.

On Linux the watcher reads inotify directly on the event loop (one
non-blocking read drains a whole burst of events); elsewhere, or when the
kernel refuses a watch, it polls every ``poll_interval``. Readers never
rely on the events for correctness: they rescan the directory, so a lost
or coalesced event only delays a file until the next poll.

Adding the watch looks the directory up, which waits as long as a network
share that hangs: it is a bounded call (:class:`~gateway.bounded.BoundedCalls`),
given up on like the reader's others, and tried again at its next scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from gateway.bounded import BoundedCalls

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
        #: Whether it watches, or polls for good (no inotify): :meth:`start` is done.
        self._started = False

    async def start(self, calls: BoundedCalls) -> None:
        """Start watching, unless started already; falls back to polling when inotify is
        unavailable. The watch is added in a call of ``calls``, those into the directory.

        :raises ~gateway.errors.TransientError: the directory did not answer in time
            (:meth:`~gateway.bounded.BoundedCalls.or_transient`): it polls meanwhile, and
            the next ``start`` tries again.
        """
        if self._started:
            return
        libc = _libc()
        if libc is None:
            self._started = True
            return
        if self._fd is None:  # kept while the watch is not added: the next start adds it
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                self._poll(ctypes.get_errno())
                return
            self._fd = fd
        err = await calls.or_transient(_add_watch, libc, self._fd, self.directory,
                                       doing=f"watching {self.directory}")
        if err:
            self._close()
            self._poll(err)
            return
        self._started = True
        asyncio.get_running_loop().add_reader(self._fd, self._drain)

    def _poll(self, err: int) -> None:
        """Poll for good: the kernel refused inotify (error number ``err``)."""
        self._started = True
        log.warning("no inotify for %s (%s); polling every %.1fs",
                    self.directory, os.strerror(err), self.poll_interval)

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
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (a watch still being added holds its own reference)
            self._fd = None


def _add_watch(libc: ctypes.CDLL, fd: int, directory: Path) -> int:
    """Watch ``directory`` on the inotify descriptor ``fd``; 0, or the error number."""
    if libc.inotify_add_watch(fd, os.fsencode(directory), _IN_MASK) < 0:
        return ctypes.get_errno() or errno.EIO
    return 0
