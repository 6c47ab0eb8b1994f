"""Writing into the sedex outbox: files appear whole, under their final names."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from gateway.api import write_all, write_file

log = logging.getLogger(__name__)


def write_then_rename(directory: Path, temp_name: str, final_name: str, data: bytes, *,
                      staging: Path | None = None) -> None:
    """Write ``data`` under ``temp_name``, then rename it to ``directory/final_name``.

    Readers never see a partial file. The temporary lives in ``staging`` when
    given (a folder on the same file system), else hidden in ``directory``:
    creating files in a folder that another process is scanning and emptying
    (the sedex client's outbox) waits for that folder's lock, while a rename
    into it is one short operation. Not fsynced: see :func:`gateway.fileio.sync_filesystem`.
    """
    temp = (staging or directory) / temp_name
    try:
        try:
            write_file(temp, data)
        except FileNotFoundError:
            if staging is None or not directory.is_dir():
                raise
            staging.mkdir(exist_ok=True)  # the outbox was deleted and created again
            write_file(temp, data)
        os.replace(temp, directory / final_name)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def publish(directory: Path | str, name: str, data: bytes, *, staging: Path | str) -> None:
    """Make ``directory/name`` appear with all of ``data`` at once; replaces an older one.

    Linux: an unnamed file (``O_TMPFILE``) in ``staging`` is written, then
    linked into ``directory`` under its name. Nobody ever sees a partial or
    temporary file, a crash leaves nothing behind, and no cross-directory
    rename takes the file system's rename lock, which the sedex client's own
    moves out of the outbox contend for. Elsewhere, or where the file system
    has no ``O_TMPFILE``: :func:`write_then_rename` through ``staging``. Not
    fsynced: see :func:`gateway.fileio.sync_filesystem`.

    A ``staging`` folder that vanished (the outbox was deleted and created
    again) is created again, as long as ``directory`` exists. (The folders may be
    given as text: a batch of attempts makes them text once.)
    """
    try:
        fd = _unnamed_file(staging)
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise
        Path(staging).mkdir(exist_ok=True)
        fd = _unnamed_file(staging)
    if fd is None:
        write_then_rename(Path(directory), f".tmp-{name}", name, data, staging=Path(staging))
        return
    try:
        write_all(fd, data)
        target = os.path.join(directory, name)
        fds = _proc_fds()
        try:
            os.link(str(fd), target, src_dir_fd=fds, follow_symlinks=True)
        except FileExistsError:  # a repeated attempt rewrites its payload
            os.unlink(target)
            os.link(str(fd), target, src_dir_fd=fds, follow_symlinks=True)
    finally:
        os.close(fd)


#: Whether O_TMPFILE + linkat through /proc works here (None: not tried yet).
_tmpfile_works: bool | None = None
_proc_fd_dir: tuple[int, int] | None = None  # (pid, fd of /proc/self/fd)


def _unnamed_file(folder: Path | str) -> int | None:
    """A writable unnamed file on ``folder``'s file system, or None where there is none.

    :raises FileNotFoundError: ``folder`` is missing (that says nothing about O_TMPFILE).
    """
    global _tmpfile_works
    if _tmpfile_works is False or not hasattr(os, "O_TMPFILE"):
        return None
    try:
        if _tmpfile_works is None:
            _proc_fds()  # without /proc, linkat cannot name the file
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
        log.info("no O_TMPFILE on %s (%s): publishing through temporary names", folder, exc)
        _tmpfile_works = False
        return None
    _tmpfile_works = True
    return fd


def _proc_fds() -> int:
    """A descriptor of this process's ``/proc/self/fd`` (linkat follows its entries)."""
    global _proc_fd_dir
    pid = os.getpid()
    if _proc_fd_dir is None or _proc_fd_dir[0] != pid:
        _proc_fd_dir = (pid, os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    return _proc_fd_dir[1]
