"""The REST polling source against a real aiohttp server on 127.0.0.1, through the real daemon.

The server is an outbox with pages by cursor. The gateway submits each page,
then writes the cursor; it resumes from it after a restart, and a stop between
the two only repeats inputs, which the store keeps as duplicates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.api import NormaliseContext, PluginContext, build_zip
from gateway.plugins import get_plugin_manager
from gateway.testing import Harness, harness, sample_message
from plugins.rest.source import RestSource, RestSourceOptions
from tests.flow import drop, message, running, states, until
from tests.mounts import require_fuse, run_isolated, unanswering
from tests.polling import messages_of, run_until
from tests.rest_servers import certificates, serve
from tests.stubs import StubIntake
from tests.test_sedex_e2e import cli, gateway_dir

MESSAGES = [sample_message(f"polled-{n}", seed=n) for n in range(5)]


def entry(n: int) -> dict[str, str]:
    return {"id": f"m-{n}", "content_type": "application/xml", "body": MESSAGES[n].decode()}


@dataclass
class Outbox:
    """Pages by cursor: None → m-0..m-2 (more), c1 → m-3, m-4, c2 → nothing new."""

    pages: dict[str | None, dict[str, Any]] = field(default_factory=lambda: {
        None: {"messages": [entry(0), entry(1), entry(2)], "cursor": "c1", "more": True},
        "c1": {"messages": [entry(3), entry(4)], "cursor": "c2"},
        "c2": {"messages": [], "cursor": "c2"},
    })
    #: The cursor of every poll, in order.
    polls: list[str | None] = field(default_factory=list)
    #: Every other poll fails, this many times: 503 (quoting a VN), not JSON, not a page.
    failures: int = 0
    token: str | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401)
        cursor = request.query.get("cursor")
        self.polls.append(cursor)
        n = len(self.polls) - 1
        if n % 2 == 0 and n // 2 < self.failures:
            return [
                web.Response(status=503, text="busy, ask 756.1234.5678.97 later"),
                web.Response(text="{not json", content_type="application/json"),
                web.Response(text='{"messages": 3}', content_type="application/json"),
            ][n // 2 % 3]
        return web.json_response(self.pages[cursor])


def options(url: str, **more: Any) -> dict[str, Any]:
    return {"url": url, "interval": "50ms", **more}


def saved_cursor(gw_dir: Path) -> str | None:
    path = gw_dir / "data" / "rest" / "drop.cursor"
    return json.loads(path.read_bytes())["cursor"] if path.exists() else None


def by_state(gw: Harness) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in gw.messages():
        counts[m.state] = counts.get(m.state, 0) + 1
    return counts


SETTINGS = {"gateway": {"data_dir": "data"}}


async def test_pages_are_taken_and_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    outbox = Outbox()
    async with serve(outbox.handle, method="GET") as url:
        async with harness(tmp_path, source="rest", source_options=options(url),
                           settings=SETTINGS) as gw:
            await gw.settled(5)
            await gw.wait_for(lambda: saved_cursor(tmp_path) == "c2")
            sent = sorted(c.message_id or "" for c in gw.collected)
        assert outbox.polls[:2] == [None, "c1"]  # "more" polled the next page at once
        outbox.polls.clear()
        async with harness(tmp_path, source="rest", source_options=options(url),
                           settings=SETTINGS) as gw:
            await gw.wait_for(lambda: len(outbox.polls) >= 2)
            assert [m.state for m in gw.messages()] == ["routed"] * 5  # nothing taken twice
    assert set(outbox.polls) == {"c2"}  # resumed where it stopped
    assert sorted(m.ref for m in gw.messages()) == [f"m-{n}" for n in range(5)]
    assert sent == [f"polled-{n}" for n in range(5)]


async def test_a_stop_between_submit_and_cursor_only_repeats_inputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = Outbox()
    stopped = asyncio.Event()

    async def never(self: RestSource, cursor: str) -> None:  # the gateway stops here
        stopped.set()
        await asyncio.Event().wait()

    async with serve(outbox.handle, method="GET") as url:
        with monkeypatch.context() as patch:
            patch.setattr(RestSource, "save_cursor", never)
            async with harness(tmp_path, source="rest", source_options=options(url),
                               settings=SETTINGS) as gw:
                await asyncio.wait_for(stopped.wait(), 10)
                await gw.settled(3)
        assert saved_cursor(tmp_path) is None
        async with harness(tmp_path, source="rest", source_options=options(url),
                           settings=SETTINGS) as gw:
            await gw.settled(5)
            await gw.wait_for(lambda: saved_cursor(tmp_path) == "c2")
            await gw.wait_for(lambda: by_state(gw) == {"routed": 5, "duplicate": 3})
        deliveries = gw.deliveries()
    assert outbox.polls.count(None) == 2  # the first page was fetched again
    assert len(deliveries) == 5 and {d.state for d in deliveries} == {"delivered"}
    assert "message.duplicate" in gw.event_kinds()


async def test_a_failing_server_is_polled_again_and_loses_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(failures=3)
    async with serve(outbox.handle, method="GET") as url:
        with caplog.at_level(logging.INFO):
            async with harness(tmp_path, source="rest", source_options=options(url),
                               settings=SETTINGS) as gw:
                await gw.settled(5, timeout=20)
                await gw.wait_for(lambda: len(outbox.polls) >= 6)
    assert [m.state for m in gw.messages()] == ["routed"] * 5
    problems = [r.getMessage() for r in caplog.records if r.name == "plugins.rest.source"
                and r.levelno >= logging.ERROR]
    assert len(problems) == 3 and all("polling http://127.0.0.1" in p for p in problems)
    # what the server wrote may name anybody: the log shows only that it said something
    assert "HTTP 503: '…'" in problems[0] and "not JSON" in problems[1]
    assert 'list "messages"' in problems[2]
    assert outbox.polls[:6] == [None, None, "c1", "c1", "c2", "c2"]  # cursor kept on failure
    assert not any("756.1234.5678.97" in r.getMessage() for r in caplog.records)


#: ``max_response`` of the oversized-answer test: the outbox's pages (15 kB at most) fit.
MAX_RESPONSE = 20_000


@dataclass
class OnceTooLarge(Outbox):
    """Answers the first poll with a page larger than ``MAX_RESPONSE``, then as :class:`Outbox`."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.polls:
            return await super().handle(request)
        self.polls.append(request.query.get("cursor"))
        padded = {"id": "big-0", "body": MESSAGES[0].decode() + " " * (2 * MAX_RESPONSE)}
        return web.json_response({"messages": [padded, entry(1)], "cursor": "big", "more": True})


