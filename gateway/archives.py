"""Archived files: the copies plugins keep of what the gateway took, deleted in time.

A folder source moves each file it stored to its ``done_dir``, the sedex
transport each receipt it recorded to its ``receipts_archive``
(:attr:`~gateway.plugin_types.WritablePath.archive`). The store holds their
content, and retention deletes it from there; the copies go too,
``[retention] keep_files`` after each was moved to its folder (its change
time, which the move sets), so that neither the disk fills nor personal
data outlives the retention the operator set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.config import CONFIGURATION, derived, format_duration, plugin_folders
from gateway.wording import counted

log = logging.getLogger(__name__)


def archive_folders(settings: Any) -> list[Path]:
    """The folders where the configured sources and partners archive files, each once
    (``settings`` as :func:`~gateway.config.check_plugin_options` left it)."""
    return list(dict.fromkeys(folder.path for _key, folder in plugin_folders(settings)
                              if folder.archive))


def archive_problems(settings: Any) -> list[tuple[str, str, str]]:
    """Archive folders that hold what retention must not delete, as (file, key, reason).

    Retention deletes every old file in an archive folder and its subfolders: one
    that is, or holds, the database, a configuration file, the documents folder or
    another folder the gateway works in (``done_dir = "."``) would lose them.
    """
    folders = plugin_folders(settings)
    kept = [("the database", settings.store.path),
            *(("the configuration file", Path(f)) for f in settings.config_files),
            ("the documents folder", settings.documents.dir)]
    # (archives may share a folder: partners of one sedex client share its receipts)
    others = [(f"the {f.key} folder derived from {'.'.join(k)}" if f.derived_from
               else f"the folder of {'.'.join(k)}", f.path) for k, f in folders if not f.archive]
    problems = []
    for key, folder in folders:
        if not folder.archive:
            continue
        archive = folder.path.resolve()
        held = [(what, path) for what, path in (*kept, *others)
                if path.resolve() == archive or archive in path.resolve().parents]
        if held:
            what, path = held[0]
            problems.append((CONFIGURATION, ".".join(key),
                             f"{derived(folder)}{folder.path} holds {what} ({path}): retention"
                             " deletes the old"
                             " files of an archive folder and its subfolders; give it a folder"
                             " of its own"))
    return problems


class ArchivedFiles:
    """The files in the archive folders, and which of them are due for deletion."""

    def __init__(self, folders: Sequence[Path], keep: float,
                 clock: Callable[[], float] = time.time) -> None:
        """:param keep: seconds a file stays after it was moved to its folder; 0: forever.
        :param clock: the time now, as the file system's change times count it."""
        self.folders = tuple(folders)
        self.keep = keep
        self._clock = clock

    def due(self) -> dict[Path, list[str]]:
        """The files due for deletion, by folder (none while kept forever)."""
        if not self.keep:
            return {}
        before = self._clock() - self.keep
        return {folder: _moved_before(folder, before) for folder in self.folders}

    def delete_due(self) -> dict[Path, int]:
        """Delete the files due; how many were deleted in each folder.

        :raises OSError: a folder could not be read, or a file not deleted.
        """
        if not self.keep:
            return {}
        return {folder: self._delete_due_in(folder) for folder in self.folders}

    async def prune(self) -> int:
        """:meth:`delete_due` in a thread, folder by folder; how many in all. A folder that
        fails is logged and tried again next time."""
        if not self.keep:
            return 0
        total = 0
        for folder in self.folders:
            try:
                deleted = await asyncio.to_thread(self._delete_due_in, folder)
            except OSError as exc:
                log.warning("retention: cannot delete old files in %s: %s", folder, exc)
                continue
            if deleted:
                log.info("retention: deleted %s archived in %s more than %s ago",
                         counted(deleted, "file"), folder, format_duration(self.keep))
            total += deleted
        return total

    def _delete_due_in(self, folder: Path) -> int:
        return _delete(_moved_before(folder, self._clock() - self.keep))


def _moved_before(folder: Path, before: float) -> list[str]:
    """The regular files under ``folder`` (subfolders too, links not followed) whose change
    time is older than ``before``."""
    old: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return old
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                old += _moved_before(Path(entry.path), before)
            elif (entry.is_file(follow_symlinks=False)
                  and entry.stat(follow_symlinks=False).st_ctime < before):
                old.append(entry.path)
        except FileNotFoundError:  # deleted meanwhile
            continue
    return old


def _delete(paths: Sequence[str]) -> int:
    """Delete ``paths``; how many (one gone meanwhile is not counted)."""
    deleted = 0
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted
