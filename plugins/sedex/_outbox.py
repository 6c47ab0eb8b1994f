"""Writing attempts into the sedex outbox: payload first, envelope last.

Module-level, so that the transport can run a batch in a worker process
(``PluginContext.offload``): creating and renaming two files per message is
the largest share of what sending costs, and the event-loop process is the
one every message passes through. Each process keeps its own envelope
templates.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.api import (
    DeliveryError,
    GatewayError,
    LocalFault,
    OutboundItem,
    PermanentError,
    SendResult,
    build_zip,
    sync_filesystem,
    write_file,
)
from plugins.sedex._files import publish
from plugins.sedex.envelope import MESSAGE_ID, EnvelopeTemplate, format_datetime
from plugins.sedex.options import SedexOptions

#: Name of the eCH-0223 message inside a zip payload (attachments are under ``files/``).
ZIP_MESSAGE_NAME = "message.xml"

_templates: dict[tuple[int, int, str, str, int], EnvelopeTemplate] = {}


def template(options: SedexOptions) -> EnvelopeTemplate:
    """The envelope template for ``options`` (built and schema-checked once per process)."""
    key = (options.message_type, options.message_class, options.sender_id,
           options.recipient_id, options.envelope_version)
    found = _templates.get(key)
    if found is None:
        found = _templates[key] = EnvelopeTemplate(
            options.message_type, options.message_class, options.sender_id,
            (options.recipient_id,), options.envelope_version)
    return found


@dataclass(frozen=True, slots=True)
class _Batch:
    """What every attempt of a batch shares: the messageDate (and its text), and the outbox
    and staging folders as text."""

    now: datetime
    sent: str
    outbox: str
    staging: str

    @classmethod
    def of(cls, options: SedexOptions) -> _Batch:
        now = datetime.now().astimezone()
        return cls(now, format_datetime(now), str(options.outbox), str(options.staging_dir))


def write_attempts(options: SedexOptions, items: Sequence[OutboundItem]
                   ) -> list[SendResult | GatewayError]:
    """Write each attempt; one result or error per item (see :func:`write_attempt`)."""
    results: list[SendResult | GatewayError] = []
    batch = _Batch.of(options)  # the batch's messageDate
    for item in items:
        try:
            results.append(_write(options, item, batch))
        except DeliveryError as exc:
            results.append(exc)
    return results


def write_attempt(options: SedexOptions, item: OutboundItem) -> SendResult:
    """Put the attempt into the outbox: payload first, envelope last.

    The result names the envelope's ``recipientId``: a receipt for the attempt's
    messageId but another recipient does not settle it.

    A repeated attempt (``item.resumed``) whose envelope is already in the
    outbox, in ``working`` (taken by the sedex client, not yet sent) or in
    ``processed`` is not written again: sedex would refuse the second copy
    with 201 (messageId known).

    :raises PermanentError: the envelope or zip cannot be built.
    :raises LocalFault: the outbox cannot be written (missing, read-only, disk
        full): a fault on this machine, not the partner's.
    """
    return _write(options, item, _Batch.of(options))


def _write(options: SedexOptions, item: OutboundItem, batch: _Batch) -> SendResult:
    """:func:`write_attempt` with what the attempts of ``batch`` share."""
    ref = item.attempt_ref
    if not MESSAGE_ID.fullmatch(ref):
        raise PermanentError(f"attempt_ref {ref!r} cannot be a sedex messageId")
    outbox = options.outbox
    envl_name = f"envl_{ref}.xml"
    if item.resumed and any((folder / envl_name).exists() for folder in (
            outbox, options.working_dir, options.processed)):
        return SendResult(awaits_receipt=True, detail=f"{envl_name} already handed to sedex",
                          recipient=options.recipient_id)
    try:
        event = item.event_date or batch.now
        envelope = template(options).render_text(
            ref, format_datetime(event if event.tzinfo else event.astimezone()),
            batch.sent)
        if item.attachments:
            payload, ext = build_zip(ZIP_MESSAGE_NAME, item.payload, item.attachments), "zip"
        else:
            payload, ext = item.payload, "xml"
    except ValueError as exc:
        raise PermanentError(f"sedex would refuse this message: {exc}") from exc
    try:
        publish(batch.outbox, f"data_{ref}.{ext}", payload, staging=batch.staging)
        publish(batch.outbox, envl_name, envelope, staging=batch.staging)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LocalFault(f"cannot write to the sedex outbox {outbox}: {reason}") from exc
    return SendResult(awaits_receipt=True, detail=f"{envl_name} in the sedex outbox",
                      recipient=options.recipient_id)


def clear_staging(staging: Path) -> None:
    """Create the staging folder; remove what a previous run left half-written.

    Its parent (by default the outbox) is not created: a sedex client's folder that is
    missing (a share not mounted) is a fault to report, not to cover up.
    """
    staging.mkdir(exist_ok=True)
    for leftover in staging.iterdir():
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


#: The file :func:`try_outbox` writes into the staging folder and removes.
TRY_NAME = ".write-test"


def try_outbox(options: SedexOptions) -> None:
    """Do on a small scale what a batch does to the outbox's file system: write a file into
    the staging folder (created again if it vanished), remove it, and make that durable
    (one ``syncfs``) if ``sync`` is on.

    :raises OSError: the outbox is missing, or its file system cannot take the file.
    """
    if not options.outbox.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(options.outbox))
    staging = options.staging_dir
    staging.mkdir(exist_ok=True)
    write_file(staging / TRY_NAME, b"ech-gateway: a test that the outbox takes files\n")
    (staging / TRY_NAME).unlink()
    if options.sync:
        sync_filesystem(options.outbox)
