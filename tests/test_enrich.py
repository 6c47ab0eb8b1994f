"""What a batch sees of the persons the batch before leaves while that one is still recorded."""

from __future__ import annotations

from typing import Any

from gateway.ech0223 import MaritalData, PersonIdentificationLight
from gateway.enrich import Recording
from gateway.person_state import PersonChange, PersonState, StoredPerson

VN = "vn:7561234567897"


def person(**parts: Any) -> PersonState:
    return PersonState(identification=PersonIdentificationLight(
        vn=7561234567897, official_name="Muster", first_name="Anna"), **parts)


def test_the_recorded_state_is_seen_before_and_after_its_commit() -> None:
    before = StoredPerson(1, person().model_dump_json())
    change = PersonChange.of(person(marital_data=MaritalData(marital_status="2")), before)
    recording = Recording([change])
    assert recording.over({VN: before}, [VN])[VN].text == change.merged  # not committed yet
    committed = StoredPerson(1, change.merged)
    assert recording.over({VN: committed}, [VN])[VN].text == change.merged
    assert recording.over({}, [VN])[VN].text == change.merged  # a person the batch creates


def test_two_changes_of_one_person_in_a_batch_leave_the_last() -> None:
    before = StoredPerson(1, person().model_dump_json())
    first = PersonChange.of(person(marital_data=MaritalData(marital_status="2")), before)
    second = PersonChange.of(person(marital_data=MaritalData(marital_status="3")),
                             StoredPerson(1, first.merged))
    recording = Recording([first, second])
    assert recording.over({VN: before}, [VN])[VN].text == second.merged
    assert recording.over({VN: StoredPerson(1, second.merged)}, [VN])[VN].text == second.merged


def test_a_key_another_person_holds_stays_theirs() -> None:
    """The recording does not give a key to a person when another one holds it already
    (the oldest wins); the store's answer stands."""
    change = PersonChange.of(person(marital_data=MaritalData(marital_status="2")),
                             StoredPerson(1, person().model_dump_json()))
    other = StoredPerson(7, person(marital_data=MaritalData(marital_status="1")).model_dump_json())
    assert Recording([change]).over({VN: other}, [VN])[VN] is other


def test_keys_the_recording_does_not_touch_are_the_stores() -> None:
    stored = StoredPerson(3, person().model_dump_json())
    assert Recording([]).over({VN: stored}, [VN, "vn:7560000000002"]) == {VN: stored}
