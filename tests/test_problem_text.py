"""Schema problems as reasons say them: an unknown eCH-0223 event in brief, from real lxml
messages."""

from __future__ import annotations

import pytest

from gateway.assembly import make_validator
from gateway.xml.problem_text import problems_text
from gateway.xml.validation import SchemaSet
from tests.flow import FIXTURES

PEM14 = (FIXTURES / "valid-pem14-full-persondata.xml").read_bytes()
EVENT = b"<eCH-0223:personEvent>othercaseOfMigration<"


@pytest.mark.parametrize(("event", "version", "said"), [
    ("MoveIn", "1.4", "'MoveIn' is not an eCH-0223 event of version 1.4 (did you mean 'moveIn'?)"),
    # a near event is another event: not suggested
    ("prolongationL", "1.4", "'prolongationL' is not an eCH-0223 event of version 1.4"),
    ("declarationOfCommitment", "1.0",
     "'declarationOfCommitment' is not an eCH-0223 event of version 1.0"),
])
def test_an_unknown_event_is_said_without_the_schemas_list(event: str, version: str,
                                                           said: str) -> None:
    data = PEM14.replace(EVENT, f"<eCH-0223:personEvent>{event}<".encode())
    problems = make_validator(SchemaSet.from_directory())(data, version)
    assert any("is not an element of the set {" in p for p in problems)
    told = problems_text(problems, version)
    assert f"Element '{{http://www.ech.ch/xmlns/eCH-0223/1}}personEvent': {said}" in told
    assert "{" not in told.replace("{http://www.ech.ch/xmlns/eCH-0223/1}", "")


def test_other_problems_stay_as_the_schema_says_them_the_first_three() -> None:
    problems = [f"line {n}: Element 'x': This element is not expected." for n in range(5)]
    assert problems_text(problems, "1.5") == "; ".join(problems[:3])
