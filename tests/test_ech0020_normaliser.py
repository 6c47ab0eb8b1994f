"""The eCH-0020 normaliser turns the fixture corpus into what MANIFEST.toml expects.

The corpus is processed as the core does it: ``gateway_normalise``, then the
person's last state looked up by ``subject``, then ``draft.complete(state)``,
then every state in ``persons`` merged into the states (seeded by the base
delivery). Every message is checked against the official eCH-0223 1.5 XSD.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import tomllib
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from lxml import etree

from gateway.api import InputRejected, NormaliseContext, Normalised, PersonState, RawInput
from gateway.ech0223 import sample_person_event, write_message
from gateway.facts import VALUES as CORE_VALUES
from plugins.ech0020 import gateway_fact_values, gateway_normalise
from plugins.ech0020._header import ID_NAMESPACE, derived_id
from plugins.ech0020._xml import all_named, children, named
from tests.flow import plugin_manager
from tests.official import REPO, official_xsd

CORPUS = REPO / "tests" / "fixtures" / "ech0020"
MANIFEST: dict[str, Any] = tomllib.loads((CORPUS / "MANIFEST.toml").read_text(encoding="utf-8"))
GOOD: list[dict[str, Any]] = MANIFEST["file"]
EVENTS = [entry for entry in GOOD if entry["event"] != "baseDelivery"]
BAD: list[dict[str, Any]] = MANIFEST["bad"]
BASE_PERSONS: list[dict[str, Any]] = MANIFEST["base_person"]
CONTEXT = NormaliseContext(max_bytes=1 << 24, max_zip_entries=100, max_zip_bytes=1 << 24, max_zip_ratio=100)
E223 = "{http://www.ech.ch/xmlns/eCH-0223/1}"
E44 = "{http://www.ech.ch/xmlns/eCH-0044/4}"
E08 = "{http://www.ech.ch/xmlns/eCH-0008/3}"


class States:
    """The gateway's person states as the core keeps them: one state, found by each of its keys."""

    def __init__(self) -> None:
        self.by_key: dict[str, PersonState] = {}

    def get(self, keys: tuple[str, ...] | list[str]) -> PersonState | None:
        return next((self.by_key[key] for key in keys if key in self.by_key), None)

    def record(self, normalised: Normalised) -> None:
        for state in normalised.persons:
            known = self.get(state.keys())
            merged = known.merged(state) if known is not None else state
            self.by_key.update(dict.fromkeys(merged.keys(), merged))


def normalise(name: str) -> Normalised:
    """The plugin's answer for a corpus file (it must not decline it)."""
    result = gateway_normalise(RawInput("registry", name, (CORPUS / name).read_bytes()), CONTEXT)
    assert result is not None, f"{name} was declined"
    return result


def process(name: str, states: States) -> Normalised:
    """One file through normalise, enrich, complete and record, as the core does it."""
    normalised = normalise(name)
    if normalised.draft is not None:
        normalised = normalised.draft.complete(states.get(normalised.subject))
    states.record(normalised)
    return normalised


def seeded() -> States:
    states = States()
    process("baseDelivery.xml", states)
    return states


@pytest.fixture(scope="module")
def in_order() -> dict[str, Normalised]:
    """Every good file processed in manifest order."""
    states = States()
    return {entry["file"]: process(entry["file"], states) for entry in GOOD}


def _root(result: Normalised) -> etree._Element:
    assert result.tree is not None
    return result.tree.getroot()


def _person_event(result: Normalised) -> str | None:
    found = _root(result).find(f"{E223}content/{E223}personEvent")
    return found.text if found is not None else None


def _has_person_data(result: Normalised) -> bool:
    return _root(result).find(f"{E223}content/{E223}personData") is not None


def _check_expected(entry: dict[str, Any], result: Normalised) -> None:
    assert result.facts["source_event"] == entry["event"]
    if entry["expect"] == "none":
        assert result.not_relevant and "no eCH-0223 counterpart" in result.not_relevant
        assert result.draft is None and result.xml == b""
        return
    assert result.not_relevant is None and result.draft is None
    expected = None if "1.5" not in entry.get("only_versions", ["1.5"]) else entry["expect"]
    assert result.facts["person_event"] == expected
    assert _person_event(result) == expected
    assert f"vn:{entry['person_vn']}" in result.subject
    assert f"local:{entry['local_id']}" in result.subject


