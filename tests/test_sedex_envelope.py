"""eCH-0090 envelopes and receipts (v1 and v2), status codes and sedex options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from gateway.errors import InputRejected
from gateway.outbound import ReceiptOutcome
from gateway.xml.validation import validate
from plugins.sedex._receipts import to_receipt
from plugins.sedex.envelope import (
    Envelope,
    build_envelope,
    build_receipt,
    parse_datetime,
    parse_envelope,
    parse_receipt,
)
from plugins.sedex.options import SedexOptions
from plugins.sedex.status import STATUS_CODES, lookup

MAX = 1024 * 1024
CET = timezone(timedelta(hours=1))
WHEN = datetime(2024, 3, 1, 12, 30, tzinfo=CET)


def envelope(version: int = 1, **changes: object) -> Envelope:
    fields: dict[str, object] = {
        "message_id": "0b9f6c4e-2d7a-4c1e-9b1a-3f2e4d5c6b7a",
        "message_type": 2_200_001,
        "message_class": 0,
        "sender_id": "T3-1234-1",
        "recipient_ids": ("3-CH-1",),
        "event_date": WHEN,
        "message_date": WHEN,
        "version": version,
    }
    return Envelope(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [1, 2])
def test_envelope_round_trip_and_schema(version: int) -> None:
    env = envelope(version, recipient_ids=("3-CH-1", "T7-4-2"), reference_message_id="abc-1",
                   message_class=1)
    xml = build_envelope(env)
    assert validate(xml).valid
    assert f'version="{version}.0"'.encode() in xml
    assert f"eCH-0090/{version}".encode() in xml
    assert parse_envelope(xml, max_bytes=MAX) == env


def test_v2_allows_more_sedex_system_ids_than_v1() -> None:
    assert parse_envelope(build_envelope(envelope(2, sender_id="0-sedex-5")), max_bytes=MAX)
    with pytest.raises(ValueError, match="participant"):
        build_envelope(envelope(1, sender_id="0-sedex-5"))


@pytest.mark.parametrize("changes", [
    {"message_id": "not a valid id"},
    {"message_id": "x" * 37},
    {"message_type": 2_700_000},
    {"message_class": 2},  # needs a reference
    {"recipient_ids": ()},
    {"recipient_ids": ("3-CH-1", "nobody")},
    {"event_date": datetime(2024, 3, 1, 12, 30)},  # naive
])
def test_build_refuses_what_sedex_refuses(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_envelope(envelope(1, **changes))


@pytest.mark.parametrize("data", [
    b"",
    b"not xml",
    b"<envelope/>",
    b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    b'<e:envelope xmlns:e="http://www.ech.ch/xmlns/eCH-0090/1" version="1.0"/>',
])
def test_parse_envelope_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InputRejected):
        parse_envelope(data, max_bytes=MAX)


def test_parse_envelope_rejects_wrong_version_attribute() -> None:
    xml = build_envelope(envelope(1)).replace(b'version="1.0"', b'version="2.0"')
    with pytest.raises(InputRejected, match="invalid"):
        parse_envelope(xml, max_bytes=MAX)


#: messageIds sedex refuses that a partner's envelope might carry: a path out of a folder, too long.
UNSAFE_IDS = ["../../etc/x", "x" * 37]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("bad", UNSAFE_IDS)
def test_parse_envelope_refuses_a_message_id_that_is_no_safe_name(version: int, bad: str) -> None:
    good = envelope(version).message_id
    xml = build_envelope(envelope(version)).replace(f">{good}<".encode(), f">{bad}<".encode())
    with pytest.raises(InputRejected) as caught:
        parse_envelope(xml, max_bytes=MAX)
    assert str(caught.value) == (
        f"invalid eCH-0090 v{version} envelope: line 3: Element"
        f" '{{http://www.ech.ch/xmlns/eCH-0090/{version}}}messageId': [facet 'pattern']"
        f" The value '{bad}' is not accepted by the pattern '[A-Za-z0-9\\-]{{1,36}}'.")


RECEIPT_V1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<receipt xmlns="http://www.ech.ch/xmlns/eCH-0090/1" version="1.0">
  <eventDate>2024-03-01T12:31:00.123456789</eventDate>
  <statusCode>%s</statusCode>
  <statusInfo>Message successfully transmitted</statusInfo>
  <messageId>abc-123</messageId>
  <messageType>2200001</messageType>
  <messageClass>0</messageClass>
  <senderId>T3-1234-1</senderId>
  <recipientId>3-CH-1</recipientId>
</receipt>
"""


def test_parse_receipt_v1() -> None:
    receipt = parse_receipt(RECEIPT_V1 % b"100", max_bytes=MAX)
    assert (receipt.version, receipt.message_id, receipt.status_code) == (1, "abc-123", "100")
    assert receipt.recipient_id == "3-CH-1"
    assert receipt.problem is None
    assert receipt.event_date is not None and receipt.event_date.tzinfo is not None


