"""Reading the parts of an eCH-0020 event that have no direct eCH-0223 counterpart type.

Identification (with the VN check digit the XSD cannot check), places of
arrival and departure, residences, parents, the two forms of marital data and
separation data. Parts whose type eCH-0223 shares (name, birth, nationality
data...) are read with :func:`gateway.api.read_part`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from gateway.api import InputRejected, ech0223, mask_vn, read_part, vn_check_digit_ok, vn_shaped

from ._xml import Element, all_named, children, date_of, missing, named, text, where

#: eCH-0008 short name of Switzerland, as eCH-0223 ``countryNameShort`` needs it.
SWITZERLAND_NAME = "Schweiz"
#: eCH-0007 ``municipalityNameType`` is at most 40 characters.
_MUNICIPALITY_NAME_MAX = 40
#: eCH-0021 ``typeOfRelationship`` of a parental relationship: 3 mother, 4 father.
_MOTHER, _FATHER = "3", "4"
_IDENT_TEXT = {"officialName": "official_name", "firstName": "first_name",
               "originalName": "original_name", "sex": "sex"}


def model(cls: type[Any], el: Element, **values: Any) -> Any:
    """``cls(**values)``, a validation failure rejected at ``el`` (no input values in the reason).

    Validated by the model's validator directly, without pydantic's Python ``__init__`` around it.
    """
    try:
        return cls.__pydantic_validator__.validate_python(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or cls.__name__}: {e['msg']}"
                             for e in exc.errors())
        raise InputRejected(problems, where(el)) from None


def identification(el: Element, **names: str) -> ech0223.PersonIdentificationLight:
    """An eCH-0044 identification (full or light); ``euPersonId`` has no place in eCH-0223.

    :param names: ``official_name`` and ``first_name`` to take instead of the element's own.
    :raises InputRejected: a required name is missing, or the VN is malformed or has a
        wrong check digit (the reason masks the VN).
    """
    values: dict[str, Any] = {}
    others = []
    for name, child in named(el):
        if name == "vn":
            values["vn"] = _vn(child)
        elif name == "localPersonId":
            values["local_person_id"] = read_part(child, ech0223.NamedPersonId)
        elif name == "otherPersonId":
            others.append(read_part(child, ech0223.NamedPersonId))
        elif name == "dateOfBirth":
            values["date_of_birth"] = read_part(child, ech0223.DatePartiallyKnown)
        elif name in _IDENT_TEXT:
            values[_IDENT_TEXT[name]] = text(child)
    for required in ("officialName", "firstName"):
        if _IDENT_TEXT[required] not in values:
            raise InputRejected(f"missing required element {required}", f"{where(el)}/{required}")
    values.update(names)
    return model(ech0223.PersonIdentificationLight, el, other_person_id=others, **values)


def _vn(el: Element) -> int:
    vn = text(el)
    if not vn_shaped(vn):
        raise InputRejected("VN is not 13 digits starting with 756", where(el))
    if not vn_check_digit_ok(vn):
        raise InputRejected(f"VN {mask_vn(vn)} has a wrong check digit (EAN-13)", where(el))
    return int(vn)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a person came from or went to, as eCH-0223 ``comesFrom``/``goesTo`` name it."""

    municipality_name: str
    country_name_short: str
    canton_abbreviation: str | None = None


def place(el: Element) -> Place:
    """An eCH-0011 ``destinationType``: a Swiss town, a foreign country (and town), or unknown."""
    kids = children(el)
    if "swissTown" in kids:
        town = read_part(kids["swissTown"], ech0223.SwissMunicipality)
        return Place(town.municipality_name[:_MUNICIPALITY_NAME_MAX], SWITZERLAND_NAME,
                     town.canton_abbreviation)
    if "foreignCountry" in kids:
        foreign = children(kids["foreignCountry"])
        if "country" not in foreign:
            raise missing(kids["foreignCountry"], "country")
        country = read_part(foreign["country"], ech0223.Country)
        name = text(foreign["town"]) if "town" in foreign else country.country_name_short
        return Place(name[:_MUNICIPALITY_NAME_MAX], country.country_name_short)
    return Place("unbekannt", "unbekannt")