@pytest.mark.parametrize("entry", EVENTS, ids=[e["file"] for e in EVENTS])
def test_in_manifest_order_each_file_becomes_what_the_manifest_says(
        entry: dict[str, Any], in_order: dict[str, Normalised]) -> None:
    _check_expected(entry, in_order[entry["file"]])


@pytest.mark.parametrize("entry", EVENTS, ids=[e["file"] for e in EVENTS])
def test_alone_after_the_base_delivery_each_file_becomes_the_same(entry: dict[str, Any]) -> None:
    _check_expected(entry, process(entry["file"], seeded()))


def test_every_message_is_valid_official_ech0223_1_5(in_order: dict[str, Normalised]) -> None:
    schema = official_xsd("eCH-0223-1-5.xsd")
    sent = {name: result for name, result in in_order.items() if result.xml}
    assert len(sent) == sum(1 for entry in EVENTS if entry["expect"] != "none")
    for name, result in sent.items():
        assert result.tree is not None and etree.tostring(result.tree) == etree.tostring(
            etree.fromstring(result.xml).getroottree())
        assert schema.validate(result.tree), f"{name}: {schema.error_log.last_error}"
        assert _root(result).get("version") == "1.5"


def test_the_facts_rules_see_have_declared_values_and_no_other_event_is_declared(
        in_order: dict[str, Normalised]) -> None:
    """``fields = { source_event = ... }`` is refused by check-config exactly when it cannot match."""
    declared = {**CORE_VALUES, **gateway_fact_values()}
    for name, result in in_order.items():
        if result.not_relevant is None:  # rules decide it
            for fact in ("format", "source_event", "person_event", "nationality_before"):
                value = result.facts[fact]
                assert value is None or value in declared[fact], f"{name}: {fact} {value!r}"
            assert result.kind in declared["kind"], name
        else:
            assert result.facts["source_event"] not in declared["source_event"], name


def test_the_base_delivery_seeds_every_person_and_sends_nothing() -> None:
    result = normalise("baseDelivery.xml")
    assert result.kind == "baseDelivery" and result.message_id is None and result.draft is None
    assert result.not_relevant == "baseDelivery seeds the person state and sends nothing"
    assert len(result.persons) == len(BASE_PERSONS) == 46
    states = seeded()
    for person in BASE_PERSONS:
        state = states.get([f"vn:{person['vn']}", f"local:{person['local_id']}"])
        assert state is not None and state.keys() == [f"vn:{person['vn']}", f"local:{person['local_id']}"]
        assert state.permit() == person.get("permit")
        expected = "swiss" if person["nationality"].startswith("CH") else "foreign"
        assert state.nationality() == expected
        # Swiss persons have no permit, which eCH-0223 personData requires.
        assert (state.person_data() is not None) == (expected == "foreign")


NEEDS_STATE = [e for e in EVENTS if e["needs_state"] and e["expect"] != "none"]


@pytest.mark.parametrize("entry", NEEDS_STATE, ids=[e["file"] for e in NEEDS_STATE])
def test_identification_only_events_have_personData_only_with_the_state(entry: dict[str, Any]) -> None:
    with_state = process(entry["file"], seeded())
    if entry["default_rule"] == "forward":
        assert _has_person_data(with_state), with_state.warnings
    normalised = normalise(entry["file"])
    assert normalised.draft is not None
    try:
        alone = normalised.draft.complete(None)
    except InputRejected as exc:
        assert exc.where == f"/delivery/{entry['event']}/{_person_element(entry['file'])}"
        assert "no state" in exc.reason
        return
    assert not _has_person_data(alone)
    assert any(w.startswith("sent without personData") for w in alone.warnings)
    official_xsd("eCH-0223-1-5.xsd").assertValid(alone.tree)


def _person_element(name: str) -> str:
    root = etree.parse(str(CORPUS / name)).getroot()
    return etree.QName(root[1][0]).localname


@pytest.mark.parametrize("entry", [e for e in EVENTS if not e["needs_state"] and e["expect"] != "none"],
                         ids=lambda e: e["file"])
def test_events_that_describe_the_person_need_no_state(entry: dict[str, Any]) -> None:
    normalised = normalise(entry["file"])
    assert normalised.draft is not None
    result = normalised.draft.complete(None)
    assert _has_person_data(result) and result.warnings == tuple(
        w for w in result.warnings if not w.startswith("sent without"))
    official_xsd("eCH-0223-1-5.xsd").assertValid(result.tree)


