"""Valid, varied eCH-0223 1.5 messages about foreign residents, for demos, benchmarks, tests.

Everything is drawn from the ``random.Random`` passed in, so a seed gives the same message.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast, get_args

from ._sample_data import COMMENTS, DOCUMENTS, MUNICIPALITIES, NATIONS, NOTICES, REASONS
from ._sample_person import identification, make_person, person_data
from .codes import BusinessKey, PersonEvent
from .document import Document, File, LangText
from .header import Header, SendingApplication
from .message import (
    BusinessInformation,
    Content,
    EventReport,
    Notice,
    PersonEventMessage,
    Reason,
    Response,
)
from .namespaces import NS

#: Every ``personEvent`` of version 1.5, in schema order.
PERSON_EVENTS: tuple[PersonEvent, ...] = get_args(PersonEvent)
_BUSINESS_KEYS: tuple[BusinessKey, ...] = get_args(BusinessKey)
_APP = SendingApplication(manufacturer="ech-gateway", product="ech-gateway", product_version="0.1")


def sample_person_event(
    rng: random.Random,
    *,
    message_id: str | None = None,
    event: str | None = None,
    sender_id: str = "T1-2511-1",
    full: bool = True,
) -> PersonEventMessage:
    """A valid eCH-0223 1.5 ``personEventMessage`` about a foreign resident.

    :param message_id: the header's ``messageId`` (a UUID drawn from ``rng`` when None).
    :param event: the ``personEvent`` (random when None); it shapes marital, permit,
        move and birth data. ``correct...`` events are sent as corrections (action 4).
    :raises ValueError: ``event`` is not a 1.5 ``personEvent``.
    :param sender_id: the header's ``senderId``; a leading ``T`` sets ``testDeliveryFlag``.
    :param full: with ``personData`` and, now and then, documents and business
        information; otherwise only the person's identification and the event.
    """
    chosen = rng.choice(PERSON_EVENTS) if event is None else _person_event(event)
    place = rng.choice(MUNICIPALITIES)
    day = date(2024, 1, 1) + timedelta(days=rng.randrange(730))
    person = make_person(rng, rng.choice(NATIONS), day, chosen == "birth")
    content = Content(
        person_identification=identification(rng, person, place),
        person_event=chosen,
        person_data=person_data(rng, person, chosen, day, place) if full else None,
        document=_documents(rng, day) if full and rng.random() < 0.4 else [],
        business_information=_business(rng, day) if full and rng.random() < 0.5 else None,
    )
    extra: dict[str, Any] = {"message_id": message_id or _uuid(rng)}
    if chosen.startswith("correct"):
        extra.update(action="4", reference_message_id=_uuid(rng))
    if rng.random() < 0.3:
        extra["our_business_reference_id"] = f"{place.canton}-{day.year}-{rng.randrange(10**5):05d}"
        extra["subject"] = f"{chosen}: {person.first_name} {person.official_name}"
    recipient = ("T" if sender_id.startswith("T") else "") + f"2-{place.canton}-1"
    header = _header(rng, sender_id, recipient, day, extra)
    return PersonEventMessage(header=header, content=content)


def sample_event_report(rng: random.Random, *, reference_message_id: str) -> EventReport:
    """A valid eCH-0223 1.5 ``eventReport`` (action 8) rejecting ``reference_message_id``."""
    place = rng.choice(MUNICIPALITIES)
    day = date(2024, 1, 1) + timedelta(days=rng.randrange(730))
    person = make_person(rng, rng.choice(NATIONS), day, False)
    extra = {"message_id": _uuid(rng), "action": "8", "reference_message_id": reference_message_id}
    reasons = rng.sample(REASONS, rng.randint(1, 3))
    return EventReport(
        header=_header(rng, f"T2-{place.canton}-1", "T1-2511-1", day, extra),
        response=Response(
            person_identification=identification(rng, person, place),
            reason=[Reason(reason_code_number=n, reason_code_text=t) for n, t in reasons],
            notice=Notice(notice_text=rng.choice(NOTICES)) if rng.random() < 0.5 else None,
        ),
    )


def _person_event(name: str) -> PersonEvent:
    if name not in PERSON_EVENTS:
        raise ValueError(f"{name!r} is not an eCH-0223 1.5 personEvent")
    return cast(PersonEvent, name)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _at(rng: random.Random, day: date) -> datetime:
    """A moment on ``day`` in Swiss local time (CEST from April to October, roughly)."""
    zone = timezone(timedelta(hours=2 if 4 <= day.month <= 10 else 1))
    micro = rng.choice((0, 0, rng.randrange(1, 1000) * 1000))
    clock = (rng.randrange(7, 19), rng.randrange(60), rng.randrange(60), micro)
    return datetime(day.year, day.month, day.day, *clock, tzinfo=zone)


def _header(rng: random.Random, sender: str, recipient: str, day: date, extra: dict[str, Any]) -> Header:
    values: dict[str, Any] = {"action": "1", **extra}
    if rng.random() < 0.3:
        values["business_process_id"] = _uuid(rng)
    if rng.random() < 0.2:
        values["response_expected"] = True
    return Header(
        sender_id=sender,
        recipient_id=[recipient],
        message_type=NS.ECH_0223,
        sending_application=_APP,
        message_date=_at(rng, day + timedelta(days=rng.randrange(3))),
        event_date=day,
        test_delivery_flag=sender.startswith("T"),
        **values,
    )


def _documents(rng: random.Random, day: date) -> list[Document]:
    documents = []
    for index, (title, kind) in enumerate(rng.sample(DOCUMENTS, rng.randint(1, 2))):
        uid = _uuid(rng)
        file = File(
            path_file_name=f"files/{uid}.pdf",
            mime_type="application/pdf",
            hash_code=f"{rng.getrandbits(256):064x}",
            hash_code_algorithm="SHA-256",
        )
        documents.append(
            Document(
                uuid=uid,
                titles=[LangText(text=title, lang="de")],
                status=rng.choice(("created", "signed", "approved")),
                files=[file],
                is_leading_document=index == 0,
                document_kind=kind if rng.random() < 0.7 else None,
                original_creation_date=_at(rng, day - timedelta(days=rng.randrange(60))),
            )
        )
    return documents


def _business(rng: random.Random, day: date) -> BusinessInformation:
    return BusinessInformation(
        business_comment=rng.choice(COMMENTS) if rng.random() < 0.7 else None,
        business_key=rng.choice(_BUSINESS_KEYS) if rng.random() < 0.8 else None,
        encashment=rng.choice((True, False)) if rng.random() < 0.4 else None,
        deadline=day + timedelta(days=30) if rng.random() < 0.4 else None,
    )
