"""The REST transport: POSTs each message to the partner's URL.

The body is the eCH-0223 XML (``application/xml``), or with attachments the
zip the sedex transport sends too (``application/zip``: the message as
``message.xml``, the files under ``files/``). Every attempt of one delivery
carries the same ``Idempotency-Key`` (:attr:`OutboundItem.delivery_ref`), so
a server that stored a request whose answer we never saw can recognise the
repeat. A 2xx answer is delivered; 408, 429, 5xx, timeouts and broken
connections are transient, with the server's ``Retry-After`` carried on the
error; any other answer is permanent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import Field

from gateway.api import (
    DeliveryError,
    Intake,
    OutboundItem,
    PermanentError,
    PluginContext,
    ReceiptSink,
    SendResult,
    TransientError,
    build_zip,
    read_at_most,
    retry_after_seconds,
    send_side_by_side,
)
from plugins.rest._client import ClientOptions, body_start, open_session, where

log = logging.getLogger(__name__)

#: Name of the eCH-0223 message inside a zip body, as in the sedex transport's zips.
ZIP_MESSAGE_NAME = "message.xml"
#: Answers that may succeed when tried again later (besides every 5xx).
TRANSIENT_STATUS = frozenset({408, 429})
#: The most bytes of a 2xx answer read; a longer one is cut off and its connection closed.
ANSWER_READ = 1 << 20


class RestOptions(ClientOptions):
    """The keys of ``[partners.<name>.rest]``."""

    concurrency: int = Field(
        8, ge=1, le=256, description="requests in flight at once to this partner (one"
        " connection each, kept open for the next)")


class RestTransport:
    """POSTs messages to one partner's REST endpoint (``context.name``)."""

    def __init__(self, options: RestOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        self._where = where(options.url)
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(options.concurrency)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = open_session(self.options, self.options.concurrency)
        return self._session

    async def send(self, item: OutboundItem) -> SendResult:
        """POST one attempt.

        :raises TransientError: no answer, or 408, 429, 5xx (with ``retry_after``).
        :raises PermanentError: any other answer that is not 2xx, or a body
            that cannot be built.
        """
        async with self._slots:
            return await self._post(item)

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | Exception]:
        """POST a batch, ``concurrency`` requests at a time; one result or error per item."""
        return await send_side_by_side(self.send, items, f"rest partner {self.name}")

    async def _post(self, item: OutboundItem) -> SendResult:
        key = item.delivery_ref or item.attempt_ref
        body, content_type = _body(item)
        headers = {"Content-Type": content_type, "Idempotency-Key": key}
        try:
            async with self._open().post(self.options.url, data=body, headers=headers,
                                         allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    # all of it, so that the connection goes back to the pool; an answer
                    # longer than any acknowledgement is cut off (the message is taken)
                    if await read_at_most(response, ANSWER_READ) is None:
                        response.close()
                    return SendResult(awaits_receipt=False,
                                      detail=f"HTTP {response.status} (Idempotency-Key {key})")
                raise _refusal(response.status, response.headers, await body_start(response))
        except TimeoutError as exc:
            raise TransientError(f"no answer from {self._where} within the timeout"
                                 f" ({self.options.timeout:g}s)") from exc
        except aiohttp.ClientError as exc:
            secure = self._where.startswith("https:")
            raise TransientError(f"cannot reach {self._where}: {_describe(exc, secure)}") from exc

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Nothing runs in the background; the session is closed when cancelled."""
        try:
            await asyncio.Event().wait()
        finally:
            if self._session is not None:
                await self._session.close()


def _body(item: OutboundItem) -> tuple[bytes, str]:
    """The request body and its content type."""
    if not item.attachments:
        return item.payload, "application/xml"
    try:
        return build_zip(ZIP_MESSAGE_NAME, item.payload, item.attachments), "application/zip"
    except ValueError as exc:
        raise PermanentError(f"cannot build the zip of this message: {exc}") from exc


def _refusal(status: int, headers: CIMultiDictProxy[str], body: str) -> DeliveryError:
    """The error an answer other than 2xx means."""
    said = f"HTTP {status}" + (f": {body}" if body else "")
    if status in TRANSIENT_STATUS or 500 <= status < 600:
        wait = retry_after_seconds(headers.get("Retry-After"))
        return TransientError(said + (f" (Retry-After {wait:g}s)" if wait is not None else ""),
                              retry_after=wait)
    if 300 <= status < 400:
        return PermanentError(f"{said} (redirects are not followed: point url at"
                              f" {headers.get('Location', 'the new address')})")
    return PermanentError(said)


def _describe(exc: aiohttp.ClientError, secure: bool) -> str:
    """An aiohttp error in a few words (its class name where it says nothing); of a TLS
    handshake that failed, which side refused and the option to check."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        why = getattr(cause, "verify_message", None) or str(cause)
        return f"the server's certificate is not trusted ({why}); check ca_file"
    if secure and isinstance(exc, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError) and (
            not isinstance(exc, aiohttp.ClientConnectorError)):
        return (f"{text}: the server closed the connection without answering; with TLS 1.3 that"
                " is how a refused client certificate shows: check client_cert")
    return text
