"""The ``registry-rest`` transport: the canton's messages delivered into the registry.

Configured on the partner with ``role = "registry"``: the way back routes
each message from the canton, matched to its resident, to that partner as a
delivery of its own. ``send`` POSTs it to the registry's ``inbox`` (a batch,
``send_many``, several at a time); the gateway's retries, dead letters and
replay do the rest, so a registry that is down keeps its messages queued
until it answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.api import (
    Intake,
    OutboundItem,
    PluginContext,
    ReceiptSink,
    SendResult,
    send_side_by_side,
)
from plugins.registry_rest.client import RegistryClient
from plugins.registry_rest.options import RegistryOptions

#: Deliveries in flight at once to one registry, each on a connection of its own (kept open).
CONNECTIONS = 4


class RegistryTransport:
    """Delivers to one registry (``context.name``); nothing runs in the background."""

    def __init__(self, options: RegistryOptions, context: PluginContext) -> None:
        self.name = context.name
        self.client = RegistryClient(options, context.name, connections=CONNECTIONS)
        # a delivery waits for a connection here, not within its own timeout
        self._slots = asyncio.Semaphore(CONNECTIONS)

    async def send(self, item: OutboundItem) -> SendResult:
        """Deliver one attempt (errors: see :meth:`RegistryClient.deliver`)."""
        async with self._slots:
            return await self.client.deliver(item)

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | Exception]:
        """Deliver a batch, :data:`CONNECTIONS` at a time; one result or error per item."""
        return await send_side_by_side(self.send, items, f"registry {self.name}")

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """No receipts: the answer to the POST is the receipt. Closes the session when cancelled."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.client.close()
