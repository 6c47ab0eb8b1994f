"""Which failed SOAP calls are retried and which make a dead letter (plugins/soap/faults.py)."""

from __future__ import annotations

import pytest
import requests
from zeep.exceptions import Fault, TransportError

from gateway.errors import PermanentError, TransientError
from plugins.soap.faults import classify


@pytest.mark.parametrize(("code", "subcodes", "verdict"), [
    ("soap:Client", None, PermanentError),
    ("soapenv:Client.Authentication", None, PermanentError),
    ("soap:Server", None, TransientError),
    ("env:Sender", None, PermanentError),  # SOAP 1.2
    ("env:Receiver", None, TransientError),
    ("{http://www.w3.org/2003/05/soap-envelope}Receiver", None, TransientError),
    ("env:Sender", ["{urn:x}Receiver"], TransientError),
    ("wsse:FailedAuthentication", None, PermanentError),
    ("wsse:MessageExpired", None, TransientError),
    ("soap:VersionMismatch", None, PermanentError),
    (None, None, TransientError),  # an answer with no fault code: unknown, so retried
])
def test_fault_codes(code: str | None, subcodes: list[str] | None, verdict: type) -> None:
    fault = Fault("it failed", code=code, subcodes=subcodes)
    result = classify(fault, 500)
    assert type(result) is verdict
    assert "it failed" in str(result)


def test_the_operators_lists_come_before_the_code() -> None:
    busy = Fault("Service busy, try again", code="soap:Client")
    assert type(classify(busy, 500, transient=["busy"])) is TransientError
    duplicate = Fault("message already received", code="soap:Server")
    verdict = classify(duplicate, 500, permanent=["already received"])
    assert type(verdict) is PermanentError and "permanent_faults: already received" in str(verdict)
    coded = Fault("x", code="tns:Duplicate")
    assert type(classify(coded, 500, permanent=["tns:Duplicate"], transient=["x"])) is PermanentError
    assert type(classify(Fault("y", code="soap:Server"), 500, permanent=["Duplicate"])) is \
        TransientError


@pytest.mark.parametrize(("status", "verdict"), [
    (408, TransientError), (429, TransientError), (500, TransientError), (503, TransientError),
    (400, PermanentError), (401, PermanentError), (404, PermanentError), (415, PermanentError),
])
def test_http_status_without_fault(status: int, verdict: type) -> None:
    result = classify(TransportError("no", status_code=status), status)
    assert type(result) is verdict and f"HTTP {status}" in str(result)


def test_connection_errors_and_timeouts_are_transient() -> None:
    assert type(classify(requests.ReadTimeout("read timed out"), None)) is TransientError
    assert type(classify(requests.ConnectionError("refused"), None)) is TransientError