def test_parse_receipt_v2() -> None:
    at = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    xml = build_receipt(envelope(1), "3-CH-1", 601, "pending", at)
    assert validate(xml).valid
    receipt = parse_receipt(xml, max_bytes=MAX)
    assert (receipt.version, receipt.status_code, receipt.status_info) == (2, "601", "pending")
    assert receipt.event_date == at


def test_an_unknown_code_in_a_v1_receipt_needs_review() -> None:
    receipt = parse_receipt(RECEIPT_V1 % b"999", max_bytes=MAX)  # v1 has a closed code list
    assert receipt.warning is not None and "statusCode" in receipt.warning
    core = to_receipt(receipt, b"raw", WHEN)
    assert core.outcome is ReceiptOutcome.NEEDS_REVIEW
    assert core.code == "999"


@pytest.mark.parametrize(("code", "outcome"), [("601", ReceiptOutcome.WAIT),
                                               ("701", ReceiptOutcome.WAIT),
                                               ("404", ReceiptOutcome.FAILED_TRANSIENT),
                                               ("204", ReceiptOutcome.FAILED_PERMANENT)])
def test_a_v2_only_code_in_a_v1_receipt_is_understood_with_a_warning(
        code: str, outcome: ReceiptOutcome) -> None:
    """Older tools write v1 receipts; the v1 schema lists 17 codes, sedex uses more."""
    receipt = parse_receipt(RECEIPT_V1 % code.encode(), max_bytes=MAX)
    assert (receipt.version, receipt.problem) == (1, None)
    assert f"The value '{code}' is not an element of the set" in (receipt.warning or "")
    core = to_receipt(receipt, b"raw", WHEN)
    assert (core.outcome, core.code, core.alert) == (outcome, code, code == "701")
    assert "schema warning, eCH-0090 v1" in core.info


#: The example receipt of the sedex documentation (docs.sedex.admin.ch, "sedex Receipts"),
#: byte for byte but for the indentation: its senderId misses the v2 participant ID pattern.
DOCUMENTED_RECEIPT = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<receipt xmlns="http://www.ech.ch/xmlns/eCH-0090/2" version="2.0">
    <eventDate>2025-01-21T16:23:28+01:00</eventDate>
    <statusCode>100</statusCode>
    <statusInfo>Message successfully transmitted</statusInfo>
    <messageId>TEST-76578537820918</messageId>
    <messageType>4711</messageType>
    <messageClass>0</messageClass>
    <senderId>1-1234</senderId>
    <recipientId>1-1234-1</recipientId>
