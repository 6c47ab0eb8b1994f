"""The SOAP transport: one call of the configured operation per delivery attempt.

A call that returns is a delivery (state ``delivered``: the answer is the
receipt). Errors are classified by :mod:`plugins.soap.faults`; the transport
never sleeps or retries itself. A batch's calls run side by side, as many at
once as the client's pool has threads (``concurrency``): one by one, a slow
service would hold every delivery of the batch for the sum of its answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from zeep.helpers import serialize_object

from gateway.api import (
    ConfigError,
    InputRejected,
    Intake,
    OutboundItem,
    PermanentError,
    PluginContext,
    ReceiptSink,
    SendResult,
    send_side_by_side,
)
from plugins.soap.arguments import build, plan
from plugins.soap.client import SoapClient, operation_of
from plugins.soap.faults import classify
from plugins.soap.options import SoapOptions

log = logging.getLogger(__name__)

#: The most characters of the service's answer kept in the journal.
DETAIL_CHARS = 200


def checked_plan(client: SoapClient, options: SoapOptions, key: str) -> list[Any]:
    """The argument plan of the transport's operation, or a ConfigError naming ``key``."""
    try:
        operation = operation_of(client.document, options, options.operation)
        return plan(operation.input.body, options.arguments, options.operation)
    except ValueError as exc:
        raise ConfigError([(str(options.wsdl), f"{key}.arguments", str(exc))]) from None


class SoapTransport:
    """Delivers each attempt by calling ``operation`` of the partner's SOAP service."""

    def __init__(self, options: SoapOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        key = f"partners.{context.name}.soap"
        self.client = SoapClient.start(options, context.name, key)
        self.plan = checked_plan(self.client, options, key)
        self.max_bytes = context.normalise.max_bytes
        self.classify = partial(classify, permanent=options.permanent_faults,
                                transient=options.transient_faults)

    async def send(self, item: OutboundItem) -> SendResult:
        """Call the operation with the item's fields as the arguments map them.

        :raises TransientError: a Server fault, HTTP 408/429/5xx, no connection, a timeout.
        :raises PermanentError: a Client fault, another 4xx, a message the operation cannot take.
        """
        values = {name: getattr(item, name) for name in
                  ("payload", "message_id", "attempt_ref", "delivery_id", "attempt", "partner",
                   "event_date")}
        try:
            kwargs = build(self.plan, values, self.max_bytes)
        except (InputRejected, UnicodeDecodeError) as exc:
            raise PermanentError(f"the message cannot be passed to {self.options.operation}:"
                                 f" {exc}") from exc
        answer = await self.client.call(self.options.operation, kwargs, self.classify)
        return SendResult(awaits_receipt=False, detail=_detail(self.options.operation, answer))

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | Exception]:
        """Call the operation for each item of a batch, ``concurrency`` calls at a time;
        one result or error per item."""
        return await send_side_by_side(self.send, items, f"soap partner {self.name}")

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Nothing to do in the background: the answer of each call is its receipt."""
        try:
            await asyncio.Event().wait()
        finally:
            self.client.close()


def _detail(operation: str, answer: Any) -> str:
    """``SubmitMessage: {'receiptId': 'r-1'}``, shortened for the journal."""
    text = f"{operation}: {serialize_object(answer, dict)!r}"
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"