@dataclass(frozen=True, slots=True)
class Residence:
    """What an eCH-0020 residence element says (each part optional)."""

    municipality: ech0223.SwissMunicipality | None = None
    address: ech0223.SwissAddressInformation | None = None
    arrival: date | None = None
    comes_from: Place | None = None
    departure: date | None = None
    goes_to: Place | None = None


def residence(el: Element) -> Residence:
    """A residence: eCH-0020's reporting types, or eCH-0011's main/secondary/other residence.

    The data sits in ``el`` itself or, for the eCH-0011 types, in the child that
    has a ``reportingMunicipality`` (``mainResidence``, ``secondaryResidence``).
    """
    kids = children(el)
    if "reportingMunicipality" not in kids:
        for child in el:
            inner = children(child)
            if "reportingMunicipality" in inner:
                kids = inner
                break
    dwelling = children(kids["dwellingAddress"]) if "dwellingAddress" in kids else {}
    return Residence(
        municipality=(read_part(kids["reportingMunicipality"], ech0223.SwissMunicipality)
                      if "reportingMunicipality" in kids else None),
        address=(read_part(dwelling["address"], ech0223.SwissAddressInformation)
                 if "address" in dwelling else None),
        arrival=date_of(kids["arrivalDate"]) if "arrivalDate" in kids else None,
        comes_from=place(kids["comesFrom"]) if "comesFrom" in kids else None,
        departure=date_of(kids["departureDate"]) if "departureDate" in kids else None,
        goes_to=place(kids["goesTo"]) if "goesTo" in kids else None,
    )


def parents(relations: list[Element]) -> ech0223.ParentalRelation | None:
    """eCH-0223 ``parentalRelation`` from eCH-0021 parental relationships (mother 3, father 4).

    Foster parents (5, 6) have no place in eCH-0223 and are left out.
    """
    found: dict[str, ech0223.PersonIdentificationLight] = {}
    for relation in relations:
        kids = children(relation)
        if "typeOfRelationship" not in kids or "partner" not in kids:
            raise InputRejected("a parental relationship needs partner and typeOfRelationship",
                                where(relation))
        kind = text(kids["typeOfRelationship"])
        partner = children(kids["partner"])
        ident = partner.get("personIdentification")
        if ident is None:
            ident = partner.get("personIdentificationPartner")
        if ident is not None and kind in (_MOTHER, _FATHER):
            found["mother" if kind == _MOTHER else "father"] = identification(ident)
    return ech0223.ParentalRelation(**found) if found else None


def marital(el: Element) -> ech0223.MaritalData:
    """Marital data: eCH-0011's type, or the restricted form whose children are eCH-0020's."""
    kids = children(el)
    status = kids.get("maritalStatus")
    if status is None:
        raise InputRejected("missing required element maritalStatus", f"{where(el)}/maritalStatus")
    if status.tag.startswith("{http://www.ech.ch/xmlns/eCH-0011/"):
        return read_part(el, ech0223.MaritalData)
    since = date_of(kids["dateOfMaritalStatus"]) if "dateOfMaritalStatus" in kids else None
    return model(ech0223.MaritalData, el, marital_status=text(status),
                 date_of_marital_status=since)


def separation(el: Element) -> ech0223.SeparationData:
    """eCH-0011 ``separationData``."""
    kids = children(el)
    return model(
        ech0223.SeparationData, el,
        separation=text(kids["separation"]) if "separation" in kids else None,
        separation_valid_from=date_of(kids["separationValidFrom"]) if "separationValidFrom" in kids else None,
        separation_valid_till=date_of(kids["separationValidTill"]) if "separationValidTill" in kids else None,
    )


def naturalization_date(origins: list[Element]) -> date | None:
    """The ``naturalizationDate`` of the first place of origin that states one."""
    for origin in origins:
        for addon in all_named(origin, "placeOfOriginAddonData"):
            found = children(addon).get("naturalizationDate")
            if found is not None:
                return date_of(found)
    return None
