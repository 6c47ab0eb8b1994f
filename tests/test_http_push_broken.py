"""A push whose body cannot be read (a ``Content-Encoding`` it does not have, broken chunks,
a sender gone mid-body) is answered 400 where an answer can still be given, stores
nothing, and logs no traceback: it was a 500 with an ERROR traceback per request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from tests.flow import message, running, states
from tests.pushing import TOKEN, push_gateway

HEAD = ("POST /sources/push/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer"
        f" {TOKEN}\r\n").encode()


async def exchange(port: int, request: bytes, *, hang_up: bool = False) -> bytes:
    """Send ``request`` raw; the answer (nothing when ``hang_up``: the sender goes away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    if hang_up:
        await asyncio.sleep(0.2)  # the server is reading the body by now
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        return b""
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


async def test_a_body_that_cannot_be_decoded_is_400_and_nothing_is_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = push_gateway(tmp_path)
    with caplog.at_level(logging.WARNING):
        async with running(config) as gw:
            assert gw.http is not None
            answer = await exchange(gw.http.port, HEAD + b"Content-Encoding: gzip\r\n"
                                    b"Content-Length: 10\r\nConnection: close\r\n\r\nnot gzip!!")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert orjson.loads(body)["error"] == (
        "the body could not be read (400, message: Can not decode content-encoding: gzip):"
        " nothing was stored; send it again")
    assert states(tmp_path / "gateway.db", "SELECT count(*) FROM messages") == [(0,)]
    assert_no_traceback(caplog)


@pytest.mark.parametrize("request_", [
    HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n<a/>!\r\nZZ\r\n",
    b"POST /sources/push/messages HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
], ids=["broken chunks", "header too long, no token"])
async def test_a_broken_request_is_400_and_one_warning_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, request_: bytes) -> None:
    """aiohttp answers these itself; it logged each at ERROR with a traceback, and anyone
    who reaches the port can send them."""
    config = push_gateway(tmp_path)
    with caplog.at_level(logging.WARNING):
        async with running(config) as gw:
            assert gw.http is not None
            for _ in range(3):
                answer = await exchange(gw.http.port, request_)
                assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n"), answer
    assert states(tmp_path / "gateway.db", "SELECT count(*) FROM messages") == [(0,)]
    assert_no_traceback(caplog)
    [line] = [r.getMessage() for r in caplog.records if r.name == "gateway.http.server"
              and "broke" in r.getMessage()]
    assert line.startswith("HTTP server: a request its client broke was refused: 400,"), line
    assert line.endswith(" (1 such since the last such line)"), line


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [(r.getMessage(), r.exc_info) for r in caplog.records
            if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_a_sender_gone_mid_body_leaves_nothing_stored_and_no_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = push_gateway(tmp_path)
    data = message("cut-short")
    with caplog.at_level(logging.WARNING):
        async with running(config) as gw:
            assert gw.http is not None
            await exchange(gw.http.port, HEAD + f"Content-Length: {len(data)}\r\n\r\n".encode()
                           + data[:100], hang_up=True)
    assert states(tmp_path / "gateway.db", "SELECT count(*) FROM messages") == [(0,)]
    assert_no_traceback(caplog)


async def _trickled(port: int, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send ``head`` at once, then ``body`` a byte every 50 ms; the answer and the seconds
    it took to come."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def trickle() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    started = asyncio.get_running_loop().time()
    sending = asyncio.create_task(trickle())
    try:  # the answer, not the connection's end: aiohttp reads what still comes for 10 s
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=20)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answer = head + await reader.readexactly(length)
    finally:
        sending.cancel()
        writer.close()
    return answer, asyncio.get_running_loop().time() - started


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_trickled_in_is_408_in_time_and_nothing_is_stored(
        tmp_path: Path, framing: str) -> None:
    """A sender with a valid token sent a byte now and then: the body was waited for as long
    as it kept coming, its connection and buffer held. It has ``body_timeout`` plus a second
    per 16 KiB (declared, else the source's ``max_bytes``)."""
    config = push_gateway(tmp_path, push='body_timeout = "0.5s"\nmax_bytes = "8KiB"')
    data = message("trickled")
    if framing == "chunked":
        head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
        allowed = 0.5 + 8 / 16
    else:
        head = HEAD + f"Content-Length: {len(data)}\r\n\r\n".encode()
        body, allowed = data, 0.5 + len(data) / (16 << 10)
    async with running(config) as gw:
        assert gw.http is not None
        answer, took = await _trickled(gw.http.port, head, body)
    head_, _, json_ = answer.partition(b"\r\n\r\n")
    assert head_.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert orjson.loads(json_)["error"] == (
        f"the body did not come in full within {allowed:g} s (at least 16 KiB/s): nothing was"
        " stored; send it again")
    assert allowed <= took < allowed + 2
    assert states(tmp_path / "gateway.db", "SELECT count(*) FROM messages") == [(0,)]
