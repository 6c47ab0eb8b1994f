"""The eCH-0020 v3 fixture corpus is valid, coherent and covers DOMAIN.md §5.

``tests/fixtures/ech0020/MANIFEST.toml`` is the expected-outcome oracle for
the eCH-0020 normaliser: per delivery the eCH-0223 ``personEvent`` it becomes,
the person it is about and the ``baseDelivery.xml`` person whose state it
relies on. These tests hold the corpus to the official eCH-0020 XSD and the
manifest to the files, so the normaliser is tested against something true.
"""

from __future__ import annotations

import functools
import re
import tomllib
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.errors import InputRejected
from gateway.xml.safe import parse_untrusted
from gateway.xml.validation import schema_dir
from tests.official import REPO, official_xsd, require_shared

CORPUS = REPO / "tests" / "fixtures" / "ech0020"
MANIFEST: dict[str, Any] = tomllib.loads((CORPUS / "MANIFEST.toml").read_text(encoding="utf-8"))
GOOD: list[dict[str, Any]] = MANIFEST["file"]
BAD: list[dict[str, Any]] = MANIFEST["bad"]
BASE_PERSONS: list[dict[str, Any]] = MANIFEST["base_person"]
DOMAIN_MD = REPO.parent / "shared" / "docs" / "DOMAIN.md"

E20 = "http://www.ech.ch/xmlns/eCH-0020/3"
E44 = "http://www.ech.ch/xmlns/eCH-0044/4"
E11 = "http://www.ech.ch/xmlns/eCH-0011/8"
E08 = "http://www.ech.ch/xmlns/eCH-0008/3"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SWITZERLAND = "8100"

_ONE_TO_ONE = (
    "moveIn", "moveOut", "move", "birth", "death", "marriage", "partnership", "separation", "divorce",
    "undoMarriage", "undoPartnership", "missing", "undoMissing", "maritalStatusPartner", "changeName",
    "changeNationality", "naturalizeForeigner", "undoSwiss", "changeResidenceType", "correctReporting",
    "correctName", "correctNationality", "correctOccupation", "correctMaritalInfo", "correctBirthInfo",
    "correctDeathData",
)  # fmt: skip
PERMIT_CASES = frozenset({"prolongationB", "prolongationC", "prolongationL", "conversionBtoC",
                          "duplicateOfPermit", "othercaseOfMigration"})  # fmt: skip
#: DOMAIN.md §5: each eCH-0020 event with a counterpart → the eCH-0223 personEvents it may become.
MAPPING: dict[str, frozenset[str]] = {
    **{event: frozenset({event}) for event in _ONE_TO_ONE},
    "undoSeparation": frozenset({"undoSeperation"}),
    "deletedInRegister": frozenset({"deletedinRegister"}),
    "correctParentalRelationship": frozenset({"correctParentalrelationship"}),
    "correctPersonAdditionalData": frozenset({"correctPersonAddionalData"}),
    "changeOccupation": frozenset({"changeOccupation"}),
    "changeResidencePermit": PERMIT_CASES,
    "correctResidencePermit": frozenset({"othercaseOfMigration"}),
    "adoption": frozenset({"correctParentalrelationship"}),
    "childRelationship": frozenset({"correctParentalrelationship"}),
}
#: Events that describe the person fully (DOMAIN.md §5.1); the others need the person's state.
FULL_PERSON_EVENTS = frozenset({"moveIn", "birth", "changeResidenceType"})
#: eCH-0006 permit categories of the permit cases: B, C, L.
PERMIT_CATEGORY = {"02": "B", "03": "C", "07": "L"}


def _parse(path: Path) -> etree._ElementTree:
    return parse_untrusted(path.read_bytes(), max_bytes=1 << 22)


def _event_element(tree: etree._ElementTree) -> etree._Element:
    """The one event element after the header of a ``delivery``."""
    header, event = tree.getroot()
    assert etree.QName(header).localname == "deliveryHeader"
    return event


def _vn_is_valid(vn: str) -> bool:
    """13 digits, starting 756, the last one the EAN-13 check digit of the first twelve."""
    if not re.fullmatch(r"756\d{10}", vn):
        return False
    total = sum(int(digit) * (3 if i % 2 else 1) for i, digit in enumerate(vn[:12]))
    return (-total) % 10 == int(vn[12])


def _subject(event: etree._Element) -> tuple[str, str]:
    """VN and ``category:id`` of the person an event is about (its first identification)."""
    vn = event.find(f".//{{{E44}}}vn")
    local = event.find(f".//{{{E44}}}localPersonId")
    assert vn is not None and local is not None
    category, person_id = (child.text for child in local)
    return str(vn.text), f"{category}:{person_id}"


@functools.cache
def _base_messages() -> dict[str, etree._Element]:
    """The ``messages`` of ``baseDelivery.xml`` by VN of their person."""
    event = _event_element(_parse(CORPUS / "baseDelivery.xml"))
    return {_subject(message)[0]: message for message in event}


