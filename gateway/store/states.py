"""The states of messages and deliveries (DESIGN.md, "State")."""

from __future__ import annotations

import enum


class MessageState(enum.StrEnum):
    """Where a stored input stands."""

    RECEIVED = "received"
    ROUTED = "routed"
    NOT_RELEVANT = "not_relevant"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"
    #: an export file whose rows were stored as inputs of their own (its parts)
    SPLIT = "split"
    #: a partner's message whose person was not found, or not found alone: an operator
    #: assigns it (``messages assign``)
    NEEDS_REVIEW = "needs_review"


class DeliveryState(enum.StrEnum):
    """Where one message's delivery to one partner stands."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    RETRY_WAIT = "retry_wait"
    REJECTED = "rejected"
    NEEDS_REVIEW = "needs_review"
    DEAD = "dead"
    REPLAYED = "replayed"


#: Deliveries an operator may replay.
REPLAYABLE = frozenset({DeliveryState.DEAD, DeliveryState.NEEDS_REVIEW, DeliveryState.REJECTED})
#: Deliveries whose story is over: they only grow in number (``status`` gives them as totals).
FINISHED = frozenset({DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.REPLAYED})
#: Deliveries the dispatcher may claim when due.
DUE = (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT)
