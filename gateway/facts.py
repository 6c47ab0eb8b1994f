"""What rules match on: the event, the source, and the person as they were *before* the event.

The person's last known state (:class:`~gateway.person_state.PersonState`)
comes first; where the gateway has none, the message's own ``personData``
stands in (for an eCH-0223 input that is all there is). A normaliser may
state a fact outright (``nationality_before`` for a naturalisation, whose
message already says "Swiss").
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, get_args

from lxml import etree

from gateway.contracts import Normalised, RawInput
from gateway.ech0223.codes import PersonEvent
from gateway.permits import permit_category
from gateway.person_state import SWITZERLAND, PersonState, age

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
_P = f"{{{NS}}}"
#: The facts every message has, whatever is known of its person (``None`` when unknown).
#: Where stage one keeps the facts of the message's own personData (:func:`message_facts`).
MESSAGE_PERSON = "message_person"
NAMES = ("kind", "source", "event", "nationality", "country", "permit", "permit_category",
         "permit_valid_till", "municipality", "municipality_name", "canton", "marital_status",
         "sex", "age")
#: The ``kind`` of the messages rules decide: the eCH-0223 root elements.
MessageKind = Literal["personEventMessage", "eventReport"]
#: The values of facts the core sets in the messages rules decide (plugins declare theirs with
#: ``gateway_fact_values``): an eCH-0223 message's personEvent, and the message's kind (what
#: sends nothing, a ``baseDelivery``, never reaches the rules). A manual send's ``format``
#: ("manual") is not one: manual sends are decided by their request, never by rules.
VALUES: dict[str, tuple[str, ...]] = {"person_event": get_args(PersonEvent),
                                      "kind": get_args(MessageKind)}


def rule_facts(n: Normalised, raw: RawInput, before: PersonState | None) -> dict[str, Any]:
    """The facts of message ``n`` from ``raw`` about a person whose state was ``before``.

    The age is the person's on the message's date (:func:`_message_date`; today for a
    message without one), so that a replay decides as the first pass did.
    """
    if "event_date" in n.facts:
        when = n.facts["event_date"]
    else:  # a completed draft's own header
        when = _message_date(n.tree.getroot().find(f"{_P}header")) if n.tree is not None else None
    on = when or date.today()
    person = before.facts(on) if before is not None else {}
    own = None
    if before is None or before.nationality_data is None:  # the message's own personData speaks
        own = n.facts.get(MESSAGE_PERSON)
        if own is None and MESSAGE_PERSON not in n.facts and n.tree is not None:
            own = message_facts(n.tree).get(MESSAGE_PERSON)
    if own:
        own = dict(own)
        born = own.pop("born", None)
        if born:
            own["age"] = _age_of(born, on)
        person = {**person, **{k: v for k, v in own.items() if person.get(k) is None}}
    facts: dict[str, Any] = dict.fromkeys(NAMES)
    facts.update(person)
    facts.update(kind=n.kind, source=raw.source, event=_event(n))
    facts.update((k, v) for k, v in n.facts.items() if k != MESSAGE_PERSON)
    facts["event_date"] = when
    if "nationality_before" in n.facts:
        facts["nationality"] = n.facts["nationality_before"]
    if facts["nationality"] is None:
        facts["nationality"] = "unknown"
    return facts


def message_subject(tree: etree._ElementTree | None) -> tuple[str, ...]:
    """The person keys (``vn:``, ``local:``) of an eCH-0223 message's person identification."""
    if tree is None:
        return ()
    root = tree.getroot()
    ident = root.find(f"{_P}content/{_P}personIdentification")
    if ident is None:
        ident = root.find(f"{_P}response/{_P}personIdentification")
    if ident is None:
        return ()
    keys = []
    vn = ident.findtext("{*}vn")
    if vn:
        keys.append(f"vn:{vn.strip()}")
    local = ident.find("{*}localPersonId")
    if local is not None:
        keys.append(f"local:{(local.findtext('{*}personIdCategory') or '').strip()}:"
                    f"{(local.findtext('{*}personId') or '').strip()}")
    return tuple(keys)


