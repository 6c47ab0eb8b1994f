"""The ``registry-rest`` transport: the canton's messages delivered into the registry.

Configured on the partner with ``role = "registry"``: the way back routes
each message from the canton, matched to its resident, to that partner as a
delivery of its own. ``send`` POSTs it to the registry's ``inbox``; the
gateway's retries, dead letters and replay do the rest, so a registry that
is down keeps its messages queued until it answers again.
"""

from __future__ import annotations

import asyncio

from gateway.api import Intake, OutboundItem, PluginContext, ReceiptSink, SendResult
from plugins.registry_rest.client import RegistryClient
from plugins.registry_rest.options import RegistryOptions


class RegistryTransport:
    """Delivers to one registry (``context.name``); nothing runs in the background."""

    def __init__(self, options: RegistryOptions, context: PluginContext) -> None:
        self.name = context.name
        self.client = RegistryClient(options, context.name)
        options.ssl_context()  # a certificate that cannot be read stops the start, not a send

    async def send(self, item: OutboundItem) -> SendResult:
        """Deliver one attempt (errors: see :meth:`RegistryClient.deliver`)."""
        return await self.client.deliver(item)

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """No receipts: the answer to the POST is the receipt. Closes the session when cancelled."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.client.close()