PERMITS = [e for e in EVENTS if e["event"] == "changeResidencePermit"]


def test_the_corpus_has_every_permit_case() -> None:
    assert {e["expect"] for e in PERMITS} == {"prolongationB", "prolongationC", "prolongationL",
                                              "conversionBtoC", "duplicateOfPermit", "othercaseOfMigration"}


@pytest.mark.parametrize("entry", PERMITS, ids=[e["file"] for e in PERMITS])
def test_permit_cases_compare_the_state_with_the_event(entry: dict[str, Any]) -> None:
    states = seeded()
    key = [f"vn:{entry['person_vn']}"]
    before = states.get(key)
    assert before is not None and before.residence_permit_data is not None
    assert before.permit() == entry["permit_before"]
    assert str(before.residence_permit_data.residence_permit_valid_till) == entry["valid_till_before"]
    result = process(entry["file"], states)
    assert result.facts["person_event"] == entry["expect"]
    after = states.get(key)
    assert after is not None and after.residence_permit_data is not None
    assert after.permit() == entry["permit_after"]
    assert str(after.residence_permit_data.residence_permit_valid_till) == entry["valid_till_after"]
    comment = _root(result).find(f"{E223}content/{E223}businessInformation/{E223}businessComment")
    assert (comment is not None) == (entry["expect"] == "othercaseOfMigration")
    if comment is not None:
        assert "permit F (0503)" in comment.text and "permit B (0202)" in comment.text


def test_a_permit_change_without_earlier_permit_is_othercase_with_the_reason() -> None:
    normalised = normalise("changeResidencePermit-prolongationB.xml")
    assert normalised.draft is not None
    result = normalised.draft.complete(None)
    assert _person_event(result) == "othercaseOfMigration"
    comment = _root(result).find(f"{E223}content/{E223}businessInformation/{E223}businessComment")
    assert comment is not None and "knows no earlier permit" in comment.text
    official_xsd("eCH-0223-1-5.xsd").assertValid(result.tree)


def test_a_corrected_permit_is_othercase_with_a_business_comment(in_order: dict[str, Normalised]) -> None:
    result = in_order["correctResidencePermit.xml"]
    comment = _root(result).find(f"{E223}content/{E223}businessInformation/{E223}businessComment")
    assert comment is not None and "correctResidencePermit" in comment.text and "0503" in comment.text


def test_naturalisation_completes_the_swiss_nationality_and_counts_as_foreign_before() -> None:
    normalised = normalise("naturalizeForeigner.xml")
    assert normalised.draft is not None
    for person in (None, seeded().get(normalised.subject)):
        result = normalised.draft.complete(person)
        assert result.facts["nationality_before"] == "foreign"
    countries = _root(result).findall(f".//{E223}nationalityData/*/{{http://www.ech.ch/xmlns/eCH-0011/8}}country")
    swiss = [c for c in countries if c.findtext(f"{E08}countryId") == "8100"]
    assert len(swiss) == 1
    assert swiss[0].findtext(f"{E08}countryIdISO2") == "CH"
    assert swiss[0].findtext(f"{E08}countryNameShort") == "Schweiz"


def test_the_nationality_before_the_event_follows_the_default_rule(in_order: dict[str, Normalised]) -> None:
    for entry in EVENTS:
        if entry["expect"] == "none":
            continue
        before = in_order[entry["file"]].facts["nationality_before"]
        assert (before == "foreign") == (entry["default_rule"] == "forward"), entry["file"]


def test_parents_reach_parentalRelation(in_order: dict[str, Normalised]) -> None:
    for name in ("birth.xml", "adoption.xml", "childRelationship.xml", "correctParentalRelationship.xml"):
        entry = next(e for e in EVENTS if e["file"] == name)
        relation = _root(in_order[name]).find(f"{E223}content/{E223}personData/{E223}parentalRelation")
        assert relation is not None, name
        vns = {el.text for el in relation.iter(f"{E44}vn")}
        assert set(entry["related"]) <= vns, name


def test_what_eCH0223_cannot_carry_is_warned(in_order: dict[str, Normalised]) -> None:
    assert any("has no changeOccupation" in w for w in in_order["changeOccupation.xml"].warnings)
    additional = in_order["correctPersonAdditionalData.xml"]
    assert any("correctPersonAdditionalData" in w for w in additional.warnings)
    assert any("main or a secondary" in w for w in in_order["changeResidenceType.xml"].warnings)
    assert _person_event(in_order["changeOccupation.xml"]) is None
    jobs = _root(in_order["changeOccupation.xml"]).findtext(f".//{E223}jobData/{{http://www.ech.ch/xmlns/eCH-0021/7}}jobTitle")
    assert jobs == "Lagerist"


