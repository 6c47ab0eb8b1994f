"""eCH-0020 permit changes that arrive out of their order, and permits without end of validity.

A ``changeResidencePermit`` is a prolongation or conversion of the permit held
*before it* (DOMAIN.md §5, §5.1). Deliveries are built from the corpus as in
``test_ech0020_vendors`` (valid against the official eCH-0020 XSD), run through the
daemon with a real store, and what reaches the canton is checked against the
official eCH-0223 XSD.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from gateway.api import RawInput
from gateway.ech0223 import PersonIdentificationLight, ResidencePermitData
from gateway.permits import KEPT
from gateway.person_state import PersonState
from plugins.ech0020 import gateway_normalise
from tests.flow import StubTransport, drop, running, states, until
from tests.official import official_xsd
from tests.test_ech0020_flow import _config
from tests.test_ech0020_normaliser import CONTEXT, States
from tests.test_ech0020_vendors import CORPUS, NS, berisha, explain, permit_till, variant

PROLONGATION = "changeResidencePermit-prolongationB.xml"


def _sent_event(payload: bytes) -> tuple[str | None, str | None]:
    """personEvent and businessComment of a message sent, which the official XSD must take."""
    doc = etree.fromstring(payload)
    xsd = official_xsd("eCH-0223-1-5.xsd")
    assert xsd.validate(etree.ElementTree(doc)), xsd.error_log.last_error
    return (doc.findtext("{*}content/{*}personEvent"),
            doc.findtext("{*}content/{*}businessInformation/{*}businessComment"))


async def test_a_permit_change_arriving_late_is_compared_with_the_permit_before_its_date(
        tmp_path: Path) -> None:
    """The prolongation to 2029 of 20 November is sent; the prolongation to 2028 of 10 November
    arrives after it. At its own date it prolonged the permit valid till 2027: it went to the
    canton as othercaseOfMigration "from ... till 2029 to ... till 2028". One dated before
    any permit the gateway knows of cannot be told, and says so."""
    files = [
        CORPUS / "baseDelivery.xml",  # 1 October: B valid till 2027-05-31
        variant(tmp_path, PROLONGATION, "later.xml", permit_till("2029-05-31"), "2026-11-20"),
        variant(tmp_path, PROLONGATION, "earlier.xml", permit_till("2028-05-31"), "2026-11-10"),
        variant(tmp_path, PROLONGATION, "between.xml", permit_till("2028-11-30"), "2026-11-15"),
        variant(tmp_path, PROLONGATION, "before-all.xml", permit_till("2027-11-30"), "2026-09-01"),
    ]
    config, db = _config(tmp_path), tmp_path / "gateway.db"
    StubTransport.sent.clear()
    async with running(config):
        for count, path in enumerate(files, 1):
            drop(tmp_path / "in", path.name, path.read_bytes())
            await until(lambda n=count: states(db, "SELECT count(*) FROM messages WHERE state IN"
                                               " ('routed', 'not_relevant')") == [(n,)])
        await until(lambda: len(StubTransport.sent.get("canton", [])) == len(files) - 1)
    refs = dict(states(db, "SELECT message_id, ref FROM messages"))
    sent = {refs[item.message_id]: _sent_event(item.payload) for item in StubTransport.sent["canton"]}
    assert sent["later.xml"] == ("prolongationB", None)
    assert sent["earlier.xml"] == ("prolongationB", None)
    assert sent["between.xml"] == ("prolongationB", None)  # of the late one of 10 November
    event, comment = sent["before-all.xml"]
    assert event == "othercaseOfMigration"
    assert comment is not None and "knows no permit of this person before 2026-09-01" in comment
    warned = {ref: json.loads(detail).get("warnings", []) for ref, detail in states(
        db, "SELECT m.ref, j.detail FROM journal j JOIN messages m ON m.id = j.message"
            " WHERE j.event = 'message.normalised'")}
    assert warned["later.xml"] == []
    assert warned["earlier.xml"] == [
        "changeResidencePermit of 2026-11-10 arrived after a newer permit (permit B (0202) valid till"
        " 2029-05-31 as of 2026-11-20): compared with the permit held before it (permit B (0202)"
        " valid till 2027-05-31, known on 2026-10-01)"]
    assert "known on 2026-11-10" in warned["between.xml"][0]
    assert "knows no permit before it" in warned["before-all.xml"][0]
    [(text,)] = states(db, "SELECT state FROM persons WHERE state LIKE '%Berisha%'")
    state = PersonState.model_validate_json(text)
    assert state.as_of == date(2026, 11, 20)  # the late ones only filled in
    assert state.residence_permit_data is not None
    assert state.residence_permit_data.residence_permit_valid_till == date(2029, 5, 31)


def test_a_late_permit_change_after_no_newer_permit_is_compared_as_always(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The state is newer than the permit change only by a move: the permit before the change
    is the state's own, and nothing arrived after a newer permit (no warning)."""
    files = [CORPUS / "baseDelivery.xml",
             variant(tmp_path, "move.xml", "move.xml", berisha, "2026-11-20"),
             variant(tmp_path, PROLONGATION, "late.xml", permit_till("2028-05-31"), "2026-11-10")]
    lines = explain(capsys, tmp_path, *files)["late.xml"]
    assert any(line.startswith("  facts: ") and " event=prolongationB," in line for line in lines)
    assert not [line for line in lines if line.startswith("  warning: ")]


