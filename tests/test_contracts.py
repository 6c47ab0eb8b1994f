"""The records that travel between the stages and processes (:class:`gateway.contracts.Travels`)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from gateway.contracts import Normalised, RawInput


def _message() -> Normalised:
    return Normalised(kind="personEventMessage", message_id="m-1", xml=b"<a/>", tree=None,
                      subject=("vn:7560000000002",), facts={"format": "eCH-0223"})


def test_a_record_replaced_is_what_dataclasses_replace_makes() -> None:
    n = _message()
    changed = n.replaced(xml=b"", facts={})
    assert changed == dataclasses.replace(n, xml=b"", facts={})
    assert changed is not n and (n.xml, n.facts) == (b"<a/>", {"format": "eCH-0223"})
    raw = RawInput("registry", "a.xml", b"<a/>")
    assert raw.replaced(ref="b.xml") == RawInput("registry", "b.xml", b"<a/>")


def test_replacing_a_field_a_record_lacks_is_refused() -> None:
    with pytest.raises(TypeError, match="Normalised has no field 'no_such_field'"):
        _message().replaced(no_such_field=1)


def test_a_record_pickles_as_itself() -> None:
    n = _message()
    assert pickle.loads(pickle.dumps(n)) == n
