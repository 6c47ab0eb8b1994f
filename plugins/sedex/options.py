"""The ``[partners.<name>.sedex]`` options of the sedex transport."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gateway.api import Duration, WritablePath, same_folder

#: Participant ID patterns (DOMAIN.md §1.3) by envelope version.
PARTICIPANT_ID = {
    1: re.compile(r"T?[1-9]-[0-9A-Z]+-[0-9]+|T?0-sedex-0"),
    2: re.compile(r"T?[1-9]-[0-9A-Z]+-[0-9]+|T?0-sedex-[0-9]"),
}

#: How a participant ID is written, as a problem says it (DOMAIN.md §1.3).
_ID_FORM = ("a digit 1-9, the organisation's number (digits or capital letters) and a serial"
            " number, joined by '-', e.g. '3-123-1' or '1-CH-2'; a test participant's has a"
            " leading T, e.g. 'T2-2-1'")

#: The folders that must differ from each other, in declaration order.
_FOLDERS = ("outbox", "inbox", "receipts", "processed", "receipts_archive")


class SedexOptions(BaseModel):
    """How to reach one partner through the local sedex client's folders.

    Receipt files are moved out of ``receipts`` once recorded: matched ones
    to ``receipts_archive``, unmatched ones (no attempt of ours has their
    messageId, or it was addressed to another recipientId) to its ``unmatched``
    subfolder, unreadable ones to its ``rejected`` subfolder. Inbound pairs are moved to
    ``processed`` once stored (broken ones to ``processed/rejected``).
    Partners of one sedex client may share ``receipts`` and ``inbox``: both are
    read by content (see :mod:`plugins.sedex.transport`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    outbox: Path = Field(description="sedex client folder for messages to send")
    inbox: Path = Field(
        description="sedex client folder of messages received; partners of one sedex client"
        " may share it: each pair is the partner's whose recipient_id is its senderId"
    )
    receipts: Path = Field(description="sedex client folder of technical receipts")
    processed: Path = Field(description="sedex client folder of sent or rejected messages")
    envelope_version: Literal[1, 2] = Field(
        default=1, description="eCH-0090 version of our envelopes; the file interface wants 1"
    )
    sender_id: str = Field(description="our sedex participant ID, e.g. '3-1234-1' or 'T3-1234-1'")
    recipient_id: str = Field(description="the partner's sedex participant ID")
    message_type: int = Field(ge=0, le=2_699_999, description="sedex messageType of our messages")
    message_class: int = Field(
        default=0, ge=0, description="sedex messageClass; 0 = message (1-3 need a reference)"
    )
    pair_grace: Duration = Field(
        default=60.0,
        description="how long a lone envelope or data file may wait for its other half before"
        " it is quarantined",
    )
    settle: Duration = Field(
        default=1.0, ge=0,
        description="how long an inbox or receipt file must stay unchanged (size, times, inode;"
        " seen on two scans) before it is taken; sedex clients write in place",
    )
    grace: Duration = Field(
        default=300.0, ge=0,
        description="how long an inbox or receipt file that looks unfinished (empty, XML without"
        " the end of its root element, zip without its end record) may stay so before it is"
        " quarantined",
    )
    poll_interval: Duration = Field(
        default=1.0, description="folder scan interval when file-system events are unavailable"
    )
    receipts_archive: Path | None = Field(
        default=None,
        description="where recorded receipt files go; default: 'receipts-done' beside 'receipts'",
    )
    working: Path | None = Field(
        default=None,
        description="sedex client 7+ folder of messages taken from 'outbox' but not yet sent;"
        " default: 'working' beside 'outbox'",
    )
    staging: Path | None = Field(
        default=None,
        description="folder for files being written, on the same file system as 'outbox';"
        " default: the hidden folder '.ech-gateway-tmp' inside 'outbox'",
    )
    write_timeout: Duration = Field(
        default=60.0, gt=0,
        description="how long writing a batch into the outbox, or making it durable, may"
        " take; then its messages are given up on as unsure (a network share that hangs)"
        " and the partner is paused until the outbox answers: each is repeated then as the"
        " same sedex message, and one that arrived is not written again. Also bounds"
        " clearing the staging folder at start, the probes of a paused partner, and each"
        " call into inbox, processed, receipts and receipts_archive (listing, reading,"
        " moving, syncing; retention's deletions in receipts_archive, a thousand entries a"
        " call): one that hangs is said in the log and tried again at the next scan",
    )
    sync: bool = Field(
        default=True, description="make sent files durable (one syncfs per batch) before "
        "they are recorded as sent"
    )

    @field_validator("sender_id", "recipient_id")
    @classmethod
    def _check_id(cls, value: str, info: ValidationInfo) -> str:
        # A field validator, so check-config names the key (and the file that set it);
        # envelope_version is declared first, so it is validated by now unless it is wrong.
        version = info.data.get("envelope_version")
        patterns = [PARTICIPANT_ID[version]] if version in PARTICIPANT_ID else [*PARTICIPANT_ID.values()]
        if not any(p.fullmatch(value) for p in patterns):
            raise ValueError(f"{value!r} is not a sedex participant ID: {_ID_FORM}")
        if info.field_name == "recipient_id" and value == info.data.get("sender_id"):
            raise ValueError(f"{value!r} is sender_id too (our own participant ID): messages to"
                             " this partner would be addressed to ourselves; recipient_id is the"
                             " partner's participant ID")
        return value

    @field_validator("inbox", "receipts", "processed", "receipts_archive")
    @classmethod
    def _check_distinct(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Each folder is consumed by one reader: sharing one would take another's files.
        if value is None:
            return value
        for other in _FOLDERS[:_FOLDERS.index(str(info.field_name))]:
            earlier = info.data.get(other)
            if earlier is not None and same_folder(value, earlier):
                raise ValueError(f"is the same folder as {other!r} ({earlier}); each needs its own")
        return value

    @field_validator("message_class")
    @classmethod
    def _check_class(cls, value: int) -> int:
        if value in (1, 2, 3):
            raise ValueError(
                f"message_class {value} needs a referenceMessageId per message, "
                "which this transport does not set; use 0 or an application class"
            )
        if 4 <= value <= 9 or 71 <= value <= 77:
            raise ValueError(f"message_class {value} is reserved by sedex")
        return value

    @property
    def receipts_done(self) -> Path:
        """The effective :attr:`receipts_archive`."""
        return self.receipts_archive or self.receipts.parent / "receipts-done"

    @property
    def working_dir(self) -> Path:
        """The effective :attr:`working` (it need not exist: older clients have none)."""
        return self.working or self.outbox.parent / "working"

    @property
    def staging_dir(self) -> Path:
        """Where files are written before they are renamed into ``outbox``."""
        return self.staging or self.outbox / ".ech-gateway-tmp"

    def participants(self) -> tuple[str, tuple[str, ...]]:
        """Our sedex participant id and the partner's (a manual send's header)."""
        return self.sender_id, (self.recipient_id,)

    def writable_paths(self) -> list[WritablePath]:
        """The sedex client's folders (which must exist) and the ones the transport creates.

        Files are written into ``outbox`` and moved out of ``inbox`` and
        ``receipts``: each needs write access.
        """
        return [
            *(WritablePath(key, getattr(self, key)) for key in ("outbox", "inbox", "receipts",
                                                                 "processed")),
            WritablePath("receipts_archive", self.receipts_done, created=True, archive=True,
                         derived_from=None if self.receipts_archive else "receipts",
                         timeout=self.write_timeout),
            WritablePath("staging", self.staging_dir, created=True,
                         derived_from=None if self.staging else "outbox"),
        ]
