"""What rules match on: the event, the source, and the person as they were *before* the event.

The person's last known state (:class:`~gateway.person_state.PersonState`)
comes first; where the gateway has none, the message's own ``personData``
stands in (for an eCH-0223 input that is all there is). A normaliser may
state a fact outright (``nationality_before`` for a naturalisation, whose
message already says "Swiss").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from gateway.contracts import Normalised, RawInput
from gateway.person_state import SWITZERLAND, PersonState, permit_category

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
_P = f"{{{NS}}}"
#: The facts every message has, whatever is known of its person (``None`` when unknown).
NAMES = ("kind", "source", "event", "nationality", "country", "permit", "permit_category",
         "permit_valid_till", "municipality", "municipality_name", "canton", "marital_status",
         "sex", "age")


def rule_facts(n: Normalised, raw: RawInput, before: PersonState | None,
               today: date | None = None) -> dict[str, Any]:
    """The facts of message ``n`` from ``raw`` about a person whose state was ``before``."""
    on = today or date.today()
    person = before.facts(on) if before is not None else {}
    if before is None or before.nationality_data is None:
        person = {**person, **{k: v for k, v in _message_person(n.tree, on).items()
                               if person.get(k) is None}}
    facts: dict[str, Any] = dict.fromkeys(NAMES)
    facts.update(person)
    facts.update(kind=n.kind, source=raw.source, event=_event(n))
    facts.update(n.facts)
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
        return str(n.facts["person_event"])
    if n.tree is None:
        return None
    text = n.tree.getroot().findtext(f"{_P}content/{_P}personEvent")
    return text.strip() if text else None


def _message_person(tree: etree._ElementTree | None, on: date) -> dict[str, Any]:
    """The facts the message's own personData gives (cheap lookups, no full model)."""
    if tree is None:
        return {}
    data = tree.getroot().find(f"{_P}content/{_P}personData")
    if data is None:
        return {}
    out: dict[str, Any] = {}
    nationality = data.find(f"{_P}nationalityData")
    if nationality is not None:
        status = (nationality.findtext("{*}nationalityStatus") or "").strip()
        countries = [(c.findtext("{*}countryId") or "").strip()
                     for c in nationality.iterfind("{*}countryInfo/{*}country")]
        isos = [(c.findtext("{*}countryIdISO2") or "").strip()
                for c in nationality.iterfind("{*}countryInfo/{*}country")]
        if status == "2" and countries:
            swiss = str(SWITZERLAND) in countries or "CH" in isos
            out["nationality"] = "swiss" if swiss else "foreign"
            out["country"] = int(countries[0]) if countries[0].isdigit() else None
        elif status == "0":
            out["nationality"] = "stateless"
    permit = data.findtext(f"{_P}residencePermitData/{{*}}residencePermit")
    if permit:
        out["permit"] = permit.strip()
        out["permit_category"] = permit_category(permit.strip())
    municipality = data.find(f"{_P}municipality")
    if municipality is not None:
        bfs = (municipality.findtext("{*}municipalityId") or "").strip()
        out["municipality"] = int(bfs) if bfs.isdigit() else None
        out["municipality_name"] = municipality.findtext("{*}municipalityName")
        out["canton"] = municipality.findtext("{*}cantonAbbreviation")
    born = data.findtext(f"{_P}birthData/{{*}}dateOfBirth/{{*}}yearMonthDay")
    if born:
        try:
            b = date.fromisoformat(born.strip()[:10])
        except ValueError:
            b = None
        if b is not None:
            out["age"] = on.year - b.year - ((on.month, on.day) < (b.month, b.day))
    marital = data.findtext(f"{_P}maritalData/{{*}}maritalStatus")
    if marital:
        out["marital_status"] = marital.strip()
    sex = data.findtext(f"{_P}birthData/{{*}}sex")
    if sex:
        out["sex"] = sex.strip()
    return out
