"""sedex receipt status codes and what each means for a delivery (DOMAIN.md §1.5).

Every receipt ends its sedex message: a retry is a new message with a new
envelope ``messageId``. A code missing from :data:`STATUS_CODES`, or one
that is not a number, means "needs review", never success.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.api import ReceiptOutcome

_OK = ReceiptOutcome.DELIVERED
_WAIT = ReceiptOutcome.WAIT
_FINAL = ReceiptOutcome.FAILED_PERMANENT
_RETRY = ReceiptOutcome.FAILED_TRANSIENT
#: 201 proves delivery when our attempt was repeated (unsure: the first copy arrived) and is
#: a final error otherwise; the store, which knows the attempt's repeats, decides.
_KNOWN = ReceiptOutcome.ALREADY_KNOWN


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One sedex status code.

    :param alert: the operator should be told even though the delivery waits.
    """

    meaning: str
    category: str
    outcome: ReceiptOutcome
    alert: bool = False


STATUS_CODES: dict[int, StatusCode] = {
    100: StatusCode("delivered to the recipient", "success", _OK),
    601: StatusCode("sent to the sedex server, delivery still pending", "partial", _WAIT),
    701: StatusCode("not yet collected, expires soon", "warning", _WAIT, alert=True),
    200: StatusCode("envelope invalid or wrong version", "message", _FINAL),
    201: StatusCode("adapter already knows this messageId", "message", _KNOWN),
    202: StatusCode("envelope without payload", "message", _FINAL),
    203: StatusCode("too old to send", "message", _FINAL),
    204: StatusCode("expired: not collected in time", "message", _FINAL),
    320: StatusCode("expired: not collected in time (v1 code)", "message", _FINAL),
    300: StatusCode("sender ID unknown", "authorisation", _FINAL),
    301: StatusCode("recipient ID unknown", "authorisation", _FINAL),
    302: StatusCode("our adapter's ID unknown", "authorisation", _FINAL),
    303: StatusCode("message type unknown", "authorisation", _FINAL),
    304: StatusCode("message class unknown", "authorisation", _FINAL),
    310: StatusCode("sender may not send this to that recipient", "authorisation", _FINAL),
    311: StatusCode("recipient may not receive this", "authorisation", _FINAL),
    312: StatusCode("certificate revoked or invalid", "authorisation", _FINAL),
    313: StatusCode("other recipients not allowed", "authorisation", _FINAL),
    330: StatusCode("message too large", "authorisation", _FINAL),
    400: StatusCode("network error", "transport", _RETRY),
    401: StatusCode("OSCI hub unreachable", "transport", _RETRY),
    402: StatusCode("participant directory unreachable", "transport", _RETRY),
    403: StatusCode("logging service unreachable", "transport", _RETRY),
    404: StatusCode("authorisation service unreachable", "transport", _RETRY),
    500: StatusCode("internal adapter error", "adapter", _RETRY, alert=True),
    501: StatusCode("error while receiving", "adapter", _RETRY),
}

_UNKNOWN = StatusCode("unknown status code", "unknown", ReceiptOutcome.NEEDS_REVIEW, alert=True)


def lookup(code: str) -> StatusCode:
    """The entry for ``code`` (receipt text); unknown or garbage needs review."""
    text = code.strip()
    if not text.isascii() or not text.isdigit():
        return _UNKNOWN
    return STATUS_CODES.get(int(text), _UNKNOWN)
