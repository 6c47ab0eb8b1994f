"""Merging person states in a batch: a state that already holds its base is not merged again."""

from __future__ import annotations

import pickle
from datetime import date
from typing import Any

from gateway.ech0223 import MaritalData, NamedPersonId, PersonIdentificationLight
from gateway.person_state import PersonState, StoredPerson
from gateway.processor import remember
from gateway.vn import vn_check_digit_ok

VN = "vn:7561234567897"


def person(local: NamedPersonId | None = None, **parts: Any) -> PersonState:
    return PersonState(identification=PersonIdentificationLight(
        vn=7561234567897, local_person_id=local, official_name="Muster", first_name="Anna"),
        **parts)


def test_a_state_made_from_the_stored_one_is_stored_as_it_is() -> None:
    """An eCH-0020 draft's state is the state before merged with the event's: recording
    it merges nothing more, and its JSON is the update's."""
    stored = StoredPerson(1, person(NamedPersonId(person_id_category="MU.1", person_id="7"),
                                    as_of=date(2020, 1, 1),
                                    marital_data=MaritalData(marital_status="1")).model_dump_json())
    update = stored.state.merged(person(marital_data=MaritalData(marital_status="2")))
    assert stored.state.kept_by(update)
    states = {VN: stored, "local:MU.1:7": stored}
    change = remember(states, update)
    assert change.merged == change.update == stored.state.merged(update).model_dump_json()
    assert change.base == stored.text and change.added == () and change.birth is None
    assert states[VN].state is update and states["local:MU.1:7"] is states[VN]


def test_what_the_update_lacks_is_taken_from_the_stored_state() -> None:
    base = person(NamedPersonId(person_id_category="MU.1", person_id="7"),
                  as_of=date(2020, 1, 1), marital_data=MaritalData(marital_status="1"))
    for update in (person(marital_data=MaritalData(marital_status="2"), as_of=date(2021, 1, 1)),
                   person(as_of=date(2021, 1, 1), marital_data=base.marital_data),
                   person(base.identification.local_person_id, marital_data=base.marital_data)):
        assert not base.kept_by(update)
        change = remember({VN: StoredPerson(1, base.model_dump_json())}, update)
        assert change.merged == base.merged(update).model_dump_json() != change.update


def test_a_change_crosses_processes_whole() -> None:
    stored = StoredPerson(1, person(as_of=date(2020, 1, 1)).model_dump_json())
    change = remember({VN: stored}, person(marital_data=MaritalData(marital_status="2")))
    assert pickle.loads(pickle.dumps(change)) == change


def test_a_state_updated_by_parts_is_the_state_merged_with_them() -> None:
    local = NamedPersonId(person_id_category="MU.1", person_id="7")
    base = person(local, as_of=date(2020, 1, 1), marital_data=MaritalData(marital_status="1"))
    newer_ids = (PersonIdentificationLight(official_name="Muster", first_name="Anna", sex="2"),
                 base.identification, person().identification)
    for ident in newer_ids:
        for as_of, parts in ((None, {}), (date(2021, 1, 1), {"marital_data": None}),
                             (date(2021, 1, 1), {"marital_data": MaritalData(marital_status="2")})):
            newer = PersonState(identification=ident, as_of=as_of, **parts)
            updated = base.updated(ident, as_of, parts)
            assert updated == base.merged(newer)
            assert updated.model_dump_json() == base.merged(newer).model_dump_json()
            assert base.kept_by(updated)
    assert base.updated(newer_ids[0], None, {}).identification.vn == 7561234567897
    assert base.updated(newer_ids[0], None, {}).identification.local_person_id == local


def test_exactly_one_check_digit_makes_a_vn_valid_and_only_in_ascii_digits() -> None:
    for stem in ("756368686129", "756123456789", "756000000000"):
        valid = [d for d in "0123456789" if vn_check_digit_ok(stem + d)]
        assert len(valid) == 1
        assert vn_check_digit_ok(int(stem + valid[0]))
        # A VN is an xs:unsignedLong: other scripts' digits (which int() reads) and
        # superscripts (which str.isdigit() calls digits, int() refuses) are no VN.
        arabic = (stem + valid[0]).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
        assert not vn_check_digit_ok(arabic)
        assert not vn_check_digit_ok(stem[:-1] + "²" + valid[0])
    assert vn_check_digit_ok("7563686861295") and not vn_check_digit_ok("756368686129")
