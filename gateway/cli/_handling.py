"""Dealing with quarantined input (``messages resubmit`` a corrected file, ``messages handle``)
and with a partner's rejection (``messages handle``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.cli import _access, _out
from gateway.cli._reprocess import process_stored
from gateway.cli.exitcodes import FAILED, NOT_FOUND, OK
from gateway.contracts import FILE_KEYS, MOVED_TO, NOT_FROM_PARTNER, RawInput
from gateway.errors import StoreError, StoreUnavailable
from gateway.fileio import KEPT_BYTES, read_file
from gateway.store import MessageState
from gateway.wording import noun

#: Facts about the quarantined bytes that do not hold for a corrected file (a sedex pair
#: from a sender that is no partner: the operator resubmitting it vouches for the file; the
#: names of the files it came in and where they went, which ``messages show`` says).
_EVIDENCE_KEYS = ("size", "sha256", KEPT_BYTES, NOT_FROM_PARTNER, MOVED_TO, *FILE_KEYS)
_ZIP_MAGIC = b"PK\x03\x04"


def add_actions(messages: Any) -> None:
    """Register ``resubmit`` and ``handle`` under ``messages``."""
    p = messages.add_parser("resubmit", help="process a corrected file in place of a quarantined"
                            " message (journaled as its correction)")
    p.add_argument("id", help="the quarantined message: row id or eCH-0223 messageId, or row:ID")
    p.add_argument("file", type=Path, help="the corrected file (XML, or a zip)")
    p.set_defaults(handler=cmd_resubmit)
    p = messages.add_parser("handle", help="mark a quarantined message, or the deliveries of a"
                            " message its partners rejected, handled, with a note")
    p.add_argument("id", help="the quarantined or rejected message: row id or eCH-0223"
                              " messageId, or row:ID")
    p.add_argument("--note", required=True, help="what was done about it (journaled)")
    p.set_defaults(handler=cmd_handle)


def cmd_resubmit(args: argparse.Namespace) -> int:
    """Store FILE as a new input correcting quarantined ID, then process it; exit 1 when the
    correction is quarantined too (its reason printed, as ``messages replay`` does)."""
    with _access.writer(args) as (settings, store), _access.reader(args) as r:
        mid = _access.resolve(r, args.id)
        msg = r.get_message(mid)
        if msg is not None and msg["state"] != MessageState.QUARANTINED:
            _out.say(f"ech-gateway: message {mid} is {msg['state']}: only a quarantined message can"
                     " be resubmitted (a corrected file takes the place of its input)",
                     file=sys.stderr)
            return FAILED
        original = asyncio.run(store.load_input(mid))
        limit = settings.limits.max_document_bytes
        try:
            data = read_file(args.file, limit)
        except OSError as exc:
            _out.say(f"ech-gateway: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return NOT_FOUND
        if data is None:
            _out.say(f"ech-gateway: {args.file} is larger than [limits] max_document_bytes"
                     f" ({limit} bytes)", file=sys.stderr)
            return FAILED
        meta = {k: v for k, v in original.meta.items() if k not in _EVIDENCE_KEYS}
        meta["content_type"] = ("application/zip" if data.startswith(_ZIP_MAGIC)
                                else "application/xml")
        meta["correction_of"] = str(mid)
        raw = RawInput(original.source, args.file.name, data, meta)
        try:
            new = asyncio.run(store.add_correction(mid, raw))
        except StoreUnavailable:  # no refusal: the command says so and exits (cli.main)
            raise
        except StoreError as exc:
            _out.say(f"ech-gateway: {exc}", file=sys.stderr)
            return FAILED
        p = asyncio.run(process_stored(new, store, settings, args.pm))
    if p.state == MessageState.QUARANTINED:
        _out.say(f"message {new} corrects message {mid} (now handled), but is quarantined too:"
                 f" {p.reason}")
        return FAILED
    _out.say(f"message {new} corrects message {mid} (now handled): {p.state}")
    return OK


def cmd_handle(args: argparse.Namespace) -> int:
    """Mark quarantined ID, or its rejected deliveries, handled with a note, in the journal."""
    with _access.writer(args) as (_settings, store), _access.reader(args) as r:
        mid = _access.resolve(r, args.id)
        try:
            deliveries = asyncio.run(store.mark_handled(mid, args.note))
        except StoreUnavailable:  # no refusal: the command says so and exits (cli.main)
            raise
        except StoreError as exc:
            _out.say(f"ech-gateway: {exc}", file=sys.stderr)
            return FAILED
    if deliveries:
        which = noun(len(deliveries), "its rejected delivery", "its rejected deliveries")
        _out.say(f"message {mid}: {which} {', '.join(map(str, deliveries))} handled: {args.note}")
    else:
        _out.say(f"message {mid} handled: {args.note}")
    return OK
