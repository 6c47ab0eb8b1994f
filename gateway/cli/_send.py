"""``send``: a case worker's message to a partner, about a person the gateway knows.

``send FILE`` takes what the registry folder takes, through the same normalisers: an
eCH-0223 file goes as it is, an eCH-0020 v3 delivery as the message the daemon would
make of it; only the rules are not asked (the partner is the one named).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import manual
from gateway.cli import _access, _args, _out, _render
from gateway.cli._reprocess import process_stored
from gateway.cli.exitcodes import CONFIG, FAILED, OK
from gateway.contracts import Attachment, RawInput
from gateway.errors import InputRejected, NotFound
from gateway.file_kinds import content_problem
from gateway.fileio import read_file
from gateway.person_state import PersonState
from gateway.store import MessageState


def add_commands(sub: Any) -> None:
    """Register ``send``."""
    p = sub.add_parser(
        "send", help="send an event about a known person (laggardOfFamily,"
        " declarationOfCommitment...), or an eCH-0223 or eCH-0020 FILE, to a partner by hand")
    p.add_argument("file", nargs="?", type=Path, metavar="FILE",
                   help="instead of --event/--person: an eCH-0223 file (XML, or a zip with"
                   " files/) to send as it is, or an eCH-0020 v3 delivery to send as the"
                   " eCH-0223 message the daemon makes of it (completed from the person state)")
    p.add_argument("--partner", required=True, help="the partner that gets it")
    p.add_argument("--event", help="the eCH-0223 personEvent, as the XSD spells it")
    p.add_argument("--person", type=_args.person, help="the person: a VN (756.1234.5678.97 or 7561234567897),"
                   " or a local id (CATEGORY:ID, or ID of any category)")
    p.add_argument("--business-key", help="eCH-0223 businessKey (BRB, IntV, Verfügung...)")
    p.add_argument("--comment", help="eCH-0223 businessComment (at most 1024 characters)")
    p.add_argument("--attach", nargs="+", type=Path, default=[], metavar="FILE",
                   help="files to send along (each an eCH-0039 document under files/)")
    p.add_argument("--sender-id", help="the header's senderId (our participant id); default:"
                   " the partner's sedex sender_id")
    p.set_defaults(handler=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    """Store the request as an input of source ``manual``, process it; the daemon sends it."""
    if (args.file is None) == (args.event is None and args.person is None):
        _out.say("ech-gateway send: give FILE, or --event and --person", file=sys.stderr)
        return CONFIG
    if args.file is None and (args.event is None or args.person is None):
        _out.say("ech-gateway send: --event and --person go together", file=sys.stderr)
        return CONFIG
    if args.file is not None and args.attach:
        _out.say("ech-gateway send: FILE is sent as it is; its files travel in it (a zip with"
                 " files/), not with --attach", file=sys.stderr)
        return CONFIG
    with _access.writer(args) as (settings, store):
        try:
            manual.check(settings, args.partner, args.event, args.business_key, args.comment)
        except InputRejected as exc:
            _out.say(f"ech-gateway send: {exc.reason}", file=sys.stderr)
            return CONFIG
        try:
            raw = _input(args, settings)
        except InputRejected as exc:
            _out.say(f"ech-gateway send: {exc}", file=sys.stderr)
            return FAILED
        [(mid, new)] = asyncio.run(store.add_raw([raw]))
        if not new:
            _out.say(f"message {mid}: the same input was sent by hand before; not sent again")
            return FAILED
        state = asyncio.run(process_stored(mid, store, settings, args.pm)).state
    with _access.reader(args) as r:
        msg = r.get_message(mid)
    assert msg is not None
    if state == MessageState.ROUTED:
        _out.say(f"message {mid} ({msg['message_id']}): {state} to {args.partner};"
                 " the running gateway sends it")
        for warning in _render.warnings(msg):
            _out.say(f"warning: {warning}", file=sys.stderr)
        return OK
    _out.say(f"message {mid}: {state}: {msg['reason']}")
    return FAILED


def _input(args: argparse.Namespace, settings: Any) -> RawInput:
    """The input to store: the request, or the file to send as it is."""
    own, recipients = manual.header_ids(settings, args.partner)
    sender = args.sender_id or own or ""
    files = _files(args.attach, settings)
    send = manual.ManualSend(
        args.partner, args.event or "", (), _who(), sender, recipients, args.business_key,
        args.comment, files, settings.documents.status)
    if args.file is not None:
        limit = int(settings.limits.max_document_bytes)
        data = _read(args.file, limit)
        if data is None:
            raise InputRejected(f"{args.file} is larger than [limits] max_document_bytes"
                                f" ({limit} bytes)")
        return manual.file_input(args.file.name, data, send)
    if not sender:
        raise InputRejected(f"partner {args.partner!r} has no sender_id option: give --sender-id")
    return manual.request(replace(send, person=tuple(_person(args).keys())))


def _person(args: argparse.Namespace) -> PersonState:
    """The person ``--person`` names, known to the gateway.

    :raises NotFound: nobody (exit 3). :raises Ambiguous: several (exit 4).
    """
    with _access.reader(args) as r:
        person = _access.person(r, args.person, f"no person {args.person} is known to the gateway"
                                " (it knows the persons registries reported; see persons show)")
    return PersonState.model_validate(person["state"])


def _files(paths: list[Path], settings: Any) -> tuple[tuple[Attachment, datetime], ...]:
    """The files to attach, read, each with its modification time."""
    budget = int(settings.limits.max_attachment_bytes)
    out = []
    for path in paths:
        data = _read(path, budget)
        if data is None:
            raise InputRejected(f"{path}: the files are larger than [limits] max_attachment_bytes"
                                f" ({int(settings.limits.max_attachment_bytes)} bytes) in all")
        if not data:
            raise InputRejected(f"{path}: the file is empty (a scan that failed?)")
        problem = content_problem(path.name, data)
        if problem is not None:
            raise InputRejected(f"{path}: {problem}")
        budget -= len(data)
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).astimezone()
        except OSError as exc:  # gone since it was read
            raise NotFound(f"cannot read {path}: {exc.strerror or exc}") from exc
        out.append((Attachment(path.name, data), modified))
    manual.check_files(settings, [a for a, _m in out])
    return tuple(out)


def _read(path: Path, limit: int) -> bytes | None:
    """The file's bytes, ``None`` when larger than ``limit``.

    :raises NotFound: it cannot be read (exit 3, as for ``validate``; naming it: a folder's
        read error has no name).
    """
    try:
        return read_file(path, limit)
    except OSError as exc:
        raise NotFound(f"cannot read {path}: {exc.strerror or exc}") from exc


def _who() -> str:
    """The operator: the user who ran sudo, else this process's user."""
    return os.environ.get("SUDO_USER") or getpass.getuser()