def _is_swiss(holder: etree._Element) -> bool:
    """Whether the first ``nationalityData`` under ``holder`` lists Switzerland."""
    data = holder.find(f".//{{{E20}}}nationalityData")
    assert data is not None
    return SWITZERLAND in [el.text for el in data.iter(f"{{{E08}}}countryId")]


def _permit(holder: etree._Element) -> tuple[str, date]:
    """Permit code and valid-till date of the ``residencePermitData`` under ``holder``."""
    data = holder.find(f".//{{{E20}}}residencePermitData")
    assert data is not None
    code, till = data.find(f"{{{E11}}}residencePermit"), data.find(f"{{{E11}}}residencePermitValidTill")
    assert code is not None and till is not None
    return str(code.text), date.fromisoformat(str(till.text))


def _permit_case(before: tuple[str, date], after: tuple[str, date]) -> str:
    """The eCH-0223 event for a permit change (our reading of DOMAIN.md §5).

    Same permit and validity: a duplicate; B to C: a conversion; same category B, C or L with a
    later end of validity: a prolongation; anything else: another case.
    """
    old, new = PERMIT_CATEGORY.get(before[0][:2]), PERMIT_CATEGORY.get(after[0][:2])
    if before == after:
        return "duplicateOfPermit"
    if old == "B" and new == "C":
        return "conversionBtoC"
    if old is not None and old == new and after[1] > before[1]:
        return f"prolongation{old}"
    return "othercaseOfMigration"


def _ech0223_events() -> set[str]:
    """The ``personEvent`` values of eCH-0223 1.5, from the project's own XSD."""
    xsd = etree.parse(str(schema_dir() / "eCH-0223-1-5.xsd"))
    path = "//*[local-name()='simpleType'][@name='personEventType']//*[local-name()='enumeration']/@value"
    return {str(value) for value in xsd.xpath(path)}


def _by_name(entries: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(entry, id=entry["file"]) for entry in entries]


def test_manifest_lists_exactly_the_files() -> None:
    good = sorted(path.name for path in CORPUS.glob("*.xml"))
    bad = sorted(f"bad/{path.name}" for path in (CORPUS / "bad").glob("*.xml"))
    assert sorted(entry["file"] for entry in GOOD) == good
    assert sorted(entry["file"] for entry in BAD) == bad
    assert GOOD[0]["file"] == "baseDelivery.xml", "the base delivery comes first in processing order"


@pytest.mark.parametrize("entry", _by_name(GOOD))
def test_good_delivery_is_valid_against_official_xsd(entry: dict[str, Any]) -> None:
    tree = _parse(CORPUS / entry["file"])
    schema = official_xsd("eCH-0020-3-0.xsd")
    assert schema.validate(tree), [e.message for e in schema.error_log]
    root = tree.getroot()
    assert root.tag == f"{{{E20}}}delivery" and root.get("version") == "3.0"
    assert etree.QName(_event_element(tree)).localname == entry["event"]


@pytest.mark.parametrize("entry", _by_name(BAD))
def test_bad_input_fails_as_the_manifest_says(entry: dict[str, Any]) -> None:
    path = CORPUS / entry["file"]
    if not entry["well_formed"]:
        with pytest.raises(InputRejected, match="malformed XML"):
            _parse(path)
        return
    tree = _parse(path)
    schema = official_xsd("eCH-0020-3-0.xsd")
    assert schema.validate(tree) == entry["xsd_valid"]
    if not entry["xsd_valid"]:
        assert entry["field"] in str(schema.error_log.last_error.message)
        return
    event = _event_element(tree)
    if entry["field"] == "vn":
        assert _subject(event)[0] == entry["vn"] and not _vn_is_valid(entry["vn"])
    elif entry["field"] == "residencePermit":
        permit = event.find(f".//{{{E11}}}residencePermit")
        assert permit is not None and permit.get(XSI_NIL) == "true"
    else:
        assert entry["field"] == etree.QName(event[0]).localname
        known = set(_base_messages()) | {e["person_vn"] for e in GOOD if "person_vn" in e}
        assert _subject(event)[0] == entry["vn"]
        assert entry["vn"] not in known, "the person must be unknown to every good file"


def test_every_vn_in_the_good_corpus_has_a_valid_check_digit() -> None:
    vns = [str(el.text) for entry in GOOD for el in _parse(CORPUS / entry["file"]).iter(f"{{{E44}}}vn")]
    vns += [entry["person_vn"] for entry in GOOD if "person_vn" in entry]
    vns += [vn for entry in GOOD for vn in entry.get("related", [])]
    assert len(set(vns)) >= 50
    assert [vn for vn in vns if not _vn_is_valid(vn)] == []
    assert not _vn_is_valid("7561234567890") and _vn_is_valid("7561234567897")