def test_events_without_counterpart_update_the_state_they_carry() -> None:
    states = seeded()
    result = process("changeReligion.xml", states)
    assert result.kind == "personEventMessage" and result.draft is None
    assert result.subject == ("vn:7565573787947", "local:MU.230:100145")
    state = states.get(result.subject)
    assert state is not None and state.religion_data is not None
    assert state.religion_data.religion_valid_from is not None
    changed = process("changeSex.xml", states)
    after = states.get(changed.subject)
    assert after is not None and after.identification.sex == "2"
    assert process("contact.xml", states).persons == ()


def test_ids_are_new_unique_and_the_same_for_a_resent_delivery(in_order: dict[str, Normalised]) -> None:
    ids = [result.message_id for result in in_order.values() if result.xml]
    assert len(set(ids)) == len(ids)
    for name in ("moveIn-abroad.xml", "move.xml"):
        source = etree.parse(str(CORPUS / name))
        source_id = source.findtext(".//{http://www.ech.ch/xmlns/eCH-0058/5}messageId")
        sender = source.findtext(".//{http://www.ech.ch/xmlns/eCH-0058/5}senderId")
        assert in_order[name].message_id == str(uuid.uuid5(ID_NAMESPACE, f"{sender} {source_id}"))
        assert in_order[name].message_id != source_id
        assert in_order[name].sender_id == sender  # the messageId is unique with it
        first, second = process(name, seeded()), process(name, seeded())
        assert first.message_id == second.message_id and first.xml == second.xml
        header = _root(first).find(f"{E223}header")
        assert header is not None
        assert header.findtext("{http://www.ech.ch/xmlns/eCH-0039/3}ourBusinessReferenceId") == source_id


@pytest.mark.parametrize(("sender", "message"),
                         [("1-2511-1", "m-1"), ("T-ZH-9", "Nachricht Müller ✓"), ("", "")])
def test_the_derived_id_is_the_uuid5_of_sender_and_message_id(sender: str, message: str) -> None:
    assert derived_id(sender, message) == str(uuid.uuid5(ID_NAMESPACE, f"{sender} {message}"))


@pytest.mark.parametrize("entry", BAD, ids=[e["file"] for e in BAD])
def test_bad_inputs_are_rejected_naming_the_field(entry: dict[str, Any]) -> None:
    states = seeded()
    with pytest.raises(InputRejected) as caught:
        process(entry["file"], states)
    exc = caught.value
    named = f"{exc.reason} {exc.where or ''}"
    assert entry["field"] in named
    if entry["field"] and exc.where is not None:
        assert exc.where.startswith("/delivery/") and entry["field"] in exc.where
    if "vn" in entry:
        assert entry["vn"] not in named and entry["vn"][3:] not in named
    root = etree.parse(str(CORPUS / entry["file"])).getroot() if entry["well_formed"] else None
    names = [el.text for el in root.iter(f"{E44}officialName", f"{E44}firstName")] if root is not None else []
    assert not any(name and name in named for name in names)


def test_the_wrong_check_digit_is_reported_with_a_masked_vn() -> None:
    with pytest.raises(InputRejected) as caught:
        normalise("bad/vn-check-digit.xml")
    assert caught.value.reason == "VN 756.****.****.93 has a wrong check digit (EAN-13)"
    assert caught.value.where == "/delivery/moveIn/moveInPerson/personIdentification/vn"


def test_other_input_is_declined_and_reaches_the_ech0223_normaliser() -> None:
    import random

    ech0223 = write_message(sample_person_event(random.Random(3)))
    assert gateway_normalise(RawInput("s", "m.xml", ech0223), CONTEXT) is None
    assert gateway_normalise(RawInput("s", "m.zip", b"PK\x03\x04" + b"\0" * 64), CONTEXT) is None
    pm = plugin_manager()
    taken = pm.hook.gateway_normalise(raw=RawInput("s", "m.xml", ech0223), context=CONTEXT)
    assert taken is not None and taken.xml == ech0223 and taken.draft is None
    corpus = pm.hook.gateway_normalise(raw=RawInput("s", "m.xml", (CORPUS / "move.xml").read_bytes()),
                                       context=CONTEXT)
    assert corpus is not None and corpus.draft is not None


