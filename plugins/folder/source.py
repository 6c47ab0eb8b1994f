"""Reading a drop folder: store every file, then move it to ``done_dir`` (or delete it)."""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gateway.api import (
    DirWatcher,
    Duration,
    Intake,
    PluginContext,
    RawInput,
    WorkerLost,
    WritablePath,
    read_evidence,
    read_file,
    ready_files,
    rename_no_replace,
    same_folder,
)

log = logging.getLogger(__name__)


class FolderOptions(BaseModel):
    """The keys of a ``type = "folder"`` source."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="directory the registry drops files into")
    pattern: str = Field("*.xml", description="glob of the file names to take")
    done_dir: Path | None = Field(
        None, description="where taken files go once stored; unset deletes them")
    poll_interval: Duration = Field(1.0, gt=0, description="seconds between scans when no event")
    batch_size: int = Field(500, ge=1, description="files stored per transaction at most")
    settle: Duration = Field(
        0.0, ge=0, description="seconds a file must be unmodified before it is taken;"
        " set it when the registry writes in place instead of renaming")

    @field_validator("done_dir")
    @classmethod
    def _check_done_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = info.data.get("path")
        if value is not None and path is not None and same_folder(value, path):
            raise ValueError("is the drop folder itself; files moved there would be taken again")
        return value

    def writable_paths(self) -> list[WritablePath]:
        """The drop folder (files are moved out of it) and ``done_dir``; the source creates both."""
        folders = [WritablePath("path", self.path, created=True)]
        if self.done_dir is not None:
            folders.append(WritablePath("done_dir", self.done_dir, created=True))
        return folders


class FolderSource:
    """A :class:`~gateway.contracts.Source` over one drop folder."""

    def __init__(self, options: FolderOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        self.max_bytes = context.normalise.max_bytes
        self.max_kept = context.normalise.max_kept_bytes
        self.offload = context.offload

    async def run(self, intake: Intake) -> None:
        """Take files as they appear until cancelled."""
        opts = self.options
        opts.path.mkdir(parents=True, exist_ok=True)
        if opts.done_dir is not None:
            opts.done_dir.mkdir(parents=True, exist_ok=True)
        watcher = DirWatcher(opts.path, opts.poll_interval)
        watcher.start()
        try:
            while True:
                backlog = self.scan()
                if not backlog:
                    await watcher.wait()
                for start in range(0, len(backlog), opts.batch_size):
                    await self.take(intake, backlog[start:start + opts.batch_size])
        finally:
            watcher.stop()

    def scan(self) -> list[Path]:
        """Every file ready to take, oldest first (one directory pass for a whole backlog)."""
        opts = self.options
        now = time.time()
        found = []
        for entry in ready_files(opts.path):
            if not fnmatch.fnmatch(entry.name, opts.pattern):
                continue
            mtime = entry.stat().st_mtime
            if opts.settle and now - mtime < opts.settle:
                continue
            found.append((mtime, entry.name))
        found.sort()
        return [opts.path / name for _mtime, name in found]

    async def take(self, intake: Intake, paths: list[Path]) -> None:
        """Store ``paths`` (too large ones as quarantined), then move them away."""
        raws = []
        for path in paths:
            try:
                data = read_file(path, self.max_bytes)
                if data is None:
                    await self._quarantine_oversized(intake, path)
                    continue
            except FileNotFoundError:
                continue  # taken away by someone else meanwhile
            raws.append((path, RawInput(self.name, path.name, data,
                                        {"content_type": _content_type(path)})))
        if raws:
            await intake.submit([raw for _path, raw in raws])
            # moving them is kernel time the event-loop process need not spend
            stored = [str(path) for path, _raw in raws]
            try:
                await self.offload(finish_files, stored, self.options.done_dir)
            except WorkerLost:  # stored already: move them here rather than take them again
                finish_files(stored, self.options.done_dir)


    async def _quarantine_oversized(self, intake: Intake, path: Path) -> None:
        """Store what ``[limits] max_kept_bytes`` allows of a file over the limit, as evidence."""
        evidence = read_evidence(path, self.max_kept)
        meta = {"content_type": _content_type(path), **evidence.meta()}
        await intake.quarantine(
            RawInput(self.name, path.name, evidence.data, meta),
            f"document of {evidence.size} bytes is larger than the limit of {self.max_bytes}"
            f" bytes ([limits] max_document_bytes){evidence.note()}")
        finish_files([str(path)], self.options.done_dir)


def finish_files(paths: list[str], done_dir: Path | None) -> None:
    """Move stored files to ``done_dir`` (or delete them); one gone already is fine."""
    for name in paths:
        path = Path(name)
        try:
            if done_dir is None:
                path.unlink()
            else:
                _move_keeping_both(path, done_dir / path.name)
        except FileNotFoundError:
            pass


def _move_keeping_both(path: Path, target: Path) -> None:
    """Move ``path`` to ``target``, or beside it under a new name if that exists."""
    try:
        rename_no_replace(path, target)
    except FileExistsError:
        os.replace(path, _free_name(target))


def _content_type(path: Path) -> str:
    return "application/zip" if path.suffix.lower() == ".zip" else "application/xml"


def _free_name(target: Path) -> Path:
    if not target.exists():
        return target
    n = 1
    while True:
        candidate = target.with_name(f"{target.stem}-{int(time.time() * 1000)}-{n}{target.suffix}")
        if not candidate.exists():
            return candidate
        n += 1
