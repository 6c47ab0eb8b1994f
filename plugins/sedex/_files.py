"""File operations the sedex folders need: atomic writes, no-clobber moves, syncfs."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
from pathlib import Path

from gateway.fileio import write_file

log = logging.getLogger(__name__)


def write_then_rename(directory: Path, temp_name: str, final_name: str, data: bytes, *,
                      staging: Path | None = None) -> None:
    """Write ``data`` under ``temp_name``, then rename it to ``directory/final_name``.

    Readers never see a partial file. The temporary lives in ``staging`` when
    given (a folder on the same file system), else hidden in ``directory``:
    creating files in a folder that another process is scanning and emptying
    (the sedex client's outbox) waits for that folder's lock, while a rename
    into it is one short operation. Not fsynced: see :func:`sync_filesystem`.
    """
    temp = (staging or directory) / temp_name
    try:
        write_file(temp, data)
        os.replace(temp, directory / final_name)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def move_unique(src: Path, dest_dir: Path, *, make_dir: bool = True) -> Path:
    """Move ``src`` into ``dest_dir``, adding ``-1``, ``-2``... on a name clash.

    An existing file is never overwritten, even by a concurrent writer: one
    ``renameat2(RENAME_NOREPLACE)`` on Linux, else a hard link and an unlink;
    where neither works (another file system) it checks for the name first.
    ``make_dir=False`` skips creating ``dest_dir`` (a caller moving many files
    creates it once).
    """
    if make_dir:
        dest_dir.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = src.name.partition(".")
    n = 0
    while True:
        dest = dest_dir / (src.name if n == 0 else f"{stem}-{n}{dot}{ext}")
        n += 1
        try:
            _rename_no_replace(src, dest)
        except FileExistsError:
            continue
        except OSError:
            if dest.exists():
                continue
            shutil.move(src, dest)
        return dest


def _rename_no_replace(src: Path, dest: Path) -> None:
    """Rename, failing with FileExistsError where ``dest`` exists."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest),
                      _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # else: not supported here, link instead
            raise OSError(err, os.strerror(err), str(src), None, str(dest))
    os.link(src, dest)
    os.unlink(src)


def move_done(src: Path, dest_dir: Path, stuck: set[str]) -> Path | None:
    """Move a file whose content is stored; never raises.

    A file someone else moved meanwhile is fine. Any other failure is
    logged and ``src.name`` added to ``stuck``: the caller skips it from
    then on, so a stored file that cannot be moved is not stored again on
    every scan (it is taken again after a restart).
    """
    try:
        return move_unique(src, dest_dir)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("cannot move %s to %s (%s); skipping it until restart", src, dest_dir, exc)
        stuck.add(src.name)
        return None


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)
_renameat2 = getattr(_libc, "renameat2", None)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def sync_filesystem(directory: Path) -> None:
    """Make everything written to the file system of ``directory`` durable.

    One ``syncfs(2)`` call on Linux; ``sync(2)`` elsewhere.

    :raises OSError: when the kernel reports a write-back error.
    """
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(directory))
    finally:
        os.close(fd)
