"""The eCH-0020 v3 normaliser: a commune registry's events become eCH-0223 1.5 messages.

A ``delivery`` in ``http://www.ech.ch/xmlns/eCH-0020/3`` is recognised by its
namespace; anything else is declined (``None``) without being parsed, so
eCH-0223 input reaches the ech0223 normaliser (asked after this one). A root in
another eCH-0020 namespace (v2: ``.../eCH-0020/2``) is rejected saying that only
v3 is taken, so the daemon's quarantine, ``validate`` and ``rules explain`` all
say so. What each event becomes follows DOMAIN.md §5:

- an event with an eCH-0223 counterpart becomes a ``personEventMessage`` draft
  (``Normalised.draft``): most events carry little more than an identification,
  so the message is finished by ``draft.complete(person)`` once the core has
  looked up the person's last known state (``subject``). Normalising reads the
  header, the identification and the event's data (and rejects what is missing
  or malformed); the draft is completed in the worker that normalised it, from
  what was read there (elsewhere it reads the delivery again). ``personData``
  is that state merged with what the event says; the merged state is ``persons``.
  Without a state, an identification-only event is rejected (it cannot make a
  ``personData``); a permit or nationality event goes out without ``personData``.
  When required parts are still unknown the message goes without ``personData``
  and a warning lists them.
- ``changeResidencePermit``: old permit (state) against new (event): see ``_permit``.
  ``correctResidencePermit`` becomes ``othercaseOfMigration`` with a businessComment;
  ``adoption`` and ``childRelationship`` become ``correctParentalrelationship``
  (DOMAIN.md marks these "needs review").
- ``changeOccupation``: eCH-0223 1.5 has no such personEvent, so the message goes
  without ``personEvent`` (DOMAIN.md §5 allows "send without personEvent, or drop";
  sending keeps the job data reaching the canton) and a warning says so.
- ``naturalizeForeigner``: the Swiss nationality is completed as eCH-0223 needs it
  (8100, CH, "Schweiz"); ``facts["nationality_before"]`` is ``"foreign"`` (``"swiss"``
  for ``undoSwiss``), whatever the state knows.
- events without counterpart are ``not_relevant`` (with a state update when they
  carry data a state keeps); ``baseDelivery`` seeds one state per person and sends nothing.

The eCH-0223 header (eCH-0039 v3 / eCH-0058 v4) is derived from the eCH-0020
``deliveryHeader`` (eCH-0058 v5):

- ``messageId``: ``uuid5`` of the eCH-0020 ``senderId`` and ``messageId``, so a
  re-sent delivery becomes the same message (the store sees the duplicate);
  ``referenceMessageId`` is mapped the same way, so it names the eCH-0223 message
  made from the referenced eCH-0020 one.
- ``ourBusinessReferenceId``: the eCH-0020 ``messageId``, to trace a message back.
- ``senderId``, ``businessProcessId``, ``sendingApplication`` (the registry software
  the data comes from), ``messageDate``, ``eventDate``, ``action`` and
  ``testDeliveryFlag`` are taken over as they are: a re-sent delivery gives the
  same bytes. ``messageType`` is the eCH-0223 namespace, as in the gateway's own
  samples; ``recipientId`` is left out (the partner is known only once rules
  decided). ``subject`` and ``comment`` are not taken over (free text may name persons).

Rejection reasons name the element path and never a full VN or a name (they are
logged): a VN appears masked, as ``756.****.****.97``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

from gateway.api import (
    DOCUMENT_LIMIT,
    NATIONALITIES,
    InputRejected,
    NormaliseContext,
    Normalised,
    PersonState,
    RawInput,
    hookimpl,
    parse_untrusted,
    person_keys,
)

from . import _base, _state
from ._draft import EventDraft
from ._events import COUNTERPART, NO_COUNTERPART, EventData, read_event, single_person
from ._header import header as read_header
from ._xml import E20, NS_0020, Element, local, missing, where

#: The start of every eCH-0020 namespace, v3's and others': another version is named.
_NS_ANY = "http://www.ech.ch/xmlns/eCH-0020/"
_MARKERS = tuple(_NS_ANY.encode(codec) for codec in ("ascii", "utf-16-le", "utf-16-be"))
#: How far into the input the namespace declaration of the root is looked for.
_HEAD = 1 << 16
_VERSION = "3.0"

#: ``facts["format"]``: rules can tell eCH-0020 input from eCH-0223 and exports.
FORMAT = "eCH-0020"


@hookimpl
def gateway_fact_values() -> Mapping[str, Collection[str]]:
    """``format``, the ``source_event`` of the events that become messages rules decide, and
    ``nationality_before`` (any nationality: the person's state says it).

    Events without an eCH-0223 counterpart and ``baseDelivery`` are not relevant
    before any rule is asked: a rule matching them would never match.
    """
    return {"format": (FORMAT,), "source_event": tuple(COUNTERPART),
            "nationality_before": NATIONALITIES}


@hookimpl(tryfirst=True)
def gateway_normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """Normalise an eCH-0020 v3 ``delivery``; decline anything else.

    Before the eCH-0223 normaliser: this one declines other input without parsing
    it (no eCH-0020 namespace near its start), while that one parses all it is given.
    """
    head = raw.data[:_HEAD]
    if not any(marker in head for marker in _MARKERS):
        return None
    read = None
    if _base.MARKER in head:  # a register, read a person at a time
        root, read = _base.streamed(raw.data, context.max_bytes)
    else:
        root = parse_untrusted(raw.data, max_bytes=context.max_bytes, keep_blank_text=False,
                               setting=DOCUMENT_LIMIT).getroot()
    if not isinstance(root.tag, str) or not root.tag.startswith(E20):
        if isinstance(root.tag, str) and root.tag.startswith("{" + _NS_ANY):
            raise _other_version(root)
        return None
    return normalise(root, raw.data, read)


def _other_version(root: Element) -> InputRejected:
    """The rejection of an eCH-0020 root in a namespace other than v3's."""
    namespace = root.tag[1:].partition("}")[0]
    version = namespace.removeprefix(_NS_ANY)
    return InputRejected(f"eCH-0020 v{version:.8} ({namespace:.48}) is not taken: the gateway takes"
                         f" only eCH-0020 v3 ({NS_0020}); have the registry write v3", where(root))


def normalise(root: Element, source: bytes, read: _base.BaseRead | None = None) -> Normalised:
    """The eCH-0020 delivery ``root`` (parsed from ``source``) as a :class:`Normalised`.

    A draft when the event has an eCH-0223 counterpart; not relevant otherwise.
    ``read``: the persons of a ``baseDelivery`` streamed (:func:`_base.streamed`).

    :raises InputRejected: not a v3 ``delivery``, an unknown event, a required element
        missing, a wrong identification; the reason names the field and ``where`` its path.
    """
    if local(root) != "delivery":
        raise InputRejected(f"eCH-0020 root element {local(root)} is not delivery", where(root))
    if (root.get("version") or "").strip() != _VERSION:
        raise InputRejected(f"unsupported eCH-0020 version {root.get('version')!r:.12}: 3.0 is", where(root))
    kids = [child for child in root if local(child)]
    if not kids or local(kids[0]) != "deliveryHeader":
        raise missing(root, "deliveryHeader")
    if len(kids) < 2:
        raise missing(root, "event")
    if len(kids) > 2:
        raise InputRejected(f"a delivery holds one event; {local(kids[2])} follows {local(kids[1])}",
                            where(kids[2]))
    header = read_header(kids[0])
    event_el = kids[1]
    event = local(event_el)
    as_of = header.event_date or header.message_date.date()
    if event == "baseDelivery":
        return _base_delivery(event_el, as_of, read)
    if event in NO_COUNTERPART:
        return _not_relevant(event, event_el, header.message_id, header.sender_id, as_of)
    if event not in COUNTERPART:
        raise InputRejected(f"unknown event element {event} (not an eCH-0020 v3 event)", where(event_el))
    ev = read_event(event_el)
    subject = tuple(person_keys(ev.identification))
    facts = {"format": FORMAT, "source_event": event,
             "source_message_id": header.our_business_reference_id}
    draft = EventDraft(source, COUNTERPART[event], subject, facts, header=header, event=ev)
    return Normalised(kind="personEventMessage", message_id=header.message_id, xml=b"", tree=None,
                      reference_message_id=header.reference_message_id, action=header.action,
                      subject=subject, draft=draft, facts=facts, sender_id=header.sender_id)


def _base_delivery(el: Element, as_of: date, read: _base.BaseRead | None) -> Normalised:
    persons = _base.base_persons(el, as_of, read)
    if not persons:
        raise missing(el, "messages")
    return Normalised(kind="baseDelivery", message_id=None, xml=b"", tree=None,
                      not_relevant="baseDelivery seeds the person state and sends nothing",
                      persons=tuple(persons), facts={"format": FORMAT, "source_event": "baseDelivery"})


def _not_relevant(event: str, el: Element, message_id: str, sender_id: str,
                  as_of: date) -> Normalised:
    ev: EventData | None = read_event(el) if single_person(event) else None
    subject = tuple(person_keys(ev.identification)) if ev is not None else ()
    persons: tuple[PersonState, ...] = ()
    if ev is not None and (ev.parts or event == "changeSex"):
        persons = (_state.stated(ev, as_of),)
    return Normalised(kind="personEventMessage", message_id=message_id, xml=b"", tree=None,
                      subject=subject, persons=persons, sender_id=sender_id,
                      facts={"format": FORMAT, "source_event": event},
                      not_relevant=f"eCH-0020 event {event} has no eCH-0223 counterpart")