</receipt>
"""


def test_the_documented_example_receipt_is_delivered_with_a_schema_warning() -> None:
    assert not validate(DOCUMENTED_RECEIPT).valid
    receipt = parse_receipt(DOCUMENTED_RECEIPT, max_bytes=MAX)
    assert receipt.problem is None
    assert "senderId" in (receipt.warning or "") and "'1-1234'" in (receipt.warning or "")
    core = to_receipt(receipt, DOCUMENTED_RECEIPT, WHEN)
    assert (core.attempt_ref, core.outcome, core.code) == (
        "TEST-76578537820918", ReceiptOutcome.DELIVERED, "100")
    assert core.at == datetime(2025, 1, 21, 15, 23, 28, tzinfo=UTC)
    assert "schema warning, eCH-0090 v2" in core.info and "senderId" in core.info
    assert core.raw == DOCUMENTED_RECEIPT


@pytest.mark.parametrize("broken", [
    (b"<messageType>4711</messageType>", b""),  # a required field missing
    (b"<messageClass>0</messageClass>", b"<messageClass>zero</messageClass>"),
    (b"<recipientId>1-1234-1</recipientId>", b"<recipientId>1-1234-1</recipientId>"
                                             b"<recipientId>2-1-1</recipientId>"),
])
def test_a_receipt_broken_beyond_a_participant_id_needs_review(broken: tuple[bytes, bytes]) -> None:
    receipt = parse_receipt(DOCUMENTED_RECEIPT.replace(*broken), max_bytes=MAX)
    assert receipt.problem is not None
    assert to_receipt(receipt, b"", WHEN).outcome is ReceiptOutcome.NEEDS_REVIEW


@pytest.mark.parametrize("info", ["Message correct transmitted", "Message correctly transmitted",
                                  "Message successfully transmitted", "", "Nachricht zugestellt"])
def test_the_status_code_decides_whatever_the_status_info_says(info: str) -> None:
    xml = DOCUMENTED_RECEIPT.replace(b"Message successfully transmitted", info.encode())
    core = to_receipt(parse_receipt(xml, max_bytes=MAX), xml, WHEN)
    assert (core.outcome, core.code) == (ReceiptOutcome.DELIVERED, "100")


@pytest.mark.parametrize(("text", "at"), [
    ("2025-01-21T15:23:28Z", datetime(2025, 1, 21, 15, 23, 28, tzinfo=UTC)),
    ("2025-01-21T16:23:28+01:00", datetime(2025, 1, 21, 15, 23, 28, tzinfo=UTC)),
    ("2025-01-21T16:33:47.576+01:00", datetime(2025, 1, 21, 15, 33, 47, 576000, tzinfo=UTC)),
    ("2025-01-21T10:33:47.5-05:00", datetime(2025, 1, 21, 15, 33, 47, 500000, tzinfo=UTC)),
])
def test_receipt_event_dates_as_sedex_writes_them(text: str, at: datetime) -> None:
    xml = DOCUMENTED_RECEIPT.replace(b"2025-01-21T16:23:28+01:00", text.encode())
    core = to_receipt(parse_receipt(xml, max_bytes=MAX), xml, WHEN)
    assert core.at == at and core.outcome is ReceiptOutcome.DELIVERED


def test_receipt_without_message_id_is_rejected() -> None:
    with pytest.raises(InputRejected):
        parse_receipt(RECEIPT_V1.replace(b"abc-123", b"") % b"100", max_bytes=MAX)


def test_to_receipt_maps_code_and_time() -> None:
    core = to_receipt(parse_receipt(RECEIPT_V1 % b"100", max_bytes=MAX), b"raw", WHEN)
    assert (core.attempt_ref, core.code) == ("abc-123", "100")
    assert core.outcome is ReceiptOutcome.DELIVERED
    assert "delivered" in core.info and core.raw == b"raw"


EXPECTED = {
    100: ReceiptOutcome.DELIVERED,
    601: ReceiptOutcome.WAIT,
    701: ReceiptOutcome.WAIT,
    201: ReceiptOutcome.ALREADY_KNOWN,
    **dict.fromkeys([200, 202, 203, 204, 320, 300, 301, 302, 303, 304, 310, 311, 312, 313,
                     330], ReceiptOutcome.FAILED_PERMANENT),
    **dict.fromkeys([400, 401, 402, 403, 404, 500, 501], ReceiptOutcome.FAILED_TRANSIENT),
}


def test_status_table_covers_exactly_the_documented_codes() -> None:
    assert set(STATUS_CODES) == set(EXPECTED)
    assert all(entry.meaning for entry in STATUS_CODES.values())


@pytest.mark.parametrize(("code", "outcome"), sorted(EXPECTED.items()))
def test_status_code_outcome(code: int, outcome: ReceiptOutcome) -> None:
    assert lookup(str(code)).outcome is outcome


def test_701_alerts() -> None:
    assert lookup("701").alert


@pytest.mark.parametrize(
    "code", ["999", "205", "0", "", "abc", "10O", "-100", "\uff11\uff10\uff10", "100.0"])
def test_unknown_or_garbage_code_needs_review(code: str) -> None:
    assert lookup(code).outcome is ReceiptOutcome.NEEDS_REVIEW


def test_parse_datetime_forms() -> None:
    assert parse_datetime("2024-03-01T12:30:00Z") == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_datetime("2024-03-01T12:30:00.5+01:00") == WHEN + timedelta(seconds=0.5)
    assert parse_datetime("2024-03-01T12:30:00").tzinfo is not None
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def options(**changes: object) -> SedexOptions:
    base: dict[str, object] = {
        "outbox": "o", "inbox": "i", "receipts": "r", "processed": "p",
        "sender_id": "T3-1234-1", "recipient_id": "T3-CH-1", "message_type": 2_200_001,
    }
    return SedexOptions.model_validate({**base, **changes})


def test_options_defaults() -> None:
    opts = options()
    assert (opts.envelope_version, opts.message_class, opts.pair_grace) == (1, 0, 60)
    assert opts.sync
    assert str(opts.receipts_done) == "receipts-done"


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("500ms", 0.5), ("2m", 120), (5, 5)])
def test_options_durations(text: object, seconds: float) -> None:
    assert options(pair_grace=text).pair_grace == seconds


@pytest.mark.parametrize("changes", [
    {"sender_id": "3-1234"},
    {"recipient_id": "0-sedex-3"},  # v2 only
    {"message_type": 2_700_000},
    {"message_class": 1},
    {"message_class": 72},
    {"envelope_version": 3},
    {"pair_grace": "soon"},
    {"unknown_key": 1},
])
def test_options_refuse(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        options(**changes)


def test_options_v2_ids() -> None:
    assert options(envelope_version=2, recipient_id="0-sedex-3").recipient_id == "0-sedex-3"
