"""The ``folder`` transport: delivers messages into a folder another program reads.

The way back (README, "The way back") uses it for the registry: each canton
message becomes one file in the registry's inbox, the eCH-0223 XML as it
is, or a zip with the message at its root and its documents under
``files/`` (the input format of the registry folder source). A file is
written under a hidden temporary name, synced, then renamed into place, so
the registry never sees half a file. Its name,
``ech0223-<delivery, 10 digits>-<attempt>.xml``, sorts in the order the
deliveries were queued and names the attempt, so a repeated attempt finds
its own file and does not write a second one.

A missing or unwritable folder is the registry being down (or not set up):
a :class:`~gateway.api.LocalFault`, so the partner pauses and its messages
wait, uncounted, until the folder is there again.

The folder is often a network share, which may hang: a file not written
within ``write_timeout`` is given up on (its thread left behind, never waited
for), and its attempt is unsure (it may have arrived): a
:class:`~gateway.api.LocalHang`, which pauses the partner until ``probe``
finds the folder answering again. The attempt is then repeated, and finds
its file if it arrived.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

from pydantic import Field

from gateway.api import (
    BoundedCalls,
    Duration,
    Intake,
    LocalFault,
    LocalHang,
    OutboundItem,
    PermanentError,
    PluginContext,
    PluginOptions,
    ReceiptSink,
    RepeatedProblem,
    SendResult,
    WritablePath,
    build_zip,
    rename_no_replace,
    sync_folder,
    write_all,
)

log = logging.getLogger(__name__)

#: The name of the message inside a zip with documents.
ZIP_MESSAGE_NAME = "message.xml"
#: The file a probe writes and removes (hidden and temporary: readers skip it).
TRY_NAME = ".ech-gateway-probe.tmp"
#: Errors that mean the folder is not there or not ours to write: the partner pauses.
_LOCAL = (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
          errno.EDQUOT)


class FolderTransportOptions(PluginOptions):
    """The keys of ``[partners.<name>.folder]``."""

    path: Path = Field(description="folder the messages are written into (the registry's"
                                   " inbox); it must exist: a missing folder pauses delivery")
    prefix: str = Field("ech0223-", pattern=r"^[A-Za-z0-9_.-]*$",
                        description="start of each file's name")
    sync: bool = Field(True, description="fsync each file and the folder before it counts as"
                                         " delivered")
    write_timeout: Duration = Field(
        60.0, gt=0, description="how long writing a file into the folder may take; then its"
        " message is given up on as unsure (a network share that hangs) and the partner is"
        " paused until the folder answers: the message is repeated then, and one that"
        " arrived is not written again. Also bounds the probes of a paused partner")

    def writable_paths(self) -> list[WritablePath]:
        """The folder; the program that reads it owns it, so it is not created."""
        return [WritablePath("path", self.path)]


def file_name(options: FolderTransportOptions, item: OutboundItem) -> str:
    """The name of ``item``'s file: sorted by delivery, named by attempt."""
    ext = "zip" if item.attachments else "xml"
    return f"{options.prefix}{item.delivery_id:010d}-{item.attempt_ref}.{ext}"


def write_delivery(options: FolderTransportOptions, item: OutboundItem) -> SendResult:
    """Write ``item`` into the folder (temporary name, sync, rename); idempotent per attempt.

    :raises LocalFault: the folder is missing, read-only or full.
    :raises PermanentError: the documents cannot be zipped (a bad name).
    """
    name = file_name(options, item)
    final = options.path / name
    if final.exists():
        return SendResult(awaits_receipt=False, detail=f"{name} was written before")
    try:
        data = (build_zip(ZIP_MESSAGE_NAME, item.payload, item.attachments)
                if item.attachments else item.payload)
    except ValueError as exc:
        raise PermanentError(f"cannot zip the message's documents: {exc}") from exc
    tmp = options.path / f".{name}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, data)
            if options.sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            rename_no_replace(tmp, final)
        except FileExistsError:  # the same attempt, written meanwhile
            tmp.unlink()
        if options.sync:
            sync_folder(options.path)
    except OSError as exc:
        if exc.errno in _LOCAL:
            raise LocalFault(f"cannot write into {options.path}: {exc.strerror}") from exc
        raise
    return SendResult(awaits_receipt=False, detail=name)


def try_folder(options: FolderTransportOptions) -> None:
    """Do on a small scale what a delivery does to the folder: write a hidden file (synced,
    if ``sync``), remove it, and sync the folder if ``sync``.

    :raises OSError: the folder is missing, or its file system cannot take the file.
    """
    probe = options.path / TRY_NAME
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, b"ech-gateway: a test that the folder takes files\n")
        if options.sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    probe.unlink()
    if options.sync:
        sync_folder(options.path)


class FolderTransport:
    """A :class:`~gateway.api.Transport` into one folder; delivered once the file is in place."""

    def __init__(self, options: FolderTransportOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        #: Calls into the folder's file system in threads of this process, bounded.
        self._calls = BoundedCalls(options.write_timeout)
        self._writing = RepeatedProblem(log, f"partner {self.name}: writing into the folder"
                                             f" {options.path}")

    async def send(self, item: OutboundItem) -> SendResult:
        """Write one attempt, in a thread, within ``write_timeout``.

        :raises LocalHang: it did not finish in time (or one given up on before has not
            returned yet): it may have arrived; the partner is paused.
        """
        limit = self.options.write_timeout
        try:
            result = await self._calls(write_delivery, self.options, item)
        except TimeoutError as exc:
            self._writing.failed(f"{exc}; the partner is paused until the folder answers, then"
                                 " the message is repeated, not written twice")
            raise LocalHang(f"the folder {self.options.path} did not take the file within"
                            f" {limit:g}s; it may have arrived") from None
        self._writing.ok()
        return result

    async def probe(self) -> None:
        """Whether the folder takes files again (:func:`try_folder`), within
        ``write_timeout``, in a thread. A check that hung is not repeated before it returned.

        :raises LocalFault: the folder is missing, cannot take a file, or does not answer.
        """
        path = self.options.path
        try:
            await self._calls(try_folder, self.options, doing=f"writing a test file into {path}")
        except TimeoutError as exc:
            raise LocalFault(f"the folder {path} does not answer: {exc}") from None
        except OSError as exc:
            raise LocalFault(f"cannot write into {path}: {exc.strerror or exc}") from exc

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Nothing to do in the background: the file in place is the delivery."""
        await asyncio.Event().wait()
