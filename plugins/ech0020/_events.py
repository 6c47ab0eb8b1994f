"""The eCH-0020 v3 events, their eCH-0223 counterparts (DOMAIN.md §5) and what each one states.

:func:`read_event` turns one event element into :class:`EventData`: the
person's identification and the parts of an eCH-0223 person state the event
states outright, plus what needs the person's earlier state to apply
(separation dates, a parent added, a naturalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Any, NamedTuple

from gateway.api import InputRejected, ech0223, read_part

from . import _parts
from ._xml import XSI_NIL, Element, all_named, children, date_of, local, missing, named, text, where

#: The personEvent of an eCH-0020 permit change is decided by comparing permits (see ``_permit``).
PERMIT_CASE = "<permit case>"
_ONE_TO_ONE = (
    "moveIn", "moveOut", "move", "birth", "death", "marriage", "partnership", "separation", "divorce",
    "undoMarriage", "undoPartnership", "missing", "undoMissing", "maritalStatusPartner", "changeName",
    "changeNationality", "naturalizeForeigner", "undoSwiss", "changeResidenceType", "correctReporting",
    "correctName", "correctNationality", "correctOccupation", "correctMaritalInfo", "correctBirthInfo",
    "correctDeathData",
)  # fmt: skip
#: eCH-0020 events with an eCH-0223 counterpart → its personEvent (``None``: 1.5 has none, sent without).
COUNTERPART: dict[str, str | None] = {
    **{event: event for event in _ONE_TO_ONE},
    "undoSeparation": "undoSeperation",
    "deletedInRegister": "deletedinRegister",
    "correctParentalRelationship": "correctParentalrelationship",
    "correctPersonAdditionalData": "correctPersonAddionalData",
    "changeResidencePermit": PERMIT_CASE,
    "correctResidencePermit": "othercaseOfMigration",
    "adoption": "correctParentalrelationship",
    "childRelationship": "correctParentalrelationship",
    "changeOccupation": None,
}
#: eCH-0020 v3 events without an eCH-0223 counterpart (``baseDelivery`` is handled on its own).
NO_COUNTERPART = frozenset({
    "keyExchange", "dataRequest", "identificationConversion", "announceDuplicate", "naturalizeSwiss",
    "undoCitizen", "changeOrigin", "changeSex", "contact", "changeReligion", "guardianMeasure",
    "undoGuardian", "changeGuardian", "dataLock", "paperLock", "care", "changeArmedForces",
    "changeCivilDefense", "changeFireService", "changeHealthInsurance",
    "changeMatrimonialInheritanceArrangement", "correctGuardianRelationship", "correctIdentification",
    "correctContact", "correctReligion", "correctPlaceOfOrigin", "correctPoliticalRightData",
    "correctDataLock", "correctPaperLock",
})  # fmt: skip
#: Events whose several persons (or none) cannot be told apart: no subject, no state update.
_NO_SINGLE_PERSON = frozenset({"keyExchange", "dataRequest", "identificationConversion"})
_RESIDENCE = ("hasMainResidence", "hasSecondaryResidence", "hasOtherResidence")
#: Children an event must have (a tuple: one of them), beyond its person (eCH-0020 XSD).
REQUIRED: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "moveIn": (_RESIDENCE,), "correctReporting": (_RESIDENCE,),
    "moveOut": ("moveOutReportingDestination",), "move": ("moveReportingMunicipality",),
    "changeResidenceType": ("changeResidenceTypeReportingRelationship",),
    "death": ("deathData",), "missing": ("deathData",),
    "marriage": ("maritalInfo",), "partnership": ("maritalInfo",), "correctMaritalInfo": ("maritalInfo",),
    "separation": ("separationData",), "divorce": ("maritalData",), "undoMarriage": ("maritalData",),
    "undoPartnership": ("maritalData",), "maritalStatusPartner": ("maritalData",),
    "changeName": ("nameInfo",), "correctName": ("nameInfo",), "correctBirthInfo": ("birthInfo",),
    "changeNationality": ("nationalityData",), "correctNationality": ("nationalityData",),
    "undoSwiss": ("nationalityData",), "naturalizeForeigner": ("placeOfOriginInfo", "nationality"),
    "changeResidencePermit": ("residencePermitData",),
}  # fmt: skip
#: Events whose person element describes the person (eCH-0020 person types), and what it must have.
_FULL_EVENTS = frozenset({"baseDelivery", "moveIn", "birth", "changeResidenceType", "adoption",
                          "childRelationship"})
_FULL_PERSON = ("personIdentification", "nameInfo", "birthInfo", ("maritalInfo", "maritalData"),
                "nationalityData")
#: eCH-0011 Switzerland, as the eCH-0223 nationality of a naturalised person needs it.
SWISS = ech0223.Country(country_id=8100, country_id_iso2="CH", country_name_short=_parts.SWITZERLAND_NAME)


class EventData(NamedTuple):
    """What one eCH-0020 event says about one person.

    A named tuple: made for every event, where a frozen dataclass cost three times as much.

    :param parts: :class:`~gateway.api.PersonState` parts the event states outright.
    :param person_path: the person element's path, for rejections.
    :param notes: what the event says that eCH-0223 cannot carry (become warnings).
    """

    event: str
    person_path: str
    identification: ech0223.PersonIdentificationLight
    parts: dict[str, Any]
    comes_from: ech0223.ComesFrom | None = None
    goes_to: ech0223.GoesTo | None = None
    separation: ech0223.SeparationData | None = None
    separation_till: date | None = None
    naturalized: bool = False
    notes: tuple[str, ...] = ()


def single_person(event: str) -> bool:
    """Whether the event is about one person the gateway can name."""
    return event not in _NO_SINGLE_PERSON


def read_event(el: Element, event: str | None = None) -> EventData:
    """Read the event ``el`` (or, with ``event="baseDelivery"``, one of its ``messages``).

    The person is the event's first child element; the rest is the event's data.

    :raises InputRejected: required data is missing or malformed (the reason names the field).
    """
    event = event or local(el)
    kids, own, first = _locate(el, event)
    person = kids[0][1]
    reader = _Reader(event)
    for name, child in (own if "personIdentification" in first else []) + kids[1:]:
        reader.take(name, child)
    ident = first.get("personIdentification", first.get("personIdentificationBefore", person))
    path = f"{where(el)}/{local(person)}" if event == "baseDelivery" else f"/delivery/{event}/{local(person)}"
    return reader.result(event, path, _parts.identification(ident, **reader.names()))


_Named = list[tuple[str, Element]]


def _locate(el: Element, event: str) -> tuple[_Named, _Named, dict[str, Element]]:
    """The event's child elements and its person element's, each with its local name, and
    the latter by name (the first of each).

    :raises InputRejected: the event or its person lacks a required element.
    """
    kids = named(el)
    if not kids:
        raise missing(el, f"{event}Person")
    present = {name for name, _ in kids}
    for need in REQUIRED.get(event, ()):
        options = need if isinstance(need, tuple) else (need,)
        if not present.intersection(options):
            raise missing(el, " or ".join(options))
    person = kids[0][1]
    own = named(person)
    first = dict(reversed(own))
    if event in _FULL_EVENTS:
        for need in _FULL_PERSON:
            options = need if isinstance(need, tuple) else (need,)
            if not first.keys() & set(options):
                raise missing(person, " or ".join(options))
    return kids, own, first


class _Reader:
    """Collects the parts of one event, element by element."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.parts: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.relations: list[Element] = []
        self.notes: list[str] = []

    def take(self, name: str, el: Element) -> None:
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, el)
        elif name in _RESIDENCE or name in ("moveReportingMunicipality", "moveOutReportingDestination",
                                            "changeResidenceTypeReportingRelationship"):
            self._residence(el)

    def names(self) -> dict[str, str]:
        """The official and first name of the event's ``nameData``: the identification's are
        replaced by them."""
        name = self.parts.get("name_data")
        if name is None:
            return {}
        return {"official_name": name.official_name, "first_name": name.first_name}

    def result(self, event: str, path: str, ident: ech0223.PersonIdentificationLight) -> EventData:
        if self.relations:
            self.parts["parental_relation"] = _parts.parents(self.relations)
        sex = self.extra.pop("sex", None)
        if sex is not None:
            ident = ident.model_copy(update={"sex": sex})
        return EventData(event=event, person_path=path, identification=ident,
                         parts={k: v for k, v in self.parts.items() if v is not None},
                         notes=tuple(self.notes), **self.extra)

    def _residence(self, el: Element) -> None:
        found = _parts.residence(el)
        self.parts["municipality"] = found.municipality
        self.parts["residence_address"] = found.address
        if found.comes_from is not None and found.arrival is not None:
            self.extra["comes_from"] = ech0223.ComesFrom(arrival_date=found.arrival,
                                                         **asdict(found.comes_from))
        if found.goes_to is not None and found.departure is not None:
            self.extra["goes_to"] = ech0223.GoesTo(departure_date=found.departure, **asdict(found.goes_to))

    def name_info(self, el: Element) -> None:
        kids = children(el)
        if "nameData" not in kids:
            raise missing(el, "nameData")
        self.parts["name_data"] = read_part(kids["nameData"], ech0223.NameData)

    def birth_info(self, el: Element) -> None:
        kids = children(el)
        if "birthData" not in kids:
            raise missing(el, "birthData")
        self.parts["birth_data"] = read_part(kids["birthData"], ech0223.BirthData)
        if "birthAddonData" in kids:
            self.parts["birth_addon_data"] = read_part(kids["birthAddonData"], ech0223.BirthAddonData)

    def marital_info(self, el: Element) -> None:
        kids = children(el)
        if "maritalData" not in kids:
            raise missing(el, "maritalData")
        self.parts["marital_data"] = _parts.marital(kids["maritalData"])

    def marital_data(self, el: Element) -> None:
        self.parts["marital_data"] = _parts.marital(el)

    def religion(self, el: Element) -> None:
        self.parts["religion_data"] = read_part(el, ech0223.ReligionData)

    def nationality(self, el: Element) -> None:
        self.parts["nationality_data"] = read_part(el, ech0223.NationalityData)

    def job(self, el: Element) -> None:
        self.parts["job_data"] = read_part(el, ech0223.JobData)

    def relation(self, el: Element) -> None:
        self.relations.append(el)

    def permit(self, el: Element) -> None:
        data = read_part(el, ech0223.ResidencePermitData)
        if data.residence_permit is None and self.event == "changeResidencePermit":
            nil = next((c for c in el if local(c) == "residencePermit" and c.get(XSI_NIL)), el)
            raise InputRejected("residencePermit is nil: the new permit is missing, so the permit"
                                " case cannot be decided", where(nil))
        self.parts["residence_permit_data"] = data

    def separation(self, el: Element) -> None:
        self.extra["separation"] = _parts.separation(el)

    def separation_till(self, el: Element) -> None:
        self.extra["separation_till"] = date_of(el)

    def naturalized(self, el: Element) -> None:
        status = children(el).get("nationalityStatus")
        if status is None or text(status) != "2":
            raise InputRejected("the nationality of a naturalisation must have nationalityStatus 2",
                                where(el))
        event = el.getparent()
        origins = all_named(event, "placeOfOriginInfo") if event is not None else []
        since = _parts.naturalization_date(origins)
        self.parts["nationality_data"] = ech0223.NationalityData(
            nationality_status="2",
            country_info=[ech0223.CountryInfo(country=SWISS, nationality_valid_from=since)])
        self.extra["naturalized"] = True

    def additional_data(self, el: Element) -> None:
        self.notes.append("eCH-0223 has no fields for what correctPersonAdditionalData changes"
                          " (salutation, title, language): only the event is sent")

    def remove_parent(self, el: Element) -> None:
        self.notes.append(f"{self.event} removes a parent: eCH-0223 parentalRelation cannot say so;"
                          " the remaining parents are sent as known")

    def sex(self, el: Element) -> None:
        self.extra["sex"] = text(el)


_HANDLERS: dict[str, Callable[[_Reader, Element], None]] = {
    "nameInfo": _Reader.name_info,
    "birthInfo": _Reader.birth_info,
    "religionData": _Reader.religion,
    "maritalInfo": _Reader.marital_info,
    "maritalData": _Reader.marital_data,
    "nationalityData": _Reader.nationality,
    "residencePermitData": _Reader.permit,
    "jobData": _Reader.job,
    "parentalRelationship": _Reader.relation,
    "addParent": _Reader.relation,
    "removeParent": _Reader.remove_parent,
    "separationData": _Reader.separation,
    "separationValidTill": _Reader.separation_till,
    "nationality": _Reader.naturalized,
    "personAdditionalData": _Reader.additional_data,
    "sex": _Reader.sex,
}