async def test_an_answer_larger_than_max_response_is_refused_and_the_next_poll_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The oversized answer is refused whole, with the limit named: nothing of it is stored,
    the cursor stays, and the page polled again (smaller now) is taken."""
    outbox = OnceTooLarge()
    async with serve(outbox.handle, method="GET") as url:
        with caplog.at_level(logging.INFO):
            async with harness(tmp_path, source="rest", settings=SETTINGS,
                               source_options=options(url, max_response=MAX_RESPONSE)) as gw:
                await gw.settled(5)
                await gw.wait_for(lambda: saved_cursor(tmp_path) == "c2")
                stored = sorted((m.ref, m.state) for m in gw.messages())
    problems = [(r.levelname, r.getMessage()) for r in caplog.records
                if r.name == "plugins.rest.source" and r.levelno >= logging.WARNING]
    assert problems == [
        ("ERROR", f"rest source drop: polling {url} failed: the answer is larger than"
                  f" [sources.drop] max_response ({MAX_RESPONSE} bytes)"),
        ("WARNING", f"rest source drop: polling {url} works again"),
    ]
    assert outbox.polls[:3] == [None, None, "c1"]  # the cursor did not move past the refused page
    assert "big" not in outbox.polls
    assert stored == [(f"m-{n}", "routed") for n in range(5)]  # nothing of "big-0" stored


async def test_a_page_larger_than_what_arrives_at_once_is_read_whole(tmp_path: Path) -> None:
    """A page of 300 kB (one message with trailing whitespace) arrives in many chunks: it is
    read to its end, not cut at what the first read found buffered."""
    big = {"id": "big-0", "content_type": "application/xml",
           "body": MESSAGES[0].decode() + " " * 300_000}
    outbox = Outbox(pages={None: {"messages": [big], "cursor": "c1"},
                           "c1": {"messages": [], "cursor": "c1"}})
    async with serve(outbox.handle, method="GET") as url, harness(
            tmp_path, source="rest", source_options=options(url), settings=SETTINGS) as gw:
        await gw.settled(1)
        await gw.wait_for(lambda: saved_cursor(tmp_path) == "c1")
        [stored] = gw.messages()
    assert (stored.ref, stored.state) == ("big-0", "routed")


async def test_a_broken_message_is_quarantined_and_the_rest_goes_on(tmp_path: Path) -> None:
    zipped = build_zip("message.xml", MESSAGES[1], [])
    outbox = Outbox(pages={
        None: {"messages": [
            entry(0),
            {"id": "z-1", "content_type": "application/zip", "encoding": "base64",
             "body": base64.b64encode(zipped).decode()},
            {"id": "bad-1", "body": "not base64!", "encoding": "base64"},
            {"id": "bad-2"},
            "just text",
            {"id": "bad-3", "body": "<x/>", "encoding": "rot13"},
        ], "cursor": "c2"},
        "c2": {"messages": [], "cursor": "c2"},
    })
    async with serve(outbox.handle, method="GET") as url, harness(
            tmp_path, source="rest", source_options=options(url), settings=SETTINGS) as gw:
        await gw.settled(2)
        await gw.wait_for(lambda: saved_cursor(tmp_path) == "c2")
        messages = gw.messages()
    states = {m.ref: (m.state, m.reason) for m in messages}
    assert states["m-0"][0] == states["z-1"][0] == "routed"
    quarantined = sorted(r or "" for s, r in states.values() if s == "quarantined")
    assert len(quarantined) == 4
    assert any("bad-1: body is not base64" in r for r in quarantined)
    assert any('bad-2: "body" must be a string' in r for r in quarantined)
    assert any("must be a JSON object" in r for r in quarantined)
    assert any("unknown encoding 'rot13'" in r for r in quarantined)


async def test_tls_with_a_client_certificate_and_a_token(tmp_path: Path) -> None:
    certs = certificates(tmp_path / "certs")
    outbox = Outbox(token="poll-token")
    (tmp_path / "gw").mkdir()
    async with serve(outbox.handle, certs.server, method="GET") as url, harness(
            tmp_path / "gw", source="rest", settings=SETTINGS,
            source_options=options(url, token="poll-token", ca_file=str(certs.ca),
                                   client_cert=str(certs.client_cert),
                                   client_key=str(certs.client_key))) as gw:
        await gw.settled(5)
    assert [m.state for m in gw.messages()] == ["routed"] * 5


async def test_an_unreadable_cursor_starts_from_the_beginning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    context = PluginContext("drop", tmp_path, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    source = RestSource(RestSourceOptions.model_validate({"url": "http://127.0.0.1:9/"}), context)
    source.cursor_file.path.parent.mkdir(parents=True)
    source.cursor_file.path.write_bytes(b"{garbage")
    assert await source._load_cursor() is None
    assert "polling from the start" in caplog.text


class HeldOutbox(Outbox):
    """An :class:`Outbox` that answers each poll once ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        #: Polls that came, answered or not.
        self.asked = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.asked += 1
        await self.go.wait()
        return await super().handle(request)


