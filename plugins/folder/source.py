"""Reading a drop folder: store every finished file, then move it to ``done_dir`` (or delete it).

The drop folder is often a network share, which may hang: every call into it
(creating, watching, listing, reading, moving) is given up on after ``write_timeout``
(:class:`~gateway.api.BoundedCalls`), said once in the log, and tried again
at the next scan; while the call given up on has not returned, scans fail
at once. Nothing else waits for it: not the event loop, the worker
processes, the other sources, the partners or the stop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationInfo, field_validator

from gateway.api import (
    BATCH_BYTES,
    SET_ASIDE,
    BoundedCalls,
    DirWatcher,
    Duration,
    FileTaker,
    Intake,
    PluginContext,
    PluginOptions,
    RawInput,
    Ready,
    RepeatedProblem,
    Stored,
    TooLarge,
    TransientError,
    Unfinished,
    Whole,
    WorkerLost,
    WritablePath,
    counted,
    finish,
    same_folder,
    to_the_end,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
#: What reading a ready file gave.
Read = Whole | Unfinished | TooLarge | OSError | None


class FolderOptions(PluginOptions):
    """The keys of a ``type = "folder"`` source."""

    path: Path = Field(description="directory the registry drops files into; not a folder a"
                       " partner's transport names, nor another source's whose pattern takes"
                       " the same files")
    pattern: list[str] = Field(
        ["*.xml", "*.zip"], description="globs of the file names to take, in any case (one"
        " glob or a list)")
    done_dir: Path | None = Field(
        None, description="where taken files go once stored; unset deletes them. Retention"
        " deletes them from there after [retention] keep_files")
    poll_interval: Duration = Field(1.0, gt=0, description="time between scans when no event")
    batch_size: int = Field(500, ge=1, description="files stored per transaction at most")
    settle: Duration = Field(
        1.0, ge=0, description="how long a file must stay unchanged (size, times, inode; seen on"
        " two scans) before it is taken; \"0s\" takes it at first sight, for registries that"
        " write under a temporary name and rename")
    mapping: Path | None = Field(
        None, description="a mapping file: the files are JSON or CSV exports, turned into"
        " eCH-0223 by the mapping plugin as this file says (see README, JSON and CSV exports)")
    grace: Duration = Field(
        300.0, ge=0, description="how long a file that looks unfinished (empty, XML without the"
        " end of its root element, zip without its end record, JSON not closed, a CSV row cut"
        " short) may stay so before it is quarantined (a CSV line alone without its line end,"
        " which a header alone may be, is then taken as it is); entries that are not regular"
        f" files go to the '{SET_ASIDE}' subfolder")

    write_timeout: Duration = Field(
        60.0, gt=0, description="how long a call into the drop folder or done_dir (listing,"
        " reading a file, moving it away; retention's deletions in done_dir, a thousand entries"
        " a call) may take; then it is given up on (a network share that hangs), said in the"
        " log, and tried again at the next scan. A file stored whose move was given up on is"
        " not taken again")

    @field_validator("pattern", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("mapping")
    @classmethod
    def _check_mapping(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no mapping file {value}")
        return value.resolve() if value is not None else None

    @field_validator("done_dir")
    @classmethod
    def _check_done_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        path = info.data.get("path")
        if value is not None and path is not None and same_folder(value, path):
            raise ValueError("is the drop folder itself; files moved there would be taken again")
        return value

    def input_meta(self, name: str) -> dict[str, str]:
        """What the normalisers are told of a file: its type, and the mapping of exports."""
        if self.mapping is not None:
            return {"content_type": _EXPORTS.get(Path(name).suffix.lower(), "text/plain"),
                    "mapping": str(self.mapping)}
        zipped = name.lower().endswith(".zip")
        return {"content_type": "application/zip" if zipped else "application/xml"}

    def writable_paths(self) -> list[WritablePath]:
        """The drop folder (files are moved out of it) and ``done_dir`` (an archive of the
        files stored); the source creates both."""
        folders = [WritablePath("path", self.path, created=True)]
        if self.done_dir is not None:
            folders.append(WritablePath("done_dir", self.done_dir, created=True, archive=True,
                                        timeout=self.write_timeout))
        return folders


class FolderSource:
    """A :class:`~gateway.plugin_types.Source` over one drop folder."""

    def __init__(self, options: FolderOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        self.max_bytes = context.normalise.max_bytes
        self.max_kept = context.normalise.max_kept_bytes
        #: bytes of whole files gathered before they are stored
        self.batch_bytes = BATCH_BYTES
        self.taker = FileTaker(options.path, tuple(options.pattern), options.settle,
                               options.grace)
        #: files that could not be read (name -> as scanned): not offered again until they change
        self.unreadable: dict[str, Ready] = {}
        #: Calls into the folders, in threads or worker processes, bounded.
        self.calls = BoundedCalls(options.write_timeout, context.offload)

    async def run(self, intake: Intake) -> None:
        """Take files as they appear until cancelled."""
        opts = self.options
        hang = RepeatedProblem(log, f"source {self.name}: taking files from {opts.path}")
        watcher = DirWatcher(opts.path, opts.poll_interval)
        made = False
        try:
            while True:
                backlog: list[Ready] = []
                wake = None
                try:
                    if not made:
                        await self._io(f"creating {opts.path}", self._make_folders)
                        made = True
                    await watcher.start(self.calls)
                    backlog, wake = await self._io(f"listing {opts.path}", self.scan)
                    for start in range(0, len(backlog), opts.batch_size):
                        await self.take(intake, backlog[start:start + opts.batch_size])
                    if not self.calls.in_doubt:
                        hang.ok()
                except TransientError as exc:
                    hang.failed(exc)
                if not backlog:
                    await watcher.wait(wake)
        finally:
            watcher.stop()

    def _make_folders(self) -> None:
        self.options.path.mkdir(parents=True, exist_ok=True)
        if self.options.done_dir is not None:
            self.options.done_dir.mkdir(parents=True, exist_ok=True)

    async def _io(self, doing: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread, for up to ``write_timeout`` seconds
        (:meth:`~gateway.api.BoundedCalls.or_transient`)."""
        return await self.calls.or_transient(fn, *args, doing=doing)

    def scan(self) -> tuple[list[Ready], float | None]:
        """Files ready to take, oldest first, and when a pending one may be ready."""
        listing = self.taker.scan()
        for note in listing.notes:
            log.warning("source %s: %s", self.name, note)
        # a file that could not be read is offered again once it changes (a chmod does)
        self.unreadable = {r.name: r for r in listing.ready
                           if r.name in self.unreadable
                           and self.unreadable[r.name].version == r.version}
        ready = [r for r in listing.ready if r.name not in self.unreadable]
        ready.sort(key=lambda r: (r.version.mtime_ns, r.name))
        return ready, listing.wake

    async def take(self, intake: Intake, files: list[Ready]) -> None:
        """Store ``files`` (unfinished or too large ones as quarantined), then move them away.

        They are read in one call into the folder per :attr:`batch_bytes` gathered
        (:meth:`_read_some`: a thread of its own per call, not per file), then stored.

        :raises TransientError: the folder did not answer within ``write_timeout``.
        """
        start = 0
        while start < len(files):
            reads, start = await self._io(
                f"reading {counted(len(files) - start, 'file')} in {self.options.path}",
                self._read_some, files, start)
            raws: list[RawInput] = []
            stored: list[Stored] = []
            for ready, got in reads:
                if isinstance(got, OSError):  # (say, mode 0600 of another user): the others go on
                    self.unreadable[ready.name] = ready
                    log.warning("source %s: cannot read %s (%s); it is left there and taken once"
                                " it changes", self.name, ready.where, got.strerror or got)
                elif isinstance(got, Whole):
                    raws.append(RawInput(self.name, ready.shown, got.data, self._meta(ready)))
                    stored.append(got.stored)
                elif isinstance(got, Unfinished):
                    await to_the_end(self._quarantine(
                        intake, RawInput(self.name, ready.shown, got.data, self._meta(ready)),
                        got.reason, got.stored))
                elif isinstance(got, TooLarge):
                    await self._quarantine_oversized(intake, ready)
            if raws:
                await self._store(intake, raws, stored)

    def _read_some(self, files: list[Ready], start: int
                   ) -> tuple[list[tuple[Ready, Read]], int]:
        """Read ``files`` from ``start`` on until :attr:`batch_bytes` of whole files are
        gathered; what each read gave (an ``OSError`` for one that could not be read,
        ``None`` for one that changed or went since the scan), and where to go on."""
        reads: list[tuple[Ready, Read]] = []
        gathered = 0
        index = start
        while index < len(files) and gathered < self.batch_bytes:
            ready = files[index]
            index += 1
            try:
                got: Read = self.taker.read(ready, self.max_bytes)
            except OSError as exc:
                got = exc
            if isinstance(got, Whole):
                gathered += len(got.data)
            reads.append((ready, got))
        return reads, index

    async def _store(self, intake: Intake, raws: list[RawInput], stored: list[Stored]) -> None:
        """Store ``raws``, then move their files away: both, even if the source is stopped
        meanwhile (the drain), for what is stored stays stored, and a file left in the folder
        would be taken again at the next start, as a duplicate."""
        async def store_then_move() -> None:
            await intake.submit(raws)
            await self._finish(stored)
        await to_the_end(store_then_move())

    async def _quarantine(self, intake: Intake, raw: RawInput, reason: str,
                          stored: Stored) -> None:
        """Quarantine ``raw`` with ``reason``, then move its file away."""
        await intake.quarantine(raw, reason)
        await self._finish([stored])

    async def _finish(self, stored: list[Stored]) -> None:
        """Move stored files away (in a worker process: kernel time the event loop need not
        spend); ones whose move was given up on are not taken again."""
        groups = [([s], self.options.done_dir) for s in stored]
        dest = self.options.done_dir
        doing = (f"moving {counted(len(stored), 'file')} into {dest}" if dest is not None
                 else f"deleting {counted(len(stored), 'file')} from {self.options.path}")
        try:
            try:
                lefts = await self.calls.offload(finish, groups, doing=doing)
            except WorkerLost:  # stored already: move them here rather than take them again
                lefts = await self.calls(finish, groups, doing=doing)
        except TimeoutError as exc:
            self.taker.skip.update(os.path.basename(s.path) for s in stored)
            raise TransientError(str(exc)) from None
        for message in self.taker.left(lefts):
            log.warning("source %s: %s", self.name, message)

    async def _quarantine_oversized(self, intake: Intake, ready: Ready) -> None:
        """Store what ``[limits] max_kept_bytes`` allows of a file over the limit, as evidence."""
        got = await self._io(f"reading {ready.where}", self.taker.evidence, ready, self.max_kept)
        if got is None:
            return  # it changed meanwhile: the next scans see it again
        evidence, stored = got
        await to_the_end(self._quarantine(
            intake,
            RawInput(self.name, ready.shown, evidence.data, {**self._meta(ready), **evidence.meta()}),
            f"document of {evidence.size} bytes is larger than the limit of {self.max_bytes}"
            f" bytes ([limits] max_document_bytes){evidence.note()}", stored))


    def _meta(self, ready: Ready) -> dict[str, str]:
        return self.options.input_meta(ready.name)


_EXPORTS = {".csv": "text/csv", ".json": "application/json"}