def _complete_elsewhere(draft: bytes, person: PersonState | None) -> Normalised:
    completed = pickle.loads(draft).complete(person)
    return dataclasses.replace(completed, tree=None)


def test_a_draft_pickles_and_completes_in_another_process_the_same_way() -> None:
    states = seeded()
    names = [e["file"] for e in EVENTS if e["expect"] != "none"][:12]
    drafts = [normalise(name) for name in names]
    with ProcessPoolExecutor(max_workers=1) as pool:
        remote = list(pool.map(_complete_elsewhere, [pickle.dumps(n.draft) for n in drafts],
                               [states.get(n.subject) for n in drafts]))
    for name, normalised, there in zip(names, drafts, remote, strict=True):
        assert normalised.draft is not None
        # It travels as the delivery's bytes, not as the models read from them.
        assert len(pickle.dumps(normalised.draft)) < (CORPUS / name).stat().st_size + 1024
        here = normalised.draft.complete(states.get(normalised.subject))
        assert there.xml == here.xml, name
        assert there.persons == here.persons and there.facts == here.facts and there.warnings == here.warnings


E11 = "{http://www.ech.ch/xmlns/eCH-0011/8}"
E10 = "{http://www.ech.ch/xmlns/eCH-0010/5}"
E07 = "{http://www.ech.ch/xmlns/eCH-0007/5}"


def _data(result: Normalised, path: str) -> str | None:
    return _root(result).findtext(f"{E223}content/{E223}personData/{path}")


def test_personData_is_the_state_merged_with_what_the_event_says(in_order: dict[str, Normalised]) -> None:
    moved = in_order["move.xml"]
    assert _data(moved, f"{E223}residenceAddress/{E10}street") == "Bachtelstrasse"
    gone = in_order["moveOut.xml"]
    assert _data(gone, f"{E223}goesTo/{E223}municipalityName") == "Zürich"
    assert _data(gone, f"{E223}goesTo/{E223}departureDate") == "2026-10-31"
    came = in_order["moveIn-abroad.xml"]
    assert _data(came, f"{E223}comesFrom/{E223}countryNameShort") == "Türkei"
    assert _data(came, f"{E223}comesFrom/{E223}arrivalDate") == "2026-10-28"
    assert _data(in_order["moveIn-from-zurich.xml"], f"{E223}comesFrom/{E223}cantonAbbreviation") == "ZH"
    assert _data(in_order["marriage.xml"], f"{E223}maritalData/{E11}maritalStatus") == "2"
    assert _data(in_order["divorce.xml"], f"{E223}maritalData/{E11}maritalStatus") == "4"
    nationality = f"{E223}nationalityData/{E11}countryInfo/{E11}country/{E08}countryId"
    assert _data(in_order["changeNationality.xml"], nationality) == "8250"
    renamed = in_order["changeName.xml"]
    new_name = "Y\u0131ld\u0131r\u0131m"  # with the Turkish dotless i
    assert _data(renamed, f"{E223}nameData/{E11}officialName") == new_name
    assert _root(renamed).findtext(f"{E223}content/{E223}personIdentification/{E44}officialName") == new_name
    assert _data(renamed, f"{E223}municipality/{E07}municipalityName") == "Winterthur"


def test_separation_dates_amend_the_marital_data_of_the_state(in_order: dict[str, Normalised]) -> None:
    separation = f"{E223}maritalData/{E11}separationData/{E11}"
    separated, reunited = in_order["separation.xml"], in_order["undoSeparation.xml"]
    assert _data(separated, f"{separation}separation") == "1"
    assert _data(separated, f"{separation}separationValidFrom") == "2026-10-01"
    assert _data(reunited, f"{separation}separationValidFrom") == "2026-10-01"
    assert _data(reunited, f"{separation}separationValidTill") == "2026-11-20"
    assert _data(reunited, f"{E223}maritalData/{E11}maritalStatus") == _data(
        separated, f"{E223}maritalData/{E11}maritalStatus")


