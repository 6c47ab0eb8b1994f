"""Operator alerts name what happened, without the personal data a reason may quote."""

from __future__ import annotations

import logging

import pytest

from gateway.contracts import GatewayEvent
from gateway.logs import redact
from plugins.alerts import gateway_event

SCHEMA_ERROR = (
    "invalid eCH-0223 1.5: line 31: Element '{http://www.ech.ch/xmlns/eCH-0044/4}vn':"
    " '7561234567897' is not a valid value of the atomic type 'vnType'; line 40: Element"
    " '{http://www.ech.ch/xmlns/eCH-0044/4}officialName': [facet 'maxLength'] The value"
    " 'Müller-Lüdenscheidt' has a length of 120"
)


def test_redact_removes_quoted_values_and_long_numbers() -> None:
    out = redact(SCHEMA_ERROR + " born 19800101")
    assert "7561234567897" not in out and "Müller" not in out and "19800101" not in out
    assert "{http://www.ech.ch/xmlns/eCH-0044/4}vn" in out, "element names stay"
    assert "line 31" in out


def test_redact_keeps_references_and_removes_vn_numbers_with_dots() -> None:
    ref = "466ef20c-e33a-44dc-8e15-209874561eb1"  # an attempt reference with a digit run
    sha = "3e6b92b9764b3786091e5bb67e8ffb8c3271be4c977101da9fa14afa12fea171"
    out = redact(f"receipt 401 for attempt {ref}: VN 756.1234.5678.97 unknown;"
                 f" 1572864000 bytes, SHA-256 {sha}; born 19800101")
    assert ref in out and sha in out, "references must stay greppable"
    assert "1572864000 bytes" in out, "byte counts are not personal"
    assert "756.1234.5678.97" not in out and "5678" not in out and "19800101" not in out


def test_quarantine_alert_is_logged_without_personal_data(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("message.quarantined", 7, None, {"reason": SCHEMA_ERROR}))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "message 7 quarantined" in record.getMessage()
    assert "7561234567897" not in record.getMessage()
    assert "Müller" not in record.getMessage()


def test_uninteresting_events_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("delivery.delivered", 1, 2, {}))
    assert caplog.records == []


def test_a_waiting_receipt_is_logged_only_when_flagged(caplog: pytest.LogCaptureFixture) -> None:
    info = "701 not yet collected, expires soon (recipient T1-CH-1)"
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("receipt.wait", None, None,
                                   {"ref": "r-601", "code": "601", "alert": False, "info": "x"}))
        gateway_event(GatewayEvent("receipt.wait", None, None,
                                   {"ref": "r-701", "code": "701", "alert": True, "info": info}))
    [record] = caplog.records
    assert record.getMessage() == f"receipt for attempt r-701: {info}"
