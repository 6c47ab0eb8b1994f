"""Manual sends: a case worker sends an event about a known person to one partner.

eCH-0223 has events no registry raises (``laggardOfFamily``,
``declarationOfCommitment``: DOMAIN.md §5): a case worker decides them. A
manual send is an input like any other, of source ``manual``: a small JSON
request (:func:`request`) naming the partner, the event, the person's keys
and the files to attach, stored durably first and then run through the one
processing path (:class:`gateway.pipeline.Pipeline`). Its normaliser
(:func:`normalise`) leaves a draft that the core completes from the person's
last known state (stage *enrich*): identification, ``personData`` as far as
it is known, one eCH-0039 ``document`` per attached file. Its decision is
not the rules': :func:`decision` sends it to the partner the request names,
as rule ``manual send``, with the business key and comment asked for.

An eCH-0223 file can be sent by hand too (:func:`file_input`): it is
normalised like any eCH-0223 input, and decided the same way.

The command line (``ech-gateway send``) and plugins
(:func:`gateway.api.send_manual`) build the same inputs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast, get_args

import orjson
from lxml import etree

from gateway import __version__
from gateway.contracts import Attachment, Decision, Intake, Normalised, RawInput
from gateway.documents import describe, name_problem
from gateway.ech0223 import Content, Header, PersonEventMessage, SendingApplication, versions, write_message
from gateway.ech0223.codes import BusinessKey, DocumentStatus, PersonEvent
from gateway.ech0223.versions import COMMENT_MAX
from gateway.ech0223.writer import text_problem
from gateway.errors import InputRejected
from gateway.file_kinds import content_problem
from gateway.person_state import PersonState, parse_key
from gateway.plugin_types import Participants
from gateway.vn import vn_check_digit_ok

#: The source name of manual sends (reserved: no ``[sources.manual]``).
SOURCE = "manual"
#: ``content_type`` of a manual send request.
CONTENT_TYPE = "application/vnd.ech-gateway.manual-send+json"
#: The rule named in the journal for every manual send.
RULE = "manual send"
#: What a manual send's comment is called in the warning when it is cut to fit.
COMMENT_FROM = "the request's comment"
#: The eCH-0223 1.5 events, as the XSD spells them.
EVENTS: tuple[str, ...] = get_args(PersonEvent)
#: The eCH-0223 business keys.
BUSINESS_KEYS: tuple[str, ...] = get_args(BusinessKey)
_MESSAGE_TYPE = "http://www.ech.ch/xmlns/eCH-0223/1"
_APP = SendingApplication(manufacturer="ech-gateway", product="ech-gateway",
                          product_version=__version__)


@dataclass(frozen=True, slots=True)
class ManualSend:
    """What a case worker asks to send.

    :param partner: the partner that gets it (``[partners.<name>]``).
    :param event: the eCH-0223 1.5 ``personEvent``.
    :param person: the person's keys (``vn:<13 digits>``, ``local:<category>:<id>``).
    :param requested_by: who asked (journaled with the decision).
    :param sender_id: the header's ``senderId`` (our participant id).
    :param recipient_id: the header's ``recipientId`` values.
    :param files: the files to attach, each with its modification time.
    """

    partner: str
    event: str
    person: tuple[str, ...]
    requested_by: str
    sender_id: str
    recipient_id: tuple[str, ...] = ()
    business_key: str | None = None
    comment: str | None = None
    files: tuple[tuple[Attachment, datetime], ...] = ()
    document_status: str = "undefined"


def check(settings: Any, partner: str, event: str | None, business_key: str | None,
          comment: str | None = None) -> None:
    """Refuse what a manual send cannot be: an unknown event, partner or business key, or a
    comment longer than a businessComment holds.

    :param event: ``None`` for an eCH-0223 file sent as it is.
    :raises InputRejected: naming the valid values, and the one probably meant.
    """
    from gateway.config._suggest import did_you_mean  # gateway.config imports this module

    if event is not None and event not in EVENTS:
        raise InputRejected(f"unknown eCH-0223 event {event!r}{did_you_mean(event, EVENTS)};"
                            f" valid: {', '.join(EVENTS)}", "event")
    enabled = sorted(name for name, p in settings.partners.items() if p.enabled)
    if partner not in enabled:
        raise InputRejected(f"no enabled partner {partner!r}{did_you_mean(partner, enabled)};"
                            " partners: "
                            + (", ".join(enabled) or "none"), "partner")
    chosen = settings.partners[partner]
    if chosen.role == "registry":
        raise InputRejected(f"partner {partner!r} is the registry (role = \"registry\"): it gets"
                            " the partners' messages on the way back, not messages sent by hand",
                            "partner")
    if (event is not None and chosen.unsupported_event == "refuse"
            and event not in versions.EVENTS[chosen.ech0223_version]):
        raise InputRejected(f"{partner} runs eCH-0223 {chosen.ech0223_version}, which has no"
                            f" {event}, and refuses such events (unsupported_event ="
                            ' "refuse")', "event")
    if business_key is not None and business_key not in BUSINESS_KEYS:
        raise InputRejected(f"unknown businessKey {business_key!r}"
                            f"{did_you_mean(business_key, BUSINESS_KEYS)}; valid: "
                            + ", ".join(BUSINESS_KEYS), "business key")
    if comment is not None and len(comment) > COMMENT_MAX:
        raise InputRejected(f"the comment has {len(comment)} characters; eCH-0223"
                            f" businessComment holds at most {COMMENT_MAX}", "comment")
    problem = text_problem(comment) if comment is not None else None
    if problem is not None:
        raise InputRejected(f"the comment {problem}", "comment")


def header_ids(settings: Any, partner: str) -> tuple[str | None, tuple[str, ...]]:
    """Our participant id and the partner's, from the partner's transport options (sedex)."""
    options = settings.partners[partner].parsed
    if isinstance(options, Participants):
        return options.participants()
    return None, ()


def request(send: ManualSend, now: datetime | None = None) -> RawInput:
    """The input that stores ``send``: a JSON request of source :data:`SOURCE`."""
    at = now or datetime.now().astimezone()
    body = {
        "request": "manual-send", "partner": send.partner, "event": send.event,
        "person": list(send.person), "message_id": str(uuid.uuid4()),
        "message_date": at.isoformat(), "sender_id": send.sender_id,
        "recipient_id": list(send.recipient_id), "document_status": send.document_status,
        "files": [{"name": a.name, "modified": modified.isoformat(),
                   "data": base64.b64encode(a.data).decode()} for a, modified in send.files],
    }
    return RawInput(SOURCE, f"manual {send.event} to {send.partner}", orjson.dumps(body),
                    _meta(send, CONTENT_TYPE))


def file_input(name: str, data: bytes, send: ManualSend) -> RawInput:
    """The input that sends an eCH-0223 file by hand (``send.event`` and ``person`` unused)."""
    kind = "application/zip" if data.startswith(b"PK\x03\x04") else "application/xml"
    return RawInput(SOURCE, name, data, _meta(send, kind))


def _meta(send: ManualSend, content_type: str) -> dict[str, str]:
    meta = {"content_type": content_type, "partner": send.partner,
            "requested_by": send.requested_by}
    if send.business_key is not None:
        meta["business_key"] = send.business_key
    if send.comment is not None:
        meta["business_comment"] = send.comment
    return meta


def decision(raw: RawInput) -> Decision:
    """The decision of a manual send: the partner it names, as rule :data:`RULE`."""
    partner = raw.meta.get("partner")
    who = raw.meta.get("requested_by", "someone")
    if not partner:
        return Decision(RULE, f"manual input from {who} names no partner")
    return Decision(RULE, f"sent by hand: requested by {who}", partners=(partner,),
                    business_key=raw.meta.get("business_key"),
                    business_comment=raw.meta.get("business_comment"))


def is_request(raw: RawInput) -> bool:
    """Whether ``raw`` is a manual send request (rather than an eCH-0223 file sent by hand)."""
    return raw.source == SOURCE and raw.meta.get("content_type") == CONTENT_TYPE


def normalise(raw: RawInput) -> Normalised:
    """The draft of the message a request asks for; completed once the person's state is known.

    :raises InputRejected: the request is malformed (the reason names the field).
    """
    try:
        body = orjson.loads(raw.data)
        event = body["event"]
        if event not in EVENTS:
            raise InputRejected(f"unknown eCH-0223 event {event!r}", "event")
        header = Header(
            sender_id=body["sender_id"], recipient_id=list(body["recipient_id"]),
            message_id=body["message_id"], message_type=_MESSAGE_TYPE,
            sending_application=_APP, message_date=datetime.fromisoformat(body["message_date"]),
            event_date=datetime.fromisoformat(body["message_date"]).date(), action="1",
            test_delivery_flag=str(body["sender_id"]).startswith("T"))
        files = tuple((Attachment(f["name"], base64.b64decode(f["data"], validate=True)),
                       datetime.fromisoformat(f["modified"])) for f in body["files"])
        draft = ManualDraft(header, event, tuple(body["person"]), files,
                            body["document_status"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InputRejected(f"malformed manual send request: {type(exc).__name__}: {exc}") from exc
    return Normalised(kind="personEventMessage", message_id=header.message_id, xml=b"", tree=None,
                      subject=draft.person, draft=draft, facts={"format": "manual"},
                      sender_id=header.sender_id)


@dataclass(frozen=True, slots=True)
class ManualDraft:
    """A manual send waiting for the person's state (pickles: it crosses to workers)."""

    header: Header
    event: str
    person: tuple[str, ...]
    files: tuple[tuple[Attachment, datetime], ...] = ()
    document_status: str = "undefined"

    def complete(self, person: PersonState | None) -> Normalised:
        """The message about ``person``: identification, personData as known, documents.

        :raises InputRejected: the gateway knows no person by the request's keys.
        """
        if person is None:
            masked = ", ".join(_masked(key) for key in self.person)
            raise InputRejected(f"manual send: no person known by {masked}", "person")
        data = person.person_data()
        warnings = [] if data is not None else [
            "sent without personData: " + ", ".join(person.missing()) + " not known"]
        status = cast("DocumentStatus", self.document_status)
        documents = [describe(a, self.header.message_id, modified, status)
                     for a, modified in self.files]
        message = PersonEventMessage(header=self.header, content=Content(
            person_identification=person.identification,
            person_event=cast("PersonEvent", self.event), person_data=data, document=documents))
        xml = write_message(message)
        return Normalised(
            kind="personEventMessage", message_id=self.header.message_id, xml=xml,
            tree=etree.fromstring(xml).getroottree(), attachments=tuple(a for a, _m in self.files),
            subject=tuple(person.keys()), facts={"format": "manual", "person_event": self.event},
            warnings=tuple(warnings), sender_id=self.header.sender_id)


