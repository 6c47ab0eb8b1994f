"""The REST transport against real aiohttp servers on 127.0.0.1, through the real daemon.

The partner server keeps what it stores by Idempotency-Key. It fails at
random, or stores a request and then drops the connection: every delivery
still ends delivered in the gateway's store, and the partner holds exactly
one copy of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import sqlite3
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from gateway.api import (
    Attachment,
    NormaliseContext,
    OutboundItem,
    PermanentError,
    PluginContext,
    TransientError,
)
from gateway.testing import Harness, drop, harness, sample_message, states, until
from plugins.rest.transport import RestOptions, RestTransport
from tests.flow import message, running, write_config
from tests.rest_servers import Partner, certificates, serve

FAST_RETRY = {"partners": {"partner": {"retry": {
    "initial": "20ms", "maximum": "100ms", "jitter": 0, "max_attempts": 60}}}}


def store_identity(gw: Harness) -> str:
    """The gateway database's identity (the first half of every delivery_ref)."""
    conn = sqlite3.connect(gw.directory / "gateway.db")
    try:
        return str(conn.execute("SELECT id FROM store_identity").fetchone()[0])
    finally:
        conn.close()


async def feed_and_settle(gw: Harness, count: int, timeout: float = 30.0) -> list[Any]:
    """Drop ``count`` distinct messages; wait until every delivery is settled."""
    for n in range(count):
        gw.feed(f"m{n:03d}.xml", sample_message(f"rest-{n:03d}", seed=n))
    return await gw.settled(count, timeout)


@pytest.mark.parametrize(("fail_rate", "drop_rate"), [(0.5, 0.0), (0.0, 0.5), (0.3, 0.3)])
async def test_each_delivery_reaches_the_partner_exactly_once(
        tmp_path: Path, fail_rate: float, drop_rate: float) -> None:
    partner = Partner(seed=7, fail_rate=fail_rate, drop_rate=drop_rate, retry_after="0")
    async with serve(partner.handle) as url, harness(
            tmp_path, transport="rest", transport_options={"url": url, "timeout": "5s"},
            settings=FAST_RETRY) as gw:
        deliveries = await feed_and_settle(gw, 30)
        identity = store_identity(gw)
    assert [d.state for d in deliveries] == ["delivered"] * 30
    # one stored copy per delivery, under the key the gateway made for it
    assert set(partner.stored) == {f"{identity}-{d.id}" for d in deliveries}
    assert len({body for body in partner.stored.values()}) == 30
    per_key = Counter(s.key for s in partner.seen)
    assert sum(per_key.values()) > 30  # retries happened, all with the delivery's own key
    assert max(d.attempts for d in deliveries) > 1
    assert {s.content_type for s in partner.seen} == {"application/xml"}


async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    partner = Partner()
    times: list[float] = []

    async def busy_once(request: web.Request) -> web.StreamResponse:
        times.append(asyncio.get_running_loop().time())
        if len(times) == 1:
            return web.Response(status=503, headers={"Retry-After": "1"}, text="maintenance")
        return await partner.handle(request)

    async with serve(busy_once) as url, harness(
            tmp_path, transport="rest", transport_options={"url": url},
            settings=FAST_RETRY) as gw:
        [delivery] = await feed_and_settle(gw, 1)
    assert delivery.state == "delivered" and delivery.attempts == 2
    assert times[1] - times[0] >= 0.95  # the partner's second, not the policy's 20 ms


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_a_refusal_is_a_dead_letter_with_the_reason(tmp_path: Path, status: int) -> None:
    partner = Partner(refuse=status, refuse_body="<error>messageId rest-000 is\n  malformed</error>")
    async with serve(partner.handle) as url, harness(
            tmp_path, transport="rest", transport_options={"url": url},
            settings=FAST_RETRY) as gw:
        [delivery] = await feed_and_settle(gw, 1)
        # events follow the commit the store's readers see first
        await gw.wait_for(lambda: "delivery.dead" in gw.event_kinds())
    assert delivery.state == "dead" and delivery.attempts == 1
    assert delivery.reason == (f"permanent error: HTTP {status}:"
                               " '<error>messageId rest-000 is malformed</error>'")


