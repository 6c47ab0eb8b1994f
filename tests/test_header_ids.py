"""The eCH-0223 header's messageId and senderId: the normaliser reads them as intake does
(one lookup, :func:`gateway.api.header_ids_of`), for a message it takes and one it refuses."""

from __future__ import annotations

import pytest

import plugins.ech0223 as ech0223_plugin
from gateway.contracts import NormaliseContext, RawInput
from gateway.errors import InputRejected
from gateway.header_ids import header_ids
from tests.flow import FIXTURES

CONTEXT = NormaliseContext(1 << 20, 100, 1 << 20, 100)
MINIMAL = (FIXTURES / "valid-pem-minimal.xml").read_bytes()
IDS = ("3f2c1b7e-8d4a-4c1e-9b5a-0a7d2e6f4c11", "sedex://T1-2511-1")
BLANK = MINIMAL.replace(IDS[0].encode(), b"  ").replace(IDS[1].encode(), b"\n   ")
VERSIONLESS = b' version="1.5"'  # without it, an invalid document is refused by the plugin


@pytest.mark.parametrize(("data", "refused", "expected"), [
    (MINIMAL, False, IDS),
    (BLANK, False, (None, None)),  # a blank id is none, not ""
    (MINIMAL.replace(VERSIONLESS, b"").replace(b"<eCH-0223:content>", b"<eCH-0223:content>"
                                                 b"<eCH-0223:oops/>"), True, IDS),
    (BLANK.replace(VERSIONLESS, b""), True, (None, None)),
], ids=["taken", "taken-blank", "refused", "refused-blank"])
def test_the_normaliser_reads_the_header_ids_as_intake_does(
        data: bytes, refused: bool, expected: tuple[str | None, str | None]) -> None:
    assert VERSIONLESS in MINIMAL
    raw = RawInput("folder", "m.xml", data)
    try:
        normalised = ech0223_plugin.gateway_normalise(raw, CONTEXT)
    except InputRejected as exc:
        assert refused, exc
        got = (exc.message_id, exc.sender_id)
    else:
        assert not refused and normalised is not None
        got = (normalised.message_id, normalised.sender_id)
    assert got == header_ids(raw, CONTEXT) == expected