def _masked(key: str) -> str:
    """A key without the digits that identify the person (``vn:756…97``)."""
    return f"{key[:6]}…{key[-2:]}" if key.startswith("vn:") else key.split(":", 2)[0] + ":…"


async def send_manual(intake: Intake, settings: Any, partner: str, event: str, person: str,
                      *, requested_by: str, business_key: str | None = None,
                      comment: str | None = None, files: Sequence[Attachment] = (),
                      sender_id: str | None = None, when: Mapping[str, datetime] | None = None
                      ) -> int:
    """Send ``event`` about ``person`` to ``partner`` by hand; the stored input's row id.

    For plugins (a registry's case workflow): the request is stored durably
    through ``intake`` (as a source's input is) before this returns; the
    gateway then completes, records and sends it like any message, and the
    journal names rule ``manual send`` and ``requested_by``. A person the
    gateway does not know quarantines the input, with that reason.

    :param person: the person: a VN (``7561234567897``, ``756.1234.5678.97``), or a local
        id with its category (``CATEGORY:ID``).
    :param files: files to attach (each becomes an eCH-0039 document).
    :param sender_id: the header's senderId; default: the partner's transport option
        ``sender_id`` (sedex).
    :param when: the modification time of a file, by name (default: now).
    :raises InputRejected: an unknown event, partner or business key, a comment over 1024
        characters, a VN with a wrong check digit, a local id without its category, no sender
        id, or files :func:`check_files` refuses.
    """
    check(settings, partner, event, business_key, comment)
    keys = parse_key(person)
    if any(key.startswith("vn:") and not vn_check_digit_ok(key[3:]) for key in keys):
        raise InputRejected("the VN has a wrong check digit, so it is no VN (mistyped?)",
                            "person")
    if any(key.startswith("local:*:") for key in keys):
        raise InputRejected("a local id needs its category (CATEGORY:ID)", "person")
    own, recipients = header_ids(settings, partner)
    sender = sender_id or own
    if not sender:
        raise InputRejected(f"partner {partner!r} has no sender_id option: give sender_id",
                            "sender_id")
    check_files(settings, files)
    now = datetime.now().astimezone()
    send = ManualSend(partner, event, tuple(keys), requested_by, sender, recipients,
                      business_key, comment,
                      tuple((f, (when or {}).get(f.name, now)) for f in files),
                      settings.documents.status)
    [mid] = await intake.submit([request(send, now)])
    return mid