def cursor_unanswering(root_text: str) -> None:
    """(In a private mount namespace.) The data folder stops answering (its share's server
    is gone) while the first page is fetched: writing the cursor is given up on after its
    timeout, said once, and the page fetched again (its messages submitted again:
    duplicates, for the store); a source started meanwhile gives up reading its cursor
    and does not poll; each stops while the folder still hangs."""
    data = Path(root_text) / "data"
    context = PluginContext("drop", data, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    outbox = HeldOutbox()
    said = messages_of("plugins.rest")
    hang = contextlib.ExitStack()
    hangs: list[Callable[[], bool]] = []

    async def polls() -> None:
        async with serve(outbox.handle, method="GET") as url:
            first = RestSource(RestSourceOptions.model_validate(options(url)), context)
            failed = f"rest source drop: polling {url} failed: "
            writing = (f"{failed}writing its cursor {first.cursor_file.path}: not done within 1s"
                       " (does its file system hang?)")

            def stops_there() -> bool:
                if outbox.asked and not hangs:  # the cursor was read: its page comes
                    hangs.append(hang.enter_context(unanswering(data, safety=20)))
                    outbox.go.set()
                return len(outbox.polls) >= 3  # the first page, twice since
            await run_until(first, first.cursor_file, StubIntake(), stops_there)
            assert said.count(writing) == 1, said  # (then every 5 minutes)
            assert set(outbox.polls) == {None} and first.cursor is None

            polled = len(outbox.polls)
            reading = (f"{failed}reading its cursor {first.cursor_file.path}: not done within 1s"
                       " (does its file system hang?)")
            second = RestSource(RestSourceOptions.model_validate(options(url)), context)
            await run_until(second, second.cursor_file, StubIntake(), lambda: reading in said)
            assert len(outbox.polls) == polled
            assert hangs[0](), "the source waited until the folder was cut off"

    with hang:
        asyncio.run(polls())
        assert hangs[0](), "the run ended only once the folder was cut off"


def test_a_cursor_folder_that_does_not_answer_holds_up_nothing(tmp_path: Path) -> None:
    """The cursor lives in the gateway's data folder, which may be a share: reading and
    writing it are bounded calls, given up on as a transient failure (the page is polled
    again), not waits that hold up the source, or the stop, for as long as the share."""
    require_fuse()
    run_isolated("tests.test_rest_source:cursor_unanswering", str(tmp_path))


def _zipped(entries: dict[str, bytes]) -> str:
    """A zip of ``entries``, base64 (a message's body with ``"encoding": "base64"``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return base64.b64encode(buf.getvalue()).decode()


#: Bodies a server may send that the gateway refuses, as it refuses such files: id -> reason.
HOSTILE: dict[str, tuple[dict[str, str], str]] = {
    "entities": ({"body": '<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                          "<r>&b;&b;&b;&b;</r>"}, "DOCTYPE"),
    "external": ({"body": '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'},
                 "DOCTYPE"),
    "zip-bomb": ({"content_type": "application/zip", "encoding": "base64",
                  "body": _zipped({"m.xml": MESSAGES[1],
                                   "files/zeros.bin": b"\0" * (5 << 20)})}, "ratio"),
}


async def test_hostile_bodies_are_quarantined_with_the_reason_and_the_page_goes_on(
        tmp_path: Path) -> None:
    hostile = [{"id": ident} | body for ident, (body, _why) in HOSTILE.items()]
    outbox = Outbox(pages={
        None: {"messages": [entry(0), *hostile, entry(2)], "cursor": "c2"},
        "c2": {"messages": [], "cursor": "c2"},
    })
    async with serve(outbox.handle, method="GET") as url, harness(
            tmp_path, source="rest", source_options=options(url), settings=SETTINGS) as gw:
        await gw.settled(2)
        await gw.wait_for(lambda: saved_cursor(tmp_path) == "c2")
        await gw.wait_for(lambda: len(gw.messages()) == 5)
        messages = {m.ref: m for m in gw.messages()}
        sent = sorted(c.message_id or "" for c in gw.collected)
    assert messages["m-0"].state == messages["m-2"].state == "routed"
    assert sent == ["polled-0", "polled-2"]  # the good ones around them went on
    for ident, (_body, why) in HOSTILE.items():
        assert messages[ident].state == "quarantined", ident
        assert why in (messages[ident].reason or ""), f"{ident}: {messages[ident].reason}"
    assert outbox.polls.count(None) == 1  # the page was not fetched again for its bad bodies


#: The resident of baseDelivery.xml the canton's message is about.
VN = "7562328558609"
#: A source polling the canton's REST outbox: its messages come back from the canton.
FROM_CANTON = """\
[sources.canton-rest]
type = "rest"
partner = "canton"
url = "{url}"
interval = "50ms"
"""


async def test_the_cantons_messages_polled_over_rest_reach_the_registry_on_the_resident(
        tmp_path: Path) -> None:
    """The way back over REST: a canton's message about a known resident ends in the
    registry's folder (``role = "registry"``) and on the person, as an answer from the canton."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "registry" / "inbox"
    about = message("from-canton-1").replace(
        b"<eCH-0044:officialName>", f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
        + b"<eCH-0044:officialName>", 1)
    outbox = Outbox(pages={None: {"messages": []}})  # nothing until the resident is known
    async with serve(outbox.handle, method="GET") as url:
        (tmp_path / "conf.d" / "20-rest.toml").write_text(FROM_CANTON.format(url=url))
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "baseDelivery.xml",
                 (Path(__file__).parent / "fixtures" / "ech0020" / "baseDelivery.xml")
                 .read_bytes())
            await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])
            outbox.pages = {
                None: {"messages": [{"id": "k-1", "body": about.decode()}], "cursor": "k1"},
                "k1": {"messages": [], "cursor": "k1"}}
            await until(lambda: len(list(inbox.glob("*.xml"))) == 1, timeout=20)
    [delivered] = inbox.glob("*.xml")
    assert b"from-canton-1" in delivered.read_bytes()
    assert states(db, "SELECT source, state FROM messages ORDER BY id") == [
        ("registry", "not_relevant"), ("canton-rest", "routed")]
    assert states(db, "SELECT d.partner, d.state FROM deliveries d JOIN messages m"
                      " ON m.id = d.message WHERE m.source = 'canton-rest'") == [
        ("registry", "delivered")]
    shown = json.loads(cli("--config", str(config), "persons", "show", VN, "--json"))
    assert [(m["source"], m["direction"]) for m in shown["messages"]
            if m["source"] == "canton-rest"] == [("canton-rest", "in")]
