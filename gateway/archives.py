"""Archived files: the copies plugins keep of what the gateway took, deleted in time.

A folder source moves each file it stored to its ``done_dir``, the sedex
transport each receipt it recorded to its ``receipts_archive``
(:attr:`~gateway.plugin_types.WritablePath.archive`). The store holds their
content, and retention deletes it from there; the copies go too,
``[retention] keep_files`` after each was moved to its folder (its change
time, which the move sets), so that neither the disk fills nor personal
data outlives the retention the operator set.

An archive folder is often on a network share, which may hang: the daemon
and ``ech-gateway prune`` delete in calls of :data:`BATCH` entries each, every
call given up on after the timeout of the folder's plugin (its
``write_timeout``; :class:`~gateway.bounded.BoundedCalls`). The daemon says so
in the log and tries again at the next run, the command names the folder and
fails. Nothing else waits for it: not the other folders, the rest of
retention or the stop.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.bounded import BoundedCalls
from gateway.config import CONFIGURATION, derived, format_duration, plugin_folders
from gateway.errors import FolderHang
from gateway.folder_checks import resolved
from gateway.wording import counted

log = logging.getLogger(__name__)

#: Seconds one call into an archive folder may take where its plugin names no timeout.
CALL_TIMEOUT = 60.0
#: Entries of an archive folder looked at in one call into it: a call is bounded in
#: time, and a large folder on a working share must not take longer than that.
BATCH = 1000


def archive_folders(settings: Any) -> dict[Path, float]:
    """The folders where the configured sources and partners archive files, each once, with
    the seconds one call into it may take (the longest its plugins give, else
    :data:`CALL_TIMEOUT`; ``settings`` as :func:`~gateway.config.check_plugin_options` left
    it)."""
    found: dict[Path, float] = {}
    for _key, folder in plugin_folders(settings):
        if folder.archive:
            timeout = CALL_TIMEOUT if folder.timeout is None else folder.timeout
            found[folder.path] = max(timeout, found.get(folder.path, 0.0))
    return found


def archive_problems(settings: Any) -> list[tuple[str, str, str]]:
    """Archive folders that hold what retention must not delete, as (file, key, reason).

    Retention deletes every old file in an archive folder and its subfolders: one
    that is, or holds, the database, a configuration file, the documents folder or
    another folder the gateway works in (``done_dir = "."``) would lose them. Each path
    is resolved in a look given up on after a while (a share that is down): one that does
    not answer is the archive folder's problem, naming it.
    """
    folders = plugin_folders(settings)
    kept = [("the database", settings.store.path),
            *(("the configuration file", Path(f)) for f in settings.config_files),
            ("the documents folder", settings.documents.dir)]
    # (archives may share a folder: partners of one sedex client share its receipts)
    others = [(f"the {f.key} folder derived from {'.'.join(k)}" if f.derived_from
               else f"the folder of {'.'.join(k)}", f.path) for k, f in folders if not f.archive]
    problems = []
    where = functools.cache(resolved)  # each path looked at once
    for key, folder in folders:
        if not folder.archive:
            continue
        try:
            problem = _holding(folder.path, [*kept, *others], where)
        except FolderHang as exc:
            problem = str(exc)
        if problem is not None:
            problems.append((CONFIGURATION, ".".join(key), derived(folder) + problem))
    return problems


def _holding(archive: Path, kept: list[tuple[str, Path]],
             where: Callable[[Path], Path]) -> str | None:
    """Why ``archive`` must not be an archive folder (it holds one of ``kept``: what, path),
    or ``None``; ``where`` resolves a path (:func:`~gateway.folder_checks.resolved`).

    :raises FolderHang: ``archive`` did not answer in time.
    """
    place = where(archive)
    for what, path in kept:
        try:
            found = where(path)
        except FolderHang as exc:
            return f"whether {archive} holds {what} cannot be told: {exc}"
        if found == place or place in found.parents:
            return (f"{archive} holds {what} ({path}): retention deletes the old files of an"
                    " archive folder and its subfolders; give it a folder of its own")
    return None


class ArchivedFiles:
    """The files in the archive folders, and which of them are due for deletion."""

    def __init__(self, folders: Mapping[Path, float], keep: float,
                 clock: Callable[[], float] = time.time) -> None:
        """:param folders: each with the seconds one call into it may take
            (:func:`archive_folders`).
        :param keep: seconds a file stays after it was moved to its folder; 0: forever.
        :param clock: the time now, as the file system's change times count it."""
        self.folders = tuple(folders)
        self.keep = keep
        self._clock = clock
        #: The calls into each folder, bounded (a share that hangs).
        self._calls = {folder: BoundedCalls(timeout) for folder, timeout in folders.items()}

    async def prune(self) -> int:
        """Delete the files due, folder by folder (:meth:`prune_in`); how many in all. A
        folder that fails, or does not answer in time, is logged and tried again next time."""
        if not self.keep:
            return 0
        total = 0
        for folder in self.folders:
            done = await self.prune_in(folder)
            if done.failed is not None:
                log.warning("retention: cannot delete old files in %s: %s", folder, done.failed)
            if done.count:
                log.info("retention: deleted %s archived in %s more than %s ago",
                         counted(done.count, "file"), folder, format_duration(self.keep))
            total += done.count
        return total

    async def prune_in(self, folder: Path, *, dry_run: bool = False) -> Pruned:
        """Delete the files due in ``folder`` (one of :attr:`folders`), or only count them,
        :data:`BATCH` entries per call into it, each call given up on after the folder's
        timeout (none are due while files are kept forever)."""
        if not self.keep:
            return Pruned(0)
        calls, before = self._calls[folder], self._clock() - self.keep
        entries = _walk(folder)  # walked in the calls' threads, one call at a time
        count, more = 0, True
        try:
            while more:
                some, more = await calls(_delete_some, entries, before, BATCH, dry_run)
                count += some
        except OSError as exc:  # (a call given up on too: TimeoutError)
            return Pruned(count, exc)
        return Pruned(count)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What :meth:`ArchivedFiles.prune_in` did in a folder: the files deleted (counted, in a
    dry run), and why it stopped short, if it did (``TimeoutError``: the folder did not
    answer in time)."""

    count: int
    failed: OSError | None = None


def _walk(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The entries under ``folder``, its subfolders' too (links not followed), each folder
    listed whole before its entries come (none while it is missing)."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return
    for entry in entries:
        yield entry
        try:
            below = entry.is_dir(follow_symlinks=False)
        except FileNotFoundError:  # deleted meanwhile
            continue
        if below:
            yield from _walk(Path(entry.path))


def _moved_before(entry: os.DirEntry[str], before: float) -> bool:
    """Whether ``entry`` is a regular file (not a link) whose change time is older than
    ``before``."""
    try:
        return (entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_ctime < before)
    except FileNotFoundError:  # deleted meanwhile
        return False


def _delete_some(entries: Iterator[os.DirEntry[str]], before: float, count: int,
                 dry_run: bool) -> tuple[int, bool]:
    """Delete the files moved there before ``before`` among the next ``count`` of ``entries``
    (or only count them: ``dry_run``); how many (one gone meanwhile is not counted), and
    whether entries are left."""
    deleted = looked = 0
    for entry in itertools.islice(entries, count):
        looked += 1
        if not _moved_before(entry, before):
            continue
        if dry_run:
            deleted += 1
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted, looked == count