def test_the_ech0223_header_comes_from_the_delivery_header(in_order: dict[str, Normalised]) -> None:
    e39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
    header = _root(in_order["moveIn-geneve.xml"]).find(f"{E223}header")
    assert header is not None
    source = etree.parse(str(CORPUS / "moveIn-geneve.xml")).getroot()[0]
    e58 = "{http://www.ech.ch/xmlns/eCH-0058/5}"
    for name in ("senderId", "messageDate", "eventDate", "action", "testDeliveryFlag"):
        assert header.findtext(e39 + name) == source.findtext(e58 + name), name
    app = header.find(f"{e39}sendingApplication")
    assert app is not None and app.findtext("{http://www.ech.ch/xmlns/eCH-0058/4}product") == source.findtext(
        f"{e58}sendingApplication/{e58}product")
    assert header.find(f"{e39}recipientId") is None


def _renamed(name: str, old: str, new: str) -> bytes:
    return (CORPUS / name).read_bytes().replace(f"eCH-0020:{old}".encode(), f"eCH-0020:{new}".encode())


def test_other_events_without_counterpart_keep_what_a_state_keeps() -> None:
    # correctReligion has the shape of changeReligion (person, religionData).
    data = _renamed("changeReligion.xml", "changeReligion", "correctReligion")
    result = gateway_normalise(RawInput("registry", "r.xml", data), CONTEXT)
    assert result is not None and result.draft is None
    assert result.not_relevant == "eCH-0020 event correctReligion has no eCH-0223 counterpart"
    [state] = result.persons
    assert state.religion_data is not None and state.keys() == ["vn:7565573787947", "local:MU.230:100145"]


@pytest.mark.parametrize(("data", "reason"), [
    (_renamed("move.xml", "delivery", "deliveryX"), "eCH-0020 root element deliveryX is not delivery"),
    ((CORPUS / "move.xml").read_bytes().replace(b'version="3.0"', b'version="2.0"'),
     "unsupported eCH-0020 version"),
    ((CORPUS / "move.xml").read_bytes().replace(b"<eCH-0058:senderId>1-230-1</eCH-0058:senderId>", b""),
     "missing required element senderId"),
    (_renamed("move.xml", "moveReportingMunicipality", "somethingElse"),
     "missing required element moveReportingMunicipality"),
])
def test_deliveries_of_the_wrong_shape_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        gateway_normalise(RawInput("registry", "m.xml", data), CONTEXT)
    assert reason in caught.value.reason


def test_a_vn_in_other_digits_is_rejected_naming_the_field() -> None:
    source = (CORPUS / "move.xml").read_bytes()
    vn = re.search(rb"<eCH-0044:vn>(\d+)</eCH-0044:vn>", source)
    assert vn is not None
    arabic = vn[1].decode().translate(str.maketrans("0123", "٠١٢٣")).encode()
    for digits in (vn[1][:-1] + "²".encode(), arabic):
        with pytest.raises(InputRejected) as caught:
            gateway_normalise(RawInput("registry", "m.xml", source.replace(vn[1], digits)), CONTEXT)
        assert caught.value.reason == "VN is not 13 digits starting with 756"
        assert caught.value.where is not None and caught.value.where.endswith("/vn")


def test_a_delivery_with_a_second_event_is_rejected_naming_it() -> None:
    root = etree.fromstring((CORPUS / "move.xml").read_bytes())
    root.append(copy.deepcopy(root[1]))
    data = etree.tostring(root)
    with pytest.raises(InputRejected) as caught:
        gateway_normalise(RawInput("registry", "m.xml", data), CONTEXT)
    assert caught.value.reason == "a delivery holds one event; move follows move"
    assert caught.value.where == "/delivery/move"


def test_input_without_the_ech0020_namespace_is_declined_unparsed() -> None:
    assert gateway_normalise(RawInput("s", "a.txt", b"not xml at all <"), CONTEXT) is None
    assert gateway_normalise(RawInput("s", "a.xml", b"<other xmlns='urn:x'/>"), CONTEXT) is None
    foreign_root = b"<x:other xmlns:x='urn:x' xmlns:e='http://www.ech.ch/xmlns/eCH-0020/3'/>"
    assert gateway_normalise(RawInput("s", "b.xml", foreign_root), CONTEXT) is None


def test_children_are_found_by_local_name_in_any_namespace_without_comments() -> None:
    el = etree.fromstring(b'<a xmlns:x="urn:x" xmlns:y="urn:y"><!-- c --><x:b>1</x:b><?pi?>'
                          b'<y:b>2</y:b><c/></a>')
    assert [(name, child.text) for name, child in named(el)] == [("b", "1"), ("b", "2"), ("c", None)]
    assert {name: child.text for name, child in children(el).items()} == {"b": "1", "c": None}
    assert [child.text for child in all_named(el, "b")] == ["1", "2"]