async def test_poison_messages_go_to_dead_letters_and_the_others_keep_flowing(
        tmp_path: Path) -> None:
    """FIELD.md "one bad message blocks its destination" (Mirth connect#4144, Benthos #415).

    Of one partner's messages, one is refused (422), one always gets a 500 and one
    makes the server hang past the timeout. Messages dropped while those are still
    being retried are delivered, each at its first attempt; the three end as dead
    letters with their reasons.
    """
    partner = Partner()
    poison = {b"rest-000": "refused", b"rest-001": "500", b"rest-002": "hang"}
    tried: dict[str, list[float]] = {what: [] for what in poison.values()}

    async def partly_poisoned(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        what = next((w for mid, w in poison.items() if mid in body), None)
        if what is None:
            return await partner.handle(request)
        tried[what].append(asyncio.get_running_loop().time())
        if what == "refused":
            return web.Response(status=422, text="schema violation")
        if what == "500":
            return web.Response(status=500, text="NullPointerException")
        await asyncio.sleep(10)  # until the gateway gives up waiting
        return web.Response()

    retry = {"partners": {"partner": {"retry": {
        "initial": "100ms", "maximum": "200ms", "jitter": 0, "max_attempts": 8}}}}
    async with serve(partly_poisoned) as url, harness(
            tmp_path, transport="rest", transport_options={"url": url, "timeout": "300ms"},
            settings=retry) as gw:
        for n in range(5):
            gw.feed(f"m{n:03d}.xml", sample_message(f"rest-{n:03d}", seed=n))
        await gw.wait_for(lambda: len(tried["500"]) >= 2 and len(tried["hang"]) >= 2)
        later = asyncio.get_running_loop().time()  # the clock Partner stamps requests with
        for n in range(5, 10):  # dropped while the poison is being retried
            gw.feed(f"m{n:03d}.xml", sample_message(f"rest-{n:03d}", seed=n))
        deliveries = await gw.settled(10)
        # events follow the commit the store's readers see first
        await gw.wait_for(lambda: gw.event_kinds().count("delivery.dead") == 3)
    by_id = {d.message_id: d for d in deliveries}
    good = [by_id[f"rest-{n:03d}"] for n in range(3, 10)]
    assert [(d.state, d.attempts) for d in good] == [("delivered", 1)] * 7
    assert len(partner.stored) == 7
    # the second wave went through while the hanging one was still being tried (its first
    # message before the last try, at least 6 x 400 ms later: not held behind it)
    second_wave = [s.at for s in partner.seen if s.at > later]
    assert len(second_wave) == 5
    assert min(second_wave) < max(tried["hang"])
    refused, failing, hanging = (by_id[f"rest-{n:03d}"] for n in range(3))
    assert (refused.state, refused.attempts) == ("dead", 1) and len(tried["refused"]) == 1
    assert refused.reason == "permanent error: HTTP 422: 'schema violation'"
    assert (failing.state, failing.attempts) == ("dead", 8) and len(tried["500"]) == 8
    assert "HTTP 500" in (failing.reason or "")
    assert (hanging.state, hanging.attempts) == ("dead", 8) and len(tried["hang"]) == 8
    assert "within the timeout" in (hanging.reason or "")


async def test_tls_with_a_client_certificate_and_a_token_file(tmp_path: Path) -> None:
    certs = certificates(tmp_path / "certs")
    partner = Partner()
    peers: list[object] = []

    async def checked(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peercert"))
        return await partner.handle(request)

    (tmp_path / "token").write_text("s3cret-token\n")
    options = {"url": "", "ca_file": str(certs.ca), "client_cert": str(certs.client_cert),
               "client_key": str(certs.client_key), "token_file": str(tmp_path / "token"),
               "headers": {"X-Commune": "261"}}
    async with serve(checked, certs.server) as url:
        options["url"] = url
        async with harness(tmp_path / "gw", transport="rest", transport_options=options,
                           settings=FAST_RETRY) as gw:
            deliveries = await feed_and_settle(gw, 3)
    assert [d.state for d in deliveries] == ["delivered"] * 3
    assert len(partner.stored) == 3
    assert {s.authorization for s in partner.seen} == {"Bearer s3cret-token"}
    assert peers and all(peer for peer in peers)  # each connection showed our certificate


# -- the transport alone, for what the daemon's flow does not show --------------------------


def transport(tmp_path: Path, **options: Any) -> RestTransport:
    context = PluginContext("canton", tmp_path, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    return RestTransport(RestOptions.model_validate(options), context)


def item(**changes: Any) -> OutboundItem:
    fields: dict[str, Any] = dict(delivery_id=4, partner="canton", attempt=1, attempt_ref="a-1",
                                  message_id="m-1", payload=b"<m/>", delivery_ref="store-4")
    return OutboundItem(**{**fields, **changes})


async def test_attachments_go_as_the_sedex_zip(tmp_path: Path) -> None:
    partner = Partner()
    async with serve(partner.handle) as url:
        rest = transport(tmp_path, url=url, username="gw", password="pw")
        result = await rest.send(item(attachments=(Attachment("permit.pdf", b"%PDF-1.4"),)))
        await _close(rest)
    assert not result.awaits_receipt and result.detail == "HTTP 201 (Idempotency-Key store-4)"
    [seen] = partner.seen
    assert seen.content_type == "application/zip" and seen.key == "store-4"
    assert seen.authorization == "Basic Z3c6cHc="
    with zipfile.ZipFile(io.BytesIO(seen.body)) as zf:
        assert zf.namelist() == ["message.xml", "files/permit.pdf"]
        assert zf.read("message.xml") == b"<m/>"


async def test_one_connection_serves_many_sends(tmp_path: Path) -> None:
    partner = Partner()
    ports: set[int] = set()

    async def counted(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        ports.add(request.transport.get_extra_info("peername")[1])
        return await partner.handle(request)

    async with serve(counted) as url:
        rest = transport(tmp_path, url=url, concurrency=2)
        results = await rest.send_many([item(delivery_ref=f"k-{n}") for n in range(20)])
        await _close(rest)
    assert all(not isinstance(r, Exception) for r in results) and len(partner.stored) == 20
    assert len(ports) <= 2


@pytest.mark.parametrize(("who", "said"), [
    ("no client certificate", "refused client certificate shows: check client_cert"),
    ("another CA", "the server's certificate is not trusted"),
])
async def test_a_failed_tls_handshake_says_which_side_refused(tmp_path: Path, who: str,
                                                               said: str) -> None:
    """Not just "Connection reset by peer": the operator learns which setting to check."""
    certs = certificates(tmp_path / "certs")
    if who == "another CA":
        trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
        options = {"ca_file": str(tmp_path / "other-ca.pem"),
                   "client_cert": str(certs.client_cert), "client_key": str(certs.client_key)}
    else:
        options = {"ca_file": str(certs.ca)}
    partner = Partner()
    async with serve(partner.handle, certs.server) as url:
        rest = transport(tmp_path, url=url, **options)
        with pytest.raises(TransientError, match=re.escape(said)):
            await rest.send(item())
        await _close(rest)
    assert partner.seen == []


async def test_a_server_that_hangs_hits_the_timeout(tmp_path: Path) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(10)
        return web.Response()

    async with serve(hang) as url:
        rest = transport(tmp_path, url=url, timeout="200ms")
        with pytest.raises(TransientError, match=r"no answer from http://127\.0\.0\.1:\d+/messages within"):
            await rest.send(item())
        await _close(rest)


async def test_nobody_listening_is_transient(tmp_path: Path) -> None:
    async with serve(Partner().handle) as url:
        pass  # the port is free again
    rest = transport(tmp_path, url=url)
    with pytest.raises(TransientError, match="cannot reach"):
        await rest.send(item())
    await _close(rest)


@pytest.mark.parametrize(("status", "error"), [
    (408, TransientError), (429, TransientError), (500, TransientError), (502, TransientError),
    (503, TransientError), (301, PermanentError), (401, PermanentError), (413, PermanentError)])
async def test_status_classes(tmp_path: Path, status: int, error: type[Exception]) -> None:
    async with serve(Partner(refuse=status).handle) as url:
        rest = transport(tmp_path, url=url)
        with pytest.raises(error, match=f"HTTP {status}"):
            await rest.send(item())
        await _close(rest)


async def test_a_problem_answer_is_said_by_its_title_and_detail(tmp_path: Path) -> None:
    """RFC 9457: the detail a case worker needs comes after a long type URL; it is not cut."""
    problem = {"type": "https://api.migration.example.ch/problems/person-unknown-in-register",
               "title": "Person unknown", "status": 400,
               "detail": "ZEMIS has no person 33850216.9 in canton ZH (municipality 230)",
               "instance": "/ech0223/messages/8f0c1a"}

    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response(problem, status=400, content_type="application/problem+json")

    async with serve(refuse) as url:
        rest = transport(tmp_path, url=url)
        with pytest.raises(PermanentError) as refused:
            await rest.send(item())
        await _close(rest)
    assert str(refused.value) == ("HTTP 400: 'Person unknown: ZEMIS has no person 33850216.9"
                                  " in canton ZH (municipality 230)'")


@pytest.mark.parametrize(("options", "problem"), [
    ({"url": "ftp://x/"}, "http:// or https://"),
    ({"url": "https://x/", "token": "t", "username": "u", "password": "p"}, "either token"),
    ({"url": "https://x/", "username": "u"}, "go together"),
    ({"url": "http://x/", "ca_file": __file__}, "need an https:// url"),
    ({"url": "https://x/", "headers": {"authorization": "x"}}, "sets authorization itself"),
    ({"url": "https://x/", "ca_file": "/nonexistent.pem"}, "no file"),
])
def test_options_that_cannot_work_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RestOptions.model_validate(options)


async def _close(rest: RestTransport) -> None:
    """End the transport as the daemon does: cancel its ``run``."""
    task = asyncio.create_task(rest.run(None, None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_partner_that_hangs_holds_up_no_other_partner(tmp_path: Path) -> None:
    # one message for two partners: the canton's REST endpoint takes it and does not answer
    partner = Partner(gate=asyncio.Event())
    async with serve(partner.handle) as url:
        config = write_config(tmp_path, f'[partners.canton]\ntransport = "rest"\n'
                              f'[partners.canton.rest]\nurl = "{url}"\ntimeout = "60s"\n'
                              '[partners.archive]\ntransport = "folder"\n'
                              '[partners.archive.folder]\npath = "archive"\nsync = false\n')
        config.write_text(config.read_text().replace('route_to = ["canton"]',
                                                     'route_to = ["canton", "archive"]'))
        (tmp_path / "archive").mkdir()
        db = tmp_path / "gateway.db"

        def state_of(name: str) -> list[tuple[Any, ...]]:
            return states(db, "SELECT state FROM deliveries WHERE partner = ?", (name,))

        async with running(config):
            drop(tmp_path / "in", "m0.xml", message(documents=False))
            # the archive's copy is written and recorded while the canton still hangs
            await until(lambda: state_of("archive") == [("delivered",)], timeout=20)
            assert len(partner.seen) == 1 and state_of("canton") == [("sending",)]
            partner.gate.set()
            await until(lambda: state_of("canton") == [("delivered",)], timeout=20)
    assert len(list((tmp_path / "archive").glob("*.xml"))) == 1


async def test_an_answer_that_never_ends_to_a_message_taken_is_a_success(tmp_path: Path) -> None:
    """A partner that takes the message and answers 200 with a body that never ends (a
    misbehaving proxy): the delivery is sent, once. Reading the whole answer ran into the
    timeout, and the retry sent the message again."""
    partner = Partner()

    async def endless(request: web.Request) -> web.StreamResponse:
        await partner.handle(request)  # stored
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:
                await response.write(b" " * 65536)
                await asyncio.sleep(0.001)
        return response

    async with serve(endless) as url:
        rest = transport(tmp_path, url=url, timeout="2s")
        result = await asyncio.wait_for(rest.send(item(delivery_ref="k-1")), 10)
        await _close(rest)
    assert result.detail == "HTTP 200 (Idempotency-Key k-1)"
    assert len(partner.stored) == 1
