"""Operator alerts: what needs a person's attention goes to the log at WARNING.

A built-in ``gateway_event`` listener (the event kinds are listed in
:data:`gateway.events.KINDS`). It names message and delivery ids, partners,
states and reasons; reasons are redacted (:func:`gateway.api.redact`)
because schema errors quote the offending value, which may be a name or a
VN number. ``messages show`` prints the full reason.

One alert per incident, not per attempt: alerts of one kind, partner and
fault are grouped (:mod:`plugins.alerts._incidents`). The first few are
logged, the rest summarised, once a minute at first and then less often
(up to every four hours), and a partner's failing attempts end with one line
once it has taken deliveries for a minute without failing (a pause, once the
partner resumes). At the stop, what is held back is said, and each of a
partner's failures that may go on (:data:`_ONGOING`: failing attempts, a pause,
overdue receipts) says it is open, and so does a state that a committed event
opened and none has ended yet (:data:`_STATES`: a pause not resumed, the
database's disk low on space), however long ago it was said; verdicts on one message or delivery (a
rejection, a dead letter, a message to review) are not said to be open: each
was told, and waits for a person whatever the partner does next. Failing attempts
stay one incident while their retries come, however far apart, and while the
partner fails now and then between successes. Alerts by webhook, SMTP or
syslog will be further listeners of the same hook.
"""

from __future__ import annotations

import logging
import time

from gateway.api import GatewayEvent, hookimpl, redact
from plugins.alerts._incidents import Incidents, Key, fault_of

log = logging.getLogger("gateway.alerts")

#: Event kinds worth a person's attention, with how to say them.
ALERTS = {
    "message.quarantined": "message {message} quarantined: {reason}",
    "delivery.retry": "delivery {delivery} of message {message} to {partner} failed"
                      " (attempt {attempt}), will retry: {error}",
    "delivery.unsure": "delivery {delivery} of message {message} to {partner} may not have"
                       " reached the partner; attempt {ref} will be repeated: {error}",
    "delivery.dead": "delivery {delivery} of message {message} to {partner} is a dead letter"
                     " after attempt {attempt} ({why}): {error}",
    "delivery.rejected": "delivery {delivery} of message {message}: {partner} rejected it"
                         " (answer: message {answer})",
    "delivery.needs_review": "delivery {delivery} of message {message} to {partner} needs"
                             " review: receipt {code}: {info}",
    "message.needs_review": "message {message} from {partner} waits for review"
                            " ({candidates} candidates): {reason}",
    "receipt.overdue": "no receipt yet for delivery {delivery} of message {message}"
                       " to {partner}",
    "receipt.unmatched": "receipt {code} for attempt {ref}, which is none of ours ({reason}):"
                         " {info}",
    "partner.paused": "partner {partner} paused on node {node} by a fault on its machine:"
                      " {error}; its deliveries wait without counting attempts",
    "partner.resumed": "partner {partner} resumed on node {node} after {paused_for}s",
    "intake.paused": "intake paused: {error}; retrying",
    "intake.resumed": "intake resumed after {paused_for}s",
    "store.space_low": "the database's disk ({folder}) has {free_bytes:,} bytes free, below"
                       " [retention] warn_free_below ({threshold_bytes:,}): make room or keep"
                       " less; when it is full, intake pauses",
    "store.space_ok": "the database's disk ({folder}) has room again ({free_bytes:,} bytes free)",
}
#: Event kinds worth it only when the transport flagged them (``alert`` in the detail).
FLAGGED = {
    "receipt.wait": "receipt for attempt {ref}: {info}",
}
#: What each kind's incidents are told apart by, besides the partner.
_FAULT = {"delivery.retry": "error", "delivery.unsure": "error", "delivery.dead": "why"}
#: Incidents that end when their partner takes a delivery again.
_ENDED_BY_SUCCESS = frozenset({"delivery.retry", "delivery.unsure"})
#: States one committed event opens and another ends, each said once (not per attempt):
#: open until the end is committed, however quiet (the end event, what it ends, and how).
_STATES = {"partner.resumed": ("partner.paused", "works again"),
           "store.space_ok": ("store.space_low", "has room again")}
#: The kinds that open a state of :data:`_STATES`.
_HELD = frozenset(ended for ended, _how in _STATES.values())
#: Failures that may go on (an outbox that stays unwritable, receipts that do not come,
#: the states of :data:`_HELD`): an incident of these still fresh (or a state not ended)
#: at the stop is said to be open. The other
#: kinds are verdicts on one message or delivery (a rejection, a dead letter, a message
#: to review), each told already and waiting for a person, whatever the partner does next.
_ONGOING = frozenset({"delivery.retry", "delivery.unsure", "receipt.overdue", *_HELD})
#: The detail that says when a kind's failed attempt is tried next (epoch seconds).
_NEXT = {"delivery.retry": "next_attempt_at", "delivery.unsure": "resume_at"}
_SUCCESS = frozenset({"delivery.sent", "delivery.delivered", "delivery.acknowledged"})

INCIDENTS = Incidents(log)


@hookimpl
def gateway_event(event: GatewayEvent) -> None:
    """Alert on the events in :data:`ALERTS`, and those in :data:`FLAGGED` when flagged."""
    partner = event.detail.get("partner")
    if event.kind in _SUCCESS and partner is not None:
        INCIDENTS.resolve(str(partner), _ENDED_BY_SUCCESS)
        return
    if event.kind in _STATES:  # said below, and it ends the state's incident
        ended, how = _STATES[event.kind]
        INCIDENTS.resolve(None if partner is None else str(partner), frozenset({ended}), how)
    template = ALERTS.get(event.kind)
    if template is None and event.detail.get("alert"):
        template = FLAGGED.get(event.kind)
    if template is None:
        return
    fields = {"message": event.message, "delivery": event.delivery, **event.detail}
    for name in ("reason", "error", "info", "why"):
        if name in fields:
            fields[name] = redact(str(fields[name]))
    try:
        text = template.format(**fields)
    except (KeyError, IndexError):
        text = f"{event.kind}: {fields}"
    fault = str(fields.get(_FAULT.get(event.kind, ""), ""))
    INCIDENTS.alert(Key(event.kind, None if partner is None else str(partner), fault_of(fault)),
                    text, event.delivery if event.delivery is not None else event.message,
                    _next_in(event), fault, ongoing=event.kind in _ONGOING,
                    held=event.kind in _HELD)


@hookimpl
def gateway_stop() -> None:
    """Say what the open incidents hold back (:meth:`Incidents.stop`)."""
    INCIDENTS.stop()


def _next_in(event: GatewayEvent) -> float | None:
    """Seconds until the attempt that follows ``event``'s failed one (``None``: none said)."""
    at = event.detail.get(_NEXT.get(event.kind, ""))
    return at - time.time() if isinstance(at, int | float) else None