def test_an_end_of_validity_set_on_a_c_permit_without_one_is_no_prolongation(tmp_path: Path) -> None:
    """A C permit (settlement) may have no end of validity: it is valid for good. An end date
    set on it is not "valid longer" (DOMAIN.md §5: old and new validity compared): it goes
    as othercaseOfMigration, and its comment said "no eCH-0223 event for this change"."""
    def open_ended(root: etree._Element) -> None:
        for person in root.find("e20:baseDelivery", NS).findall("e20:messages", NS):
            if person.findtext(".//e44:vn", namespaces=NS) == "7566202763493":
                data = person.find(".//e20:residencePermitData", NS)
                data.remove(data.find("e11:residencePermitValidTill", NS))
    states = States()
    for path in (variant(tmp_path, "baseDelivery.xml", "base.xml", open_ended),
                 CORPUS / "changeResidencePermit-prolongationC.xml"):
        result = gateway_normalise(RawInput("registry", path.name, path.read_bytes()), CONTEXT)
        assert result is not None
        if result.draft is not None:
            result = result.draft.complete(states.get(result.subject))
        states.record(result)
    assert result.tree is not None
    official_xsd("eCH-0223-1-5.xsd").assertValid(result.tree)
    assert _sent_event(etree.tostring(result.tree)) == (
        "othercaseOfMigration", "eCH-0020 changeResidencePermit from permit C (0302) to permit C (0302)"
        " valid till 2031-11-30: no prolongation that can be told: the earlier permit had no end of"
        " validity")


def _permit(till: date) -> ResidencePermitData:
    return ResidencePermitData(residence_permit="0202", residence_permit_valid_till=till)


def test_a_state_keeps_its_last_permits_in_date_order() -> None:
    """Each merge keeps the permits of both states, by date, the last few of them."""
    ident = PersonIdentificationLight(vn=7561234567897, official_name="Muster", first_name="Anna")
    state = PersonState(identification=ident, as_of=date(2020, 1, 1),
                        residence_permit_data=_permit(date(2021, 1, 1)))
    for year in range(2021, 2021 + KEPT + 2):
        state = state.merged(PersonState(identification=ident, as_of=date(year, 1, 1),
                                         residence_permit_data=_permit(date(year + 1, 1, 1))))
    late = PersonState(identification=ident, as_of=date(2025, 6, 1),
                       residence_permit_data=_permit(date(2030, 1, 1)))
    state = PersonState.model_validate_json(state.merged(late).model_dump_json())
    days = [entry.known_on for entry in state.permits()]
    assert days == sorted(days) and len(days) == KEPT and date(2025, 6, 1) in days
    assert state.residence_permit_data == _permit(date(2028, 1, 1))
    before = state.permit_before(date(2025, 7, 1))
    assert before is not None and before.permit == _permit(date(2030, 1, 1))
    assert state.permit_before(date(2020, 1, 1)) is None
