"""File-system primitives with the fewest system calls: whole small files, no-clobber renames, syncfs.

Python's ``open()`` adds an ``fstat``, an ``lseek`` and an ``ioctl`` to every
file it opens; at thousands of files a second on a slow file system that
is a tenth of the gateway's time. These helpers use ``os.open`` directly,
and ``renameat2``/``syncfs`` through ctypes where Linux has them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gateway.folder_checks import resolved

_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
_CHUNK = 1 << 20
#: The :meth:`Evidence.meta` key of the bytes kept: an input whose metadata has it is
#: evidence of an input over its limit, not a document (its header is not read either).
KEPT_BYTES = "kept_bytes"


def read_file(path: Path | str, cap: int) -> bytes | None:
    """The bytes of ``path`` (never following a symlink), or ``None`` beyond ``cap`` bytes."""
    fd = os.open(path, _READ)
    try:
        return read_open(fd, cap)
    finally:
        os.close(fd)


def read_open(fd: int, cap: int) -> bytes | None:
    """The rest of the open file ``fd``, or ``None`` beyond ``cap`` bytes (read no further)."""
    parts = []
    size = 0
    while chunk := os.read(fd, min(_CHUNK, cap + 1 - size) or 1):
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            return None
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is kept of an input too large to take: its first bytes, its size and hash."""

    data: bytes
    size: int
    sha256: str

    @property
    def whole(self) -> bool:
        """Whether ``data`` is all of the input."""
        return len(self.data) == self.size

    @classmethod
    def of(cls, data: bytes, keep: int) -> Evidence:
        """What is kept of ``data``, an input in memory over its limit: its first ``keep`` bytes."""
        return cls(data[:keep], len(data), hashlib.sha256(data).hexdigest())

    def meta(self) -> dict[str, str]:
        """Facts about the whole input, for the stored input's metadata."""
        return {"size": str(self.size), "sha256": self.sha256, KEPT_BYTES: str(len(self.data))}

    def note(self) -> str:
        """What of the input the store keeps, for a rejection reason."""
        if self.whole:
            return ""
        return (f"; the store keeps its first {len(self.data)} bytes ([limits] max_kept_bytes)"
                f" and its SHA-256 {self.sha256}")


def read_evidence(path: Path | str, cap: int) -> Evidence:
    """The first ``cap`` bytes of ``path``, with the whole file's size and SHA-256.

    Memory stays bounded by ``cap`` however large the file is.
    """
    fd = os.open(path, _READ)
    try:
        return evidence_open(fd, cap)
    finally:
        os.close(fd)


def evidence_open(fd: int, cap: int) -> Evidence:
    """:func:`read_evidence` of the rest of the open file ``fd``.

    The kept bytes are read in one piece, then the rest streams through the
    digest: memory peaks at ``cap`` plus one chunk.
    """
    digest = hashlib.sha256()
    kept = b""
    while len(kept) < cap and (chunk := os.read(fd, cap - len(kept))):
        kept = chunk if not kept else kept + chunk  # one read unless a short one
    digest.update(kept)
    size = len(kept)
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return Evidence(kept, size, digest.hexdigest())


def write_file(path: Path | str, data: bytes, mode: int = 0o644) -> None:
    """Create (or truncate) ``path`` and write ``data`` to it; no fsync."""
    fd = os.open(path, _WRITE, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Make ``path`` hold ``data``, durably: the old content or the new, never a mix.

    Written to a hidden temporary beside it and fsynced, renamed over
    ``path``, then the folder is fsynced. For small state files (a cursor).
    """
    temp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temp, _WRITE, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path | str) -> None:
    """Make the names in ``folder`` durable (a file created, renamed or removed there)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
_syncfs = getattr(_libc, "syncfs", None)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_no_replace(src: Path | str, dest: Path | str) -> None:
    """Rename ``src`` to ``dest`` unless ``dest`` exists (then FileExistsError).

    One ``renameat2(RENAME_NOREPLACE)`` on Linux; elsewhere a hard link and
    an unlink, which never overwrite either.
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest),
                      _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # else: not supported here, link instead
            raise OSError(err, os.strerror(err), str(src), None, str(dest))
    os.link(src, dest)
    os.unlink(src)


def move_unique(src: Path | str, dest_dir: Path | str, *, make_dir: bool = True) -> Path:
    """Move ``src`` into ``dest_dir``, adding ``-1``, ``-2``... on a name clash; return where.

    An existing file is never overwritten, even by a concurrent writer: one
    ``renameat2(RENAME_NOREPLACE)`` on Linux, else a hard link and an unlink;
    where neither works (another file system) it checks for the name first.
    ``make_dir=False`` skips creating ``dest_dir`` (a caller moving many files
    creates it once).
    """
    if make_dir:
        os.makedirs(dest_dir, exist_ok=True)
    name = os.path.basename(src)  # (on text: most moves are one rename, no paths made)
    stem, dot, ext = name.partition(".")
    n = 0
    while True:
        dest = os.path.join(dest_dir, name if n == 0 else f"{stem}-{n}{dot}{ext}")
        n += 1
        try:
            rename_no_replace(src, dest)
        except FileExistsError:
            continue
        except OSError:
            if os.path.exists(dest):
                continue
            shutil.move(src, dest)
        return Path(dest)


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


def same_folder(a: Path, b: Path) -> bool:
    """Whether two paths name the same folder (after ``..`` and symbolic links).

    Each is resolved in a look given up on after a while (:mod:`gateway.folder_checks`).

    :raises ~gateway.errors.FolderHang: a folder did not answer in time (a share that is
        down): a :class:`ValueError`, in an options model's validator the key's problem.
    """
    return resolved(a) == resolved(b)
