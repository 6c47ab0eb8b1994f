"""What a failed SOAP call means for a delivery: retried (transient) or a dead letter (permanent).

- A SOAP fault: the operator's ``permanent_faults`` and ``transient_faults``
  first (a fault code, with or without prefix, or words of the fault string),
  then the code: ``Server``/``Receiver`` (or such a SOAP 1.2 subcode) and
  WS-Security's ``MessageExpired`` are transient; every other code is
  permanent: ``Client``/``Sender``, the other WS-Security codes
  (``FailedAuthentication``...), ``VersionMismatch``, ``MustUnderstand``.
  A fault without code is transient.
- HTTP: 408, 429 and 5xx transient, other 4xx permanent. A transient answer's
  ``Retry-After`` puts off the next attempt (:func:`with_retry_after`).
- Connection errors, TLS handshakes that fail and timeouts: transient (the
  same message goes through once the service or the certificates are right;
  the reason says which side refused).
- An answer that is not SOAP: transient (the service may have taken the message).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from http.client import RemoteDisconnected

import requests
from zeep.exceptions import Fault, TransportError, ValidationError

from gateway.api import InputRejected, PermanentError, TransientError, partner_text

#: Fault codes (local names, lower case) retried; any other code is permanent. A
#: WS-Security ``MessageExpired`` is among them: the resend has a fresh timestamp.
_TRANSIENT_CODES = frozenset({"server", "receiver", "messageexpired"})


def _local(code: object) -> str:
    """``soap:Client.Auth`` -> ``client``; a QName ``{ns}Sender`` -> ``sender``."""
    text = str(code or "")
    text = text.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    return text.split(".", 1)[0].lower()


def _listed(fault: Fault, entries: Sequence[str]) -> str | None:
    codes = {str(fault.code or ""), *(str(c) for c in fault.subcodes or ())}
    names = {c.rsplit("}", 1)[-1].rsplit(":", 1)[-1] for c in codes} | codes
    text = (fault.message or "").lower()
    for entry in entries:
        if entry in names or entry.lower() in text:
            return entry
    return None


def fault_reason(fault: Fault) -> str:
    """``SOAP fault soap:Client: 'the fault string'`` (quoted: logs show it redacted)."""
    said = partner_text(fault.message) if fault.message else "(no fault string)"
    return f"SOAP fault {fault.code or '(no code)'}: {said}"


def classify_fault(fault: Fault, permanent: Sequence[str] = (),
                   transient: Sequence[str] = ()) -> TransientError | PermanentError:
    """The verdict on a SOAP fault (see the module docstring)."""
    reason = fault_reason(fault)
    if (entry := _listed(fault, permanent)) is not None:
        return PermanentError(f"{reason} (permanent_faults: {entry})")
    if (entry := _listed(fault, transient)) is not None:
        return TransientError(f"{reason} (transient_faults: {entry})")
    codes = [_local(fault.code), *(_local(c) for c in fault.subcodes or ())]
    if any(c in _TRANSIENT_CODES for c in codes[1:]) or codes[0] in _TRANSIENT_CODES:
        return TransientError(reason)
    return PermanentError(reason) if codes[0] else TransientError(reason)


def http_verdict(status: int, detail: str) -> TransientError | PermanentError:
    """HTTP ``status`` without a SOAP fault: 408, 429 and 5xx transient, other 4xx permanent."""
    reason = f"HTTP {status} from the SOAP service{': ' + detail if detail else ''}"
    if status in (408, 429) or status >= 500 or status < 400:
        return TransientError(reason)
    return PermanentError(reason)


def with_retry_after(verdict: Exception, wait: float | None) -> Exception:
    """``verdict``, made to wait ``wait`` seconds (an answer's ``Retry-After``) if it is
    transient: ``HTTP 429 from the SOAP service (Retry-After 120s)``."""
    if wait is None or not isinstance(verdict, TransientError) or verdict.retry_after is not None:
        return verdict
    return TransientError(f"{verdict} (Retry-After {wait:g}s)", retry_after=wait)


def _tls_reason(exc: BaseException) -> str | None:
    """Which side refused the TLS handshake, if that is what failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"the server's certificate is not trusted ({seen.verify_message}); check ca_file"
        if isinstance(seen, ssl.SSLEOFError | ConnectionResetError | RemoteDisconnected):
            return (f"the server closed the connection without answering ({seen}); with TLS 1.3"
                    " that is how a refused client certificate shows: check client_cert")
        if isinstance(seen, ssl.SSLError):
            text = str(seen)
            if any(w in text.upper() for w in ("CERTIFICATE_REQUIRED", "UNKNOWN_CA",
                                                "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN",
                                                "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED")):
                return f"the server refused our client certificate ({text}); check client_cert"
            return f"TLS failed: {text}"
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args and isinstance(
            seen.args[0], BaseException) else None)
    return None


def classify(exc: BaseException, status: int | None, permanent: Sequence[str] = (),
             transient: Sequence[str] = ()) -> TransientError | PermanentError:
    """The verdict on any error of a call; ``status`` is the HTTP status, if an answer came."""
    if isinstance(exc, Fault):
        return classify_fault(exc, permanent, transient)
    if isinstance(exc, TransportError) and exc.status_code:
        return http_verdict(exc.status_code, "")
    if isinstance(exc, requests.Timeout):
        return TransientError(f"SOAP service timed out: {exc}")
    if isinstance(exc, requests.ConnectionError | ssl.SSLError):
        tls = _tls_reason(exc)
        if tls is None and "certificate" in str(exc).lower():
            tls = f"the server refused our client certificate ({exc}); check client_cert"
        return TransientError(tls or f"cannot reach the SOAP service: {exc}")
    if isinstance(exc, ValidationError | InputRejected):
        return PermanentError(f"the message does not fit the operation: {exc}")
    if status is not None and status >= 400:
        return http_verdict(status, str(exc))
    return TransientError(f"SOAP call failed: {exc}")
