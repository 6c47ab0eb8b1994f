"""Operator alerts: what needs a person's attention goes to the log at WARNING.

A built-in ``gateway_event`` listener. It names message and delivery ids,
states and reasons; reasons are redacted (:func:`gateway.logs.redact`)
because schema errors quote the offending value, which may be a name or a
VN number. ``messages show`` prints the full reason. Alerts by webhook, SMTP or syslog
will be further listeners of the same hook.
"""

from __future__ import annotations

import logging

from gateway.api import GatewayEvent, hookimpl, redact

log = logging.getLogger("gateway.alerts")

#: Event kinds worth a person's attention, with how to say them.
ALERTS = {
    "message.quarantined": "message {message} quarantined: {reason}",
    "delivery.transient_failure": "delivery {delivery} failed, will retry: {error}",
    "delivery.permanent_failure": "delivery {delivery} failed for good: {error}",
    "delivery.unsure": "delivery {delivery} may not have reached the partner;"
                       " attempt {ref} will be repeated: {error}",
    "receipt.overdue": "no receipt yet for delivery {delivery} of message {message}",
    "receipt.needs_review": "receipt {code} for attempt {ref} needs review",
    "receipt.failed_permanent": "receipt {code} for attempt {ref}: the partner refused it",
    "receipt.failed_transient": "receipt {code} for attempt {ref}: transfer failed, will retry",
}
#: Event kinds worth it only when the transport flagged them (``alert`` in the detail).
FLAGGED = {
    "receipt.wait": "receipt for attempt {ref}: {info}",
}


@hookimpl
def gateway_event(event: GatewayEvent) -> None:
    """Log the events in :data:`ALERTS`, and those in :data:`FLAGGED` when flagged, at WARNING."""
    template = ALERTS.get(event.kind)
    if template is None and event.detail.get("alert"):
        template = FLAGGED.get(event.kind)
    if template is None:
        return
    fields = {"message": event.message, "delivery": event.delivery, **event.detail}
    try:
        text = template.format(**fields)
    except (KeyError, IndexError):
        text = f"{event.kind}: {fields}"
    log.warning(redact(text))
