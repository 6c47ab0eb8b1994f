"""What crosses between the core and a transport: one attempt to deliver, what the
transport made of it, and the receipts that tell later what became of it."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from gateway.contracts import Attachment, Travels
from gateway.errors import DeliveryError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboundItem(Travels):
    """One attempt to deliver a message to a partner.

    :param attempt_ref: the transport-level id of this attempt (for sedex the
        envelope ``messageId``). A transport must treat a second ``send`` with
        the same ``attempt_ref`` as the same attempt (idempotence): after a
        crash the core repeats an attempt whose outcome it never recorded.
    :param resumed: ``True`` when this is such a repeat; a transport may skip
        its check for an earlier send when ``False``.
    :param delivery_ref: the same for every attempt of one delivery, and unique
        across installations (``<store identity>-<delivery id>``): what a partner
        deduplicates by where it cannot tell attempts apart (HTTP ``Idempotency-Key``).
    """

    delivery_id: int
    partner: str
    attempt: int
    attempt_ref: str
    message_id: str | None
    payload: bytes
    attachments: tuple[Attachment, ...] = ()
    event_date: datetime | None = None
    resumed: bool = False
    delivery_ref: str = ""


@dataclass(frozen=True, slots=True)
class SendResult(Travels):
    """What a successful ``send`` achieved.

    :param awaits_receipt: ``True`` when delivery is confirmed later by a
        receipt (state ``sent``); ``False`` when the send itself confirms it
        (state ``delivered``).
    :param recipient: whom the attempt was addressed to, in the terms its receipts
        use (sedex: the envelope ``recipientId``); stored with the attempt, so that
        a receipt naming another recipient does not settle it. ``None``: the
        transport's receipts are told apart by ``attempt_ref`` alone.
    """

    awaits_receipt: bool = True
    detail: str = ""
    recipient: str | None = None


class ReceiptOutcome(enum.StrEnum):
    """What a transport receipt means for the delivery it confirms."""

    DELIVERED = "delivered"
    WAIT = "wait"
    FAILED_TRANSIENT = "failed_transient"
    FAILED_PERMANENT = "failed_permanent"
    NEEDS_REVIEW = "needs_review"
    #: The transport already knew the attempt's reference (sedex 201: a second envelope
    #: with one messageId). Only the store knows whether the attempt was repeated: if it
    #: was (an unsure attempt, ``attempts.repeats``), its first copy arrived, and this
    #: proves delivery; if not, it is a failure like :attr:`FAILED_PERMANENT`.
    ALREADY_KNOWN = "already_known"


@dataclass(frozen=True, slots=True)
class Receipt(Travels):
    """A transport receipt, correlated by its content with the attempt it answers.

    :param attempt_ref: the ``attempt_ref`` of the :class:`OutboundItem`.
    :param code: the transport's status code, as text (sedex: ``"100"``).
    :param info: the transport's explanation, for the operator.
    :param alert: the operator should be told, whatever the outcome (sedex
        701: not collected yet, expires soon).
    :param recipient: whom the receipt says the attempt was for (sedex: its
        ``recipientId``). It answers the attempt ``attempt_ref`` only if that
        attempt was addressed to this recipient (:attr:`SendResult.recipient`);
        ``None``, or an attempt whose recipient is not known: ``attempt_ref`` alone decides.
    """

    attempt_ref: str
    outcome: ReceiptOutcome
    code: str
    info: str
    at: datetime
    raw: bytes = b""
    alert: bool = False
    recipient: str | None = None


class ReceiptSink(Protocol):
    """Where a transport reports receipts."""

    async def record(self, receipts: Sequence[Receipt]) -> list[bool]:
        """Durably record ``receipts``; ``True`` where one matched a delivery (its
        ``attempt_ref`` names one of our attempts, addressed to its ``recipient``).

        Returns after the commit: only then may the receipt file be removed.
        """
        ...


async def attempt(call: Awaitable[T], what: str = "a transport") -> T | Exception:
    """The call's result, or the exception it raised: a delivery error as it is, any other
    (a transport's bug) logged as ``what`` failing unexpectedly, so that nothing is lost."""
    try:
        return await call
    except DeliveryError as exc:
        return exc
    except Exception as exc:  # a transport bug must not lose the delivery: retry it
        log.exception("%s failed unexpectedly", what)
        return exc


async def send_side_by_side(send: Callable[[OutboundItem], Awaitable[SendResult]],
                            items: Sequence[OutboundItem], who: str) -> list[SendResult | Exception]:
    """``send`` each item at once (a transport's ``send_many``, which bounds how many run at a
    time itself): one result or error per item, in order. A bug met by one (an exception that
    is no :class:`~gateway.errors.DeliveryError`) is logged naming ``who`` and returned: the
    rest of the batch is not failed for it."""
    return list(await asyncio.gather(*(
        attempt(send(item), f"{who}: sending delivery {item.delivery_id}") for item in items)))