def check_files(settings: Any, files: Sequence[Attachment]) -> None:
    """Refuse files over ``[limits]``, with names ``files/`` cannot hold, empty ones, and
    files that are not what their names say (:func:`gateway.file_kinds.content_problem`).

    :raises InputRejected: naming the file or the limit.
    """
    limits = settings.limits
    if len(files) > limits.max_attachments:
        raise InputRejected(f"{len(files)} files, more than [limits] max_attachments"
                            f" ({limits.max_attachments})", "files")
    if sum(len(f.data) for f in files) > limits.max_attachment_bytes:
        raise InputRejected("files larger than [limits] max_attachment_bytes"
                            f" ({int(limits.max_attachment_bytes)} bytes) in all", "files")
    seen: set[str] = set()
    for name, data in ((f.name, f.data) for f in files):
        problem = name_problem(name)
        if problem is not None:
            raise InputRejected(f"file {name!r} {problem}", "files")
        if not data:
            raise InputRejected(f"file {name!r} is empty (0 bytes: a scan that failed?)", "files")
        problem = content_problem(name, data)
        if problem is not None:
            raise InputRejected(f"file {name!r}: {problem}", "files")
        if name in seen:
            raise InputRejected(f"two files are named {name!r}; the files/ folder of a message"
                                " holds each name once (rename one)", "files")
        seen.add(name)
