"""Clients that hold connections open cannot take the daemon's file descriptors: a request's
headers must come in full within the idle timeout, and connections beyond the most the
server keeps are answered 503 and closed at once."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from gateway.config._http import HttpSettings, HttpTlsSettings
from gateway.http.server import HttpServer
from gateway.plugin_types import HttpRoute

PARTIAL = b"POST /ping HTTP/1.1\r\nHost: x\r\nX-Slow: "
REQUEST = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def _ping(_request: web.Request) -> web.Response:
    return web.Response(text="pong")


def server(**limits: float) -> HttpServer:
    return HttpServer(HttpSettings(listen="127.0.0.1:0"), [HttpRoute("GET", "/ping", _ping)],
                      shutdown_timeout=1.0, **limits)  # type: ignore[arg-type]


async def opened(http: HttpServer, first: bytes = PARTIAL
                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
    writer.write(first)
    await writer.drain()
    return reader, writer


async def test_headers_that_never_end_are_cut_off_after_the_idle_timeout() -> None:
    """A client sent the start of its headers and then a byte now and then (slowloris): the
    connection stayed open for an hour (aiohttp's keep-alive default), one descriptor each."""
    http = server(idle_timeout=0.5)
    await http.start()
    try:
        reader, writer = await opened(http)
        for _ in range(3):  # trickling in more does not keep it open
            await asyncio.sleep(0.2)
            writer.write(b"a")
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed by the server
        writer.close()
    finally:
        await http.stop()


async def test_connections_over_the_most_kept_are_answered_503_and_served_again_after(
        caplog: pytest.LogCaptureFixture) -> None:
    http = server(max_connections=3)
    await http.start()
    held = [await opened(http) for _ in range(3)]
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.http.server"):
            reader, _writer = await opened(http, REQUEST)
            answer = await asyncio.wait_for(reader.read(), timeout=5)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert b"Retry-After: 5\r\n" in answer and answer.endswith(
                b'{"error": "too many connections open, try again"}\r\n')
            for _reader, writer in held:
                writer.close()
                await writer.wait_closed()
            await asyncio.sleep(0.1)
            reader, _writer = await opened(http, REQUEST)
            answer = await asyncio.wait_for(reader.read(), timeout=5)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"pong"), answer
        on = f"HTTP server on 127.0.0.1:{http.port}"
        assert [r.getMessage() for r in caplog.records] == [
            f"{on}: 3 connections open, the most it keeps; more are answered 503 until some close",
            f"{on} takes connections again (1 answered 503)"]
    finally:
        for _reader, writer in held:
            writer.close()
        await http.stop()


async def test_tls_handshakes_under_way_count_among_the_connections_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Clients that open connections to the TLS port and never finish a handshake: asyncio
    handed a connection to the server only once its handshake was done, so that these were
    not counted and more were taken, each a descriptor until the handshake timed out."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    settings = HttpSettings(listen="127.0.0.1:0", tls=HttpTlsSettings(
        cert=tmp_path / "server.pem", key=tmp_path / "server.key"))
    http = HttpServer(settings, [HttpRoute("GET", "/ping", _ping)], shutdown_timeout=1.0,
                      max_connections=3, idle_timeout=1.0)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    await http.start()
    target = f"https://127.0.0.1:{http.port}/ping"
    held = [await opened(http, b"") for _ in range(3)]  # no ClientHello: handshakes pending
    try:
        async with aiohttp.ClientSession() as session:
            with caplog.at_level(logging.WARNING, logger="gateway.http.server"):
                with pytest.raises(aiohttp.ClientError):  # closed at once, without an answer
                    async with session.get(target, ssl=client) as response:
                        await response.read()
                await asyncio.sleep(1.5)  # the pending handshakes time out
                assert [await reader.read() for reader, _writer in held] == [b""] * 3
                async with session.get(target, ssl=client) as response:
                    assert (response.status, await response.text()) == (200, "pong")
        on = f"HTTP server on 127.0.0.1:{http.port}"
        assert [r.getMessage() for r in caplog.records] == [
            f"{on}: 3 connections open, the most it keeps; more are closed at once until some"
            " close", f"{on} takes connections again (1 closed at once)"]
    finally:
        for _reader, writer in held:
            writer.close()
        await http.stop()