def _event(n: Normalised) -> str | None:
    if "person_event" in n.facts:
        event = n.facts["person_event"]
        return str(event) if event is not None else None
    if n.tree is None:
        return None
    text = n.tree.getroot().findtext(f"{_P}content/{_P}personEvent")
    return text.strip() if text else None


_E11 = "{http://www.ech.ch/xmlns/eCH-0011/8}"
_E08 = "{http://www.ech.ch/xmlns/eCH-0008/3}"
_E07 = "{http://www.ech.ch/xmlns/eCH-0007/5}"
_E44 = "{http://www.ech.ch/xmlns/eCH-0044/4}"
_E39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
#: Paths into personData, namespaces spelled out (wildcard searches cost several times more).
_COUNTRIES = f"{_P}nationalityData/{_E11}countryInfo/{_E11}country"
_PERMIT = f"{_P}residencePermitData/{_E11}residencePermit"
_BORN = f"{_P}birthData/{_E11}dateOfBirth/{_E44}yearMonthDay"


def message_facts(tree: etree._ElementTree | None) -> dict[str, Any]:
    """What rules may take from an eCH-0223 message itself: its event, its person's data.

    Computed where the message is parsed (stage one); :func:`rule_facts` uses
    the person's data only where the gateway knows nothing of the person.
    """
    if tree is None:
        return {}
    content = tree.getroot().find(f"{_P}content")
    if content is None:
        return {}
    event = content.findtext(f"{_P}personEvent")
    out: dict[str, Any] = {"person_event": event.strip() if event else None,
                           "event_date": _message_date(tree.getroot().find(f"{_P}header"))}
    data = content.find(f"{_P}personData")
    if data is not None:
        out[MESSAGE_PERSON] = _message_person(data)
    return out


def _message_date(header: etree._Element | None) -> date | None:
    """The header's eventDate, else the day of its messageDate: what a rule's deadline follows."""
    if header is None:
        return None
    text = (header.findtext(f"{_E39}eventDate") or header.findtext(f"{_E39}messageDate") or "")
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _message_person(data: etree._Element) -> dict[str, Any]:
    """The facts a personData gives; ``born`` is the date of birth, for the age."""
    out: dict[str, Any] = {}
    status = (data.findtext(f"{_P}nationalityData/{_E11}nationalityStatus") or "").strip()
    countries = data.findall(_COUNTRIES)
    if status == "2" and countries:
        ids = [(c.findtext(f"{_E08}countryId") or "").strip() for c in countries]
        isos = [(c.findtext(f"{_E08}countryIdISO2") or "").strip() for c in countries]
        out["nationality"] = "swiss" if str(SWITZERLAND) in ids or "CH" in isos else "foreign"
        out["country"] = int(ids[0]) if ids[0].isdecimal() else None
    elif status == "1":  # eCH-0011: 0 unknown, 1 stateless, 2 known
        out["nationality"] = "stateless"
    permit = data.findtext(_PERMIT)
    if permit:
        out["permit"] = permit.strip()
        out["permit_category"] = permit_category(permit.strip())
    municipality = data.find(f"{_P}municipality")
    if municipality is not None:
        bfs = (municipality.findtext(f"{_E07}municipalityId") or "").strip()
        out["municipality"] = int(bfs) if bfs.isdecimal() else None
        out["municipality_name"] = municipality.findtext(f"{_E07}municipalityName")
        out["canton"] = municipality.findtext(f"{_E07}cantonAbbreviation")
    born = data.findtext(_BORN)
    if born:
        out["born"] = born.strip()[:10]
    marital = data.findtext(f"{_P}maritalData/{_E11}maritalStatus")
    if marital:
        out["marital_status"] = marital.strip()
    sex = data.findtext(f"{_P}birthData/{_E11}sex")
    if sex:
        out["sex"] = sex.strip()
    return out


def _age_of(born: str, on: date) -> int | None:
    try:
        return age(date.fromisoformat(born), on)
    except ValueError:
        return None