def test_manifest_covers_every_mapped_event_with_its_spelling() -> None:
    covered: dict[str, set[str]] = {}
    for entry in GOOD:
        covered.setdefault(entry["event"], set()).add(entry["expect"])
    assert [event for event in MAPPING if event not in covered] == []
    for event, expected in covered.items():
        if event in MAPPING:
            assert expected <= MAPPING[event], event
        else:
            assert expected == {"none"}, event
    assert covered["changeResidencePermit"] == PERMIT_CASES
    in_15 = _ech0223_events()
    assert len(in_15) == 38
    assert {e for outputs in MAPPING.values() for e in outputs} - in_15 == {"changeOccupation"}
    occupation = next(entry for entry in GOOD if entry["event"] == "changeOccupation")
    assert occupation["only_versions"] == ["1.0", "1.3", "1.4"]
    assert {"changeReligion", "contact", "changeSex"} <= set(covered) - set(MAPPING)


def test_mapping_is_the_one_in_domain_md() -> None:
    """The oracle above is DOMAIN.md §5's table (read from ../shared when it is there)."""
    text = require_shared(DOMAIN_MD).read_text(encoding="utf-8")
    table = text[text.index("| eCH-0020 | eCH-0223 `personEvent`"):].split("\n\n")[0].splitlines()[2:]
    documented: dict[str, frozenset[str]] = {}
    for row in table:
        events, target = (cell.strip() for cell in row.strip("|").split("|")[:2])
        if events == "—" or "no counterpart" in target:
            continue
        for event in events.split(", "):
            documented[event] = frozenset(
                {event} if target == "same name" else re.findall(r"`(\w+)`", target))
    assert documented == MAPPING


@pytest.mark.parametrize("entry", _by_name([e for e in GOOD if "person_vn" in e]))
def test_event_names_its_person_and_the_base_holds_them(entry: dict[str, Any]) -> None:
    event = _event_element(_parse(CORPUS / entry["file"]))
    assert _subject(event) == (entry["person_vn"], entry["local_id"])
    base = _base_messages()
    for vn in [entry["base_person"], *entry.get("related", [])]:
        if vn:
            assert vn in base, f"{vn} is not in baseDelivery.xml"
    if entry["base_person"]:
        assert entry["base_person"] == entry["person_vn"]
        assert _subject(base[entry["base_person"]]) == _subject(event)
    else:
        assert entry["person_vn"] not in base, "a new person must not be in the base delivery"
        assert entry["event"] in FULL_PERSON_EVENTS


@pytest.mark.parametrize("entry", _by_name([e for e in GOOD if e["event"] == "changeResidencePermit"]))
def test_permit_case_follows_from_state_and_event(entry: dict[str, Any]) -> None:
    before = _permit(_base_messages()[entry["base_person"]])
    after = _permit(_event_element(_parse(CORPUS / entry["file"])))
    assert before == (entry["permit_before"], date.fromisoformat(entry["valid_till_before"]))
    assert after == (entry["permit_after"], date.fromisoformat(entry["valid_till_after"]))
    assert _permit_case(before, after) == entry["expect"]


@pytest.mark.parametrize("entry", _by_name(GOOD[1:]))
def test_default_rule_and_state_need_are_consistent(entry: dict[str, Any]) -> None:
    """Forward exactly the mapped events of persons foreign before the event (DOMAIN.md §5)."""
    event = _event_element(_parse(CORPUS / entry["file"]))
    holder = _base_messages()[entry["base_person"]] if entry["base_person"] else event
    forward = entry["expect"] != "none" and not _is_swiss(holder)
    assert entry["default_rule"] == ("forward" if forward else "not_relevant")
    assert forward or entry.get("reason"), "a not-relevant outcome needs its reason"
    needs_state = entry["expect"] != "none" and entry["event"] not in FULL_PERSON_EVENTS
    assert entry["needs_state"] == needs_state


def test_base_persons_are_documented_and_used() -> None:
    base = _base_messages()
    assert [person["vn"] for person in BASE_PERSONS] == list(base)
    for person in BASE_PERSONS:
        assert _subject(base[person["vn"]]) == (person["vn"], person["local_id"])
        assert person["used_by"], f"{person['name']} is used by no fixture"
    foreign = [person for person in BASE_PERSONS if not person["nationality"].startswith("CH")]
    assert {person["permit"][:2] for person in foreign} >= {"02", "03", "05", "07"}  # B, C, F, L
    assert any(ch in person["name"] for person in BASE_PERSONS for ch in "äöüÄÖÜ")


def test_deliveries_are_readable_utf8_with_realistic_headers() -> None:
    message_ids = []
    for entry in [*GOOD, *(e for e in BAD if e["well_formed"])]:
        data = (CORPUS / entry["file"]).read_bytes()
        assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<')
        assert b"\n\t<" in data and data.endswith(b">\n")
        data.decode("utf-8")
        header = _parse(CORPUS / entry["file"]).getroot()[0]
        fields = {etree.QName(child).localname: child.text for child in header}
        assert re.fullmatch(r"1-\d{1,4}-1", str(fields["senderId"]))
        assert (fields["messageType"], fields["action"], fields["testDeliveryFlag"]) == ("10", "1", "false")
        assert re.search(r"T\d\d:\d\d:\d\d[+-]\d\d:\d\d$", str(fields["messageDate"]))
        message_ids.append(str(uuid.UUID(str(fields["messageId"]))))
    assert len(set(message_ids)) == len(message_ids)
