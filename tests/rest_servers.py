"""Real aiohttp servers on 127.0.0.1 for the REST tests: a partner that takes messages, and TLS.

:class:`Partner` keeps what it stores by ``Idempotency-Key`` (a repeated key
gets the first answer, nothing is stored twice) and misbehaves as told:
fails at random (seeded) before storing, or drops the connection after
storing, so the client never hears that it succeeded.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server saw it."""

    at: float
    key: str | None
    content_type: str | None
    authorization: str | None
    body: bytes


@dataclass
class Partner:
    """A partner's REST endpoint.

    :param fail_rate: share of requests answered 500, 503 or 429 (with
        ``Retry-After: retry_after``) before anything is stored.
    :param drop_rate: share of requests stored, then answered by closing the connection.
    :param refuse: answer every request with this status (and ``refuse_body``).
    """

    seed: int = 0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    retry_after: str = "1"
    refuse: int | None = None
    refuse_body: str = ""
    #: What was stored, by Idempotency-Key, in the order first stored.
    stored: dict[str, bytes] = field(default_factory=dict)
    #: Every request, stored or not.
    seen: list[Seen] = field(default_factory=list)
    #: Set to hold every answer until it is set.
    gate: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        self.seen.append(Seen(asyncio.get_running_loop().time(), key,
                              request.headers.get("Content-Type"),
                              request.headers.get("Authorization"), body))
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse is not None:
            return web.Response(status=self.refuse, text=self.refuse_body)
        if key is None:
            return web.Response(status=400, text="Idempotency-Key missing")
        if key in self.stored:  # the first answer again, nothing stored twice
            return web.json_response({"stored": key}, status=201)
        roll = self._random.random()
        if roll < self.fail_rate:
            status = self._random.choice([500, 503, 429])
            headers = {"Retry-After": self.retry_after} if status != 500 else {}
            return web.Response(status=status, headers=headers, text="try later")
        self.stored[key] = body
        if roll < self.fail_rate + self.drop_rate:
            assert request.transport is not None
            request.transport.close()  # stored, but the client never hears it
        return web.json_response({"stored": key}, status=201)


@asynccontextmanager
async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None,
                path: str = "/messages", method: str = "POST") -> AsyncIterator[str]:
    """Serve ``handler`` at ``path`` on 127.0.0.1 (a free port); yields the URL."""
    app = web.Application()
    app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield f"{scheme}://{host}:{port}{path}"
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Certificates:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, as files."""

    ca: Path
    client_cert: Path
    client_key: Path
    server: ssl.SSLContext


def certificates(folder: Path) -> Certificates:
    """Make the CA and certificates; the server context asks for a client certificate."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca.configure_trust(server)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("gateway@example.ch")
    folder.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client.private_key_pem.write_to_path(str(folder / "client.key"))
    return Certificates(folder / "ca.pem", folder / "client.pem", folder / "client.key", server)
