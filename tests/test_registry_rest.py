"""The reference registry plugin against its simulator, through gateway.testing (as a vendor would).

Real aiohttp servers on 127.0.0.1 (``plugins.registry_rest.sim``), the real
gateway (``gateway.testing.harness``); the tests read what was committed and
what the registry holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.api import (
    ConfigError,
    GatewayError,
    NormaliseContext,
    OutboundItem,
    PermanentError,
    PersonState,
    PluginContext,
    RawInput,
    SendResult,
    TransientError,
    ech0223,
    load_config,
)
from gateway.plugins import get_plugin_manager
from gateway.testing import PARTNER, SOURCE, harness, sample_message, serve, states
from plugins import ech0020
from plugins.registry_rest.client import RegistryClient
from plugins.registry_rest.options import RegistryOptions
from plugins.registry_rest.sim import RegistrySimulator
from plugins.registry_rest.source import RegistrySource
from plugins.registry_rest.transport import CONNECTIONS, RegistryTransport
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.sim_answers import Answerer
from tests.mounts import require_fuse, run_isolated, unanswering
from tests.polling import messages_of, run_until
from tests.stubs import StubIntake

CORPUS = Path(__file__).resolve().parent / "fixtures" / "ech0020"
#: A resident of baseDelivery.xml; move.xml (a move within the commune) names only him.
VN = "7568982977671"
MOVE = (CORPUS / "move.xml").read_bytes()


def residents() -> list[PersonState]:
    """Everyone the registry keeps: the persons of the corpus's baseDelivery.xml."""
    raw = RawInput("registry", "baseDelivery.xml", (CORPUS / "baseDelivery.xml").read_bytes())
    normalised = ech0020.gateway_normalise(raw, NormaliseContext(1 << 24, 100, 1 << 24, 100))
    assert normalised is not None
    return list(normalised.persons)


def registry(url: str, **options: Any) -> dict[str, Any]:
    """``settings`` for the harness: the registry partner, and a source polling it."""
    return {"partners": {"registry": {"transport": "registry-rest", "role": "registry",
                                      "registry-rest": {"url": url, **options}}}}


POLLING = {"registry": "registry", "poll_interval": "50ms"}


async def test_events_are_polled_submitted_and_not_read_twice(tmp_path: Path) -> None:
    sim = RegistrySimulator()
    for n in range(3):
        sim.add_event(sample_message(f"event-{n}", seed=n))
    async with serve(sim.app()) as url:
        async with harness(tmp_path, source="registry-rest", source_options=POLLING,
                           settings=registry(url)) as gw:
            await gw.settled(3)
        assert [m.ref for m in gw.messages()] == [f"registry event {n}" for n in (1, 2, 3)]
        assert [item.message_id for item in gw.collected] == ["event-0", "event-1", "event-2"]
        sim.add_event(sample_message("event-3", seed=3))
        sim.requests.clear()
        async with harness(tmp_path, source="registry-rest", source_options=POLLING,
                           settings=registry(url)) as again:
            await again.settled(4)
    assert sim.requests[0] == "GET /events?limit=100&after=3"  # the cursor survived the restart
    assert [m.state for m in again.messages()] == ["routed"] * 4  # no duplicates


def two_registries(url_a: str, url_b: str) -> dict[str, Any]:
    """``settings``: partners ``registry-a`` and ``registry-b``, the source SOURCE polling the
    first and the source ``second`` the other."""
    return {"partners": {name: {"transport": "registry-rest", "role": "registry",
                                "registry-rest": {"url": url}}
                         for name, url in (("registry-a", url_a), ("registry-b", url_b))},
            "sources": {SOURCE: {"registry": "registry-a"},
                        "second": {"type": "registry-rest", "registry": "registry-b",
                                   "poll_interval": "50ms", "route_to": [PARTNER]}}}


async def test_two_sources_keep_their_own_cursors_across_a_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two registries (a commune's two, or a test and a production one): neither source's
    cursor is the other's, so after a restart neither skips an event nor fetches one again."""
    a, b = RegistrySimulator(), RegistrySimulator()
    for n in range(3):
        a.add_event(sample_message(f"a-{n}", seed=n))
    b.add_event(sample_message("b-0", seed=10))
    async with serve(a.app()) as url_a, serve(b.app()) as url_b:
        config = {"source": "registry-rest", "source_options": {"poll_interval": "50ms"},
                  "settings": two_registries(url_a, url_b)}
        async with harness(tmp_path, **config) as gw:  # type: ignore[arg-type]
            await gw.settled(4)
        a.add_event(sample_message("a-3", seed=3))
        b.add_event(sample_message("b-1", seed=11))
        a.requests.clear()
        b.requests.clear()
        caplog.set_level(logging.INFO, "plugins.registry_rest.source")
        async with harness(tmp_path, **config) as again:  # type: ignore[arg-type]
            await again.settled(6)
    assert a.requests[0] == "GET /events?limit=100&after=3"
    assert b.requests[0] == "GET /events?limit=100&after=1"
    assert sorted((m.source, m.message_id, m.state) for m in again.messages()) == [
        *((SOURCE, f"a-{n}", "routed") for n in range(4)),
        *(("second", f"b-{n}", "routed") for n in range(2))]  # none skipped, none again
    assert not [r for r in caplog.records if "earlier version" in r.getMessage()]


async def test_the_only_source_takes_over_the_cursor_an_earlier_version_shared(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An upgrade: the cursor of the one source was ``<data_dir>/cursor``. It is taken over
    (renamed) at the first poll: the events stored before are not fetched again."""
    sim = RegistrySimulator()
    for n in range(3):
        sim.add_event(sample_message(f"event-{n}", seed=n))
    config = {"source": "registry-rest", "source_options": POLLING}
    async with serve(sim.app()) as url:
        async with harness(tmp_path, **config, settings=registry(url)) as gw:  # type: ignore[arg-type]
            await gw.settled(3)
        own = tmp_path / "registry-rest" / f"{SOURCE}.cursor"
        own.rename(tmp_path / "cursor")  # where the earlier version kept it
        sim.add_event(sample_message("event-3", seed=3))
        sim.requests.clear()
        caplog.set_level(logging.INFO, "plugins.registry_rest.source")
        async with harness(tmp_path, **config, settings=registry(url)) as again:  # type: ignore[arg-type]
            await again.settled(4)
    assert sim.requests[0] == "GET /events?limit=100&after=3"
    assert [(m.message_id, m.state) for m in again.messages()] == [
        (f"event-{n}", "routed") for n in range(4)]  # no duplicate: nothing fetched again
    assert not (tmp_path / "cursor").exists() and json.loads(own.read_bytes()) == {"after": "4"}
    assert f"took over the cursor file {tmp_path / 'cursor'} of an earlier version" in caplog.text


async def test_several_sources_ignore_the_shared_cursor_of_an_earlier_version_and_say_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With two sources nobody can tell whose the old cursor was: each starts from its own
    (here none: from the first event), the file is left, and one WARNING says why."""
    a, b = RegistrySimulator(), RegistrySimulator()
    a.add_event(sample_message("a-0", seed=0))
    b.add_event(sample_message("b-0", seed=10))
    (tmp_path / "cursor").write_text('{"after": "1"}')
    caplog.set_level(logging.WARNING, "plugins.registry_rest.source")
    async with serve(a.app()) as url_a, serve(b.app()) as url_b, harness(
            tmp_path, source="registry-rest", source_options={"poll_interval": "50ms"},
            settings=two_registries(url_a, url_b)) as gw:
        await gw.settled(2)
    assert a.requests[0] == b.requests[0] == "GET /events?limit=100"
    assert (tmp_path / "cursor").read_text() == '{"after": "1"}'
    [warning] = [r.getMessage() for r in caplog.records if "earlier version" in r.getMessage()]
    assert warning.startswith(f"the cursor file {tmp_path / 'cursor'} of an earlier version is"
                              " ignored: it was shared by the registry-rest sources")
    assert f"each of {SOURCE}, second starts from its own" in warning


async def test_an_entry_that_is_no_event_is_quarantined_and_the_outbox_goes_on(
        tmp_path: Path) -> None:
    """One bad entry in the registry's outbox must not stop the source (the cursor moves)."""
    asked: list[str | None] = []
    page = [{"id": "1", "body": sample_message("good-1", seed=1).decode()},
            {"id": "2"},
            {"id": "3", "body_base64": "not base64!"},
            "a string",
            {"id": "5", "body": sample_message("good-5", seed=5).decode()}]

    async def events(request: web.Request) -> web.Response:
        asked.append(request.query.get("after"))
        if request.query.get("after") is None:
            return web.json_response({"events": page, "cursor": "5"})
        return web.json_response({"events": [], "cursor": "5"})

    app = web.Application()
    app.add_routes([web.get("/events", events)])
    async with serve(app) as url, harness(tmp_path, source="registry-rest",
                                          source_options=POLLING, settings=registry(url)) as gw:
        await gw.settled(2)
        await gw.wait_for(lambda: "5" in asked)
        found = {m.ref: (m.state, m.reason or "") for m in gw.messages()}
    assert [item.message_id for item in gw.collected] == ["good-1", "good-5"]
    assert found["registry event 2"] == ("quarantined", "event 2: neither body nor body_base64")
    assert found["registry event 3"][0] == "quarantined"
    assert "body_base64 is not base64" in found["registry event 3"][1]
    assert found["registry event #3 of a page"] == ("quarantined", "an event without an id")
    assert asked[0] is None and set(asked[1:]) == {"5"}  # polled past the bad entries


async def test_a_person_the_gateway_does_not_know_is_looked_up_in_the_registry(
        tmp_path: Path) -> None:
    """An eCH-0020 move names only the person; the registry supplies the rest of personData."""
    sim = RegistrySimulator(residents())
    sim.add_event(MOVE)
    async with serve(sim.app()) as url, harness(tmp_path, source="registry-rest",
                                                source_options=POLLING,
                                                settings=registry(url)) as gw:
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered"
    assert sim.searches == [{"vn": VN}]
    assert not [r for r in sim.requests if VN in r]  # never in a URL: access logs keep those
    payload = gw.collected[0].payload
    assert b"<eCH-0223:personEvent>move<" in payload and f"<eCH-0044:vn>{VN}<".encode() in payload
    assert b"<eCH-0223:nationalityData>" in payload  # from the registry: move.xml has none
    [(stored,)] = states(tmp_path / "gateway.db", "SELECT state FROM persons")
    assert json.loads(stored)["identification"]["vn"] == int(VN)


@pytest.mark.parametrize("trouble", ["slow", "down", "unknown"])
async def test_a_lookup_that_finds_nobody_quarantines_and_the_gateway_goes_on(
        tmp_path: Path, trouble: str, caplog: pytest.LogCaptureFixture) -> None:
    sim = RegistrySimulator(residents() if trouble != "unknown" else ())
    sim.delay = 2.0 if trouble == "slow" else 0.0
    caplog.set_level(logging.INFO)
    async with serve(sim.app()) as url:
        settings = registry(url, lookup_timeout="200ms")
        if trouble == "down":
            settings = registry("http://127.0.0.1:9", lookup_timeout="200ms")
        async with harness(tmp_path, plugins=[], source="folder", settings=settings) as gw:
            gw.feed("move.xml", MOVE)
            gw.feed("other.xml", sample_message("other"))
            await gw.wait_for(lambda: sorted((m.ref, m.state) for m in gw.messages()) == [
                ("move.xml", "quarantined"), ("other.xml", "routed")])
    [move] = [m for m in gw.messages() if m.ref == "move.xml"]
    assert "no state of" in (move.reason or ""), move.reason
    assert VN not in caplog.text  # no VN in any log line


def resident(vn: str = VN) -> PersonState:
    [person] = [p for p in residents() if p.identification.vn == int(vn)]
    return person


def without_ids(person: PersonState) -> ech0223.PersonIdentificationLight:
    """The person as a canton may name them: names and date of birth, no VN, no local id."""
    return person.identification.model_copy(update={"vn": None, "local_person_id": None})


async def test_a_cantons_message_about_a_resident_is_found_in_the_registry_and_delivered(
        tmp_path: Path) -> None:
    sim = RegistrySimulator(residents())
    async with serve(sim.app()) as url, harness(tmp_path, settings=registry(url)) as gw:
        await gw.from_partner(sample_message("canton-1", person=resident().identification))
        [delivery] = await gw.settled(1)
    assert (delivery.partner, delivery.state) == ("registry", "delivered")
    assert sim.requests == ["POST /persons/search", "POST /inbox"]
    assert sim.searches == [{"vn": VN}]
    [received] = sim.inbox
    assert received.body == sample_message("canton-1", person=resident().identification)
    assert received.key.endswith(f"-{delivery.id}")  # the delivery's reference, every attempt
    [(stored,)] = states(tmp_path / "gateway.db", "SELECT state FROM persons")
    assert json.loads(stored)["identification"]["local_person_id"]["person_id"] == "100102"


async def test_a_resident_named_only_by_name_and_birth_is_searched_so(tmp_path: Path) -> None:
    sim = RegistrySimulator(residents())
    person = resident()
    async with serve(sim.app()) as url, harness(tmp_path, settings=registry(url)) as gw:
        await gw.from_partner(sample_message("canton-1", person=without_ids(person)))
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered"
    assert person.identification.date_of_birth is not None
    born = person.identification.date_of_birth.year_month_day
    assert born is not None
    [search] = sim.searches
    assert search == {"official_name": person.identification.official_name,
                      "first_name": person.identification.first_name,
                      "date_of_birth": born.isoformat()}


@pytest.mark.parametrize("registry_knows", [0, 2])
async def test_nobody_or_two_residents_found_waits_for_review_and_is_kept(
        tmp_path: Path, registry_knows: int) -> None:
    person = resident()
    twin = person.model_copy(update={"identification": person.identification.model_copy(
        update={"vn": 7561234567897, "local_person_id": None})})
    sim = RegistrySimulator([person, twin][:registry_knows])
    async with serve(sim.app()) as url, harness(tmp_path, settings=registry(url)) as gw:
        mid = await gw.from_partner(sample_message("canton-1", person=without_ids(person)))
        await gw.wait_for(lambda: gw.messages()[0].state == "needs_review")
    assert gw.messages()[0].id == mid and gw.deliveries() == [] and sim.inbox == []
    assert "message.needs_review" in gw.event_kinds()


@pytest.mark.parametrize("trouble", ["down", "slow"])
async def test_a_registry_that_cannot_be_searched_is_not_taken_for_one_that_knows_nobody(
        tmp_path: Path, trouble: str) -> None:
    """The message waits for review saying the registry could not be searched, and that a
    replay searches again: not "no resident matches" (an operator would assign by hand what
    the registry knows)."""
    sim = RegistrySimulator(residents())
    sim.down, sim.delay = trouble == "down", 2.0 if trouble == "slow" else 0.0
    async with serve(sim.app()) as url, harness(
            tmp_path, settings=registry(url, lookup_timeout="200ms")) as gw:
        mid = await gw.from_partner(sample_message("canton-1", person=resident().identification))
        await gw.wait_for(lambda: gw.messages()[0].state == "needs_review")
    reason = gw.messages()[0].reason or ""
    assert reason.startswith("no resident found: the registry could not be searched (plugin"
                             " 'registry_rest' failed or did not answer in time): "
                             f"`ech-gateway messages replay {mid}` searches again"), reason
    assert f"messages assign {mid}" in reason and "no resident matches" not in reason


async def test_registry_down_keeps_the_cantons_message_queued_then_delivers_it_once(
        tmp_path: Path) -> None:
    """The registry's event teaches the gateway the person (a look-up); the answer waits it out."""
    sim = RegistrySimulator(residents())
    sim.add_event(MOVE)
    fast = {"partners": {"registry": {"retry": {"initial": "50ms", "maximum": "200ms",
                                                "jitter": 0}}}}
    async with serve(sim.app()) as url, harness(
            tmp_path, source="registry-rest", source_options=POLLING,
            settings=registry(url) | {"partners": {"registry": {
                **registry(url)["partners"]["registry"], **fast["partners"]["registry"]}}}) as gw:
        await gw.settled(1)  # the registry's event, its person looked up
        sim.down = True
        await gw.from_partner(sample_message("canton-1", person=resident().identification))
        await gw.wait_for(lambda: gw.event_kinds().count("delivery.retry") >= 2)
        assert sim.inbox == []
        sim.down = False
        await gw.settled(2)
    assert [(d.partner, d.state) for d in gw.deliveries()] == [("partner", "delivered"),
                                                                ("registry", "delivered")]
    assert len(sim.inbox) == 1
    assert not [s for s in sim.searches if "official_name" in s]


async def test_a_dropped_answer_is_repeated_under_the_same_key_and_kept_once(
        tmp_path: Path) -> None:
    sim = RegistrySimulator(residents())
    sim.drop_after_storing = 1
    async with serve(sim.app()) as url, harness(tmp_path, settings=registry(url)) as gw:
        await gw.from_partner(sample_message("canton-1", person=resident().identification))
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered" and delivery.attempts == 2
    assert len(sim.inbox) == 1  # the repeat was recognised by its Idempotency-Key
    assert sum(r == "POST /inbox" for r in sim.requests) == 2


async def test_a_registry_that_refuses_makes_a_dead_letter_with_its_reason(tmp_path: Path) -> None:
    sim = RegistrySimulator(residents(), token="s3cret")
    sim.refuse = 422
    async with serve(sim.app()) as url, harness(
            tmp_path, settings=registry(url, token="s3cret")) as gw:
        await gw.from_partner(sample_message("canton-1", person=resident().identification))
        [delivery] = await gw.settled(1)
    assert delivery.state == "dead" and delivery.attempts == 1
    assert "HTTP 422" in (delivery.reason or "") and "refused" in (delivery.reason or "")
    assert sim.inbox == []


async def test_a_wrong_token_finds_nobody_and_the_message_waits_for_review(
        tmp_path: Path) -> None:
    sim = RegistrySimulator(residents(), token="s3cret")
    async with serve(sim.app()) as url, harness(
            tmp_path, settings=registry(url, token="wrong")) as gw:
        await gw.from_partner(sample_message("canton-1", person=resident().identification))
        await gw.wait_for(lambda: gw.messages()[0].state == "needs_review")
    assert sim.inbox == [] and gw.deliveries() == []


async def test_a_batch_of_cantons_messages_searches_the_registry_several_at_a_time(
        tmp_path: Path) -> None:
    """The way back searches for its residents as enrichment looks up its persons: at once,
    ``[gateway] person_lookup_concurrency`` requests side by side, not one after another."""
    sim = RegistrySimulator(residents())
    sim.delay = 0.2
    found = residents()[:8]
    messages = [sample_message(f"canton-{n}", person=p.identification)
                for n, p in enumerate(found)]
    messages += [sample_message(f"stranger-{n}", seed=n) for n in range(4)]  # nobody it knows
    async with serve(sim.app()) as url, harness(tmp_path, settings={
            **registry(url), "gateway": {"person_lookup_concurrency": 4}}) as gw:
        await asyncio.gather(*(gw.from_partner(m, ref=f"{n}.xml") for n, m in enumerate(messages)))
        await gw.wait_for(lambda: sum(m.state == "needs_review" for m in gw.messages()) == 4)
        delivered = await gw.settled(8)
    assert sim.most_searching == 4
    assert sorted(d.message_id for d in delivered if d.state == "delivered") == sorted(
        f"canton-{n}" for n in range(8))
    assert len(sim.inbox) == 8


def endless(status: int) -> web.Application:
    """A registry (or a proxy before it) whose every answer has ``status`` and never ends."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(b'{"events": [], "persons": [], "more": "')
            while True:
                await response.write(b" " * 65536)
                await asyncio.sleep(0)
        return response

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    return app


def delivery() -> OutboundItem:
    return OutboundItem(delivery_id=4, partner="registry", attempt=1, attempt_ref="a-1",
                        message_id="m-1", payload=b"<m/>", delivery_ref="store-4")


def patient(url: str) -> RegistryClient:
    """A client of the registry at ``url`` that waits a minute for any answer."""
    return RegistryClient(RegistryOptions.model_validate(
        {"url": url, "timeout": "60s", "lookup_timeout": "60s"}), "registry")


async def test_answers_that_never_end_are_read_up_to_a_limit() -> None:
    """Each answer is read up to a limit, then given up, well before the (minute-long)
    timeouts: an endless events page or search answer is refused with the registry's URL
    and the limit, and an endless acknowledgement of a delivery is cut off, the delivery
    done. Before, every one was read (into memory) until the timeout ended it."""
    async with serve(endless(200)) as url, patient(url) as client:
        limit = rf"is larger than \[partners\.registry\.registry-rest\] max_response \({64 << 20} bytes\)"
        with pytest.raises(GatewayError, match=rf"^the answer from {url}/events {limit}$"):
            await asyncio.wait_for(client.events(None, 100), 20)
        with pytest.raises(GatewayError, match=rf"^the answer from {url}/persons/search {limit}$"):
            await asyncio.wait_for(client.persons({"vn": VN}), 20)
        done = await asyncio.wait_for(client.deliver(delivery()), 20)
    assert done.detail == "HTTP 200 from the registry"
    async with serve(endless(503)) as url, patient(url) as client:
        with pytest.raises(TransientError, match=r"^the registry answered HTTP 503: '.*'$"):
            await asyncio.wait_for(client.deliver(delivery()), 20)


async def test_a_batch_of_deliveries_goes_to_the_registry_several_at_a_time(
        tmp_path: Path) -> None:
    """``send_many``: the dispatcher's batch is POSTed side by side, as many at once as the
    transport keeps connections, each with its own outcome (an empty body is refused alone);
    a delivery's ``timeout`` starts when it has its connection, not while it waits for one."""
    sim = RegistrySimulator()
    sim.delay = 0.2
    items = [dataclasses.replace(delivery(), delivery_id=n, attempt_ref=f"a-{n}",
                                 delivery_ref=f"store-{n}", payload=b"<m/>" if n else b"")
             for n in range(10)]
    async with serve(sim.app()) as url:
        options = RegistryOptions.model_validate({"url": url, "timeout": "500ms"})
        transport = RegistryTransport(options, PluginContext(
            "registry", tmp_path, NormaliseContext(1 << 20, 100, 1 << 20, 100), None))
        try:
            results = await asyncio.wait_for(transport.send_many(items), 20)
        finally:
            await transport.client.close()
    refused, *sent = results
    assert isinstance(refused, PermanentError) and "HTTP 400" in str(refused)
    assert all(isinstance(r, SendResult) and not r.awaits_receipt for r in sent)
    assert sorted(r.key for r in sim.inbox) == sorted(f"store-{n}" for n in range(1, 10))
    assert sim.most_delivering == CONNECTIONS


#: ``max_response`` of the test of an events page too large: the pages after it fit.
MAX_RESPONSE = 64 << 10


async def test_an_events_page_larger_than_max_response_is_refused_and_the_next_poll_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The first page comes without a length (chunked), four times ``max_response``: it is
    refused, named with the registry and the limit; nothing of it is stored and the cursor
    stays, so the next poll asks for the same events again, and takes the page that fits."""
    asked: list[str | None] = []
    good = {"id": "1", "body": sample_message("good-1", seed=1).decode()}

    async def events(request: web.Request) -> web.StreamResponse:
        asked.append(request.query.get("after"))
        if len(asked) == 1:
            big = {"id": "big", "body": sample_message("big", seed=2).decode()
                   + " " * (4 * MAX_RESPONSE)}
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(json.dumps({"events": [big], "cursor": "big"}).encode())
            return response
        return web.json_response({"events": [] if asked[-1] else [good], "cursor": "1"})

    app = web.Application()
    app.add_routes([web.get("/events", events)])
    caplog.set_level(logging.WARNING, "plugins.registry_rest.source")
    async with serve(app) as url, harness(
            tmp_path, source="registry-rest", source_options=POLLING,
            settings=registry(url, max_response=MAX_RESPONSE)) as gw:
        await gw.settled(1)
        await gw.wait_for(lambda: "1" in asked)
    assert [item.message_id for item in gw.collected] == ["good-1"]
    assert [m.ref for m in gw.messages()] == ["registry event 1"]
    assert asked[:2] == [None, None]  # the refused page did not move the cursor
    assert [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "plugins.registry_rest.source"] == [
        ("ERROR", f"source {SOURCE} failed: cannot read the registry's events: the answer from"
                  f" {url}/events is larger than [partners.registry.registry-rest] max_response"
                  f" ({MAX_RESPONSE} bytes)"),
        ("WARNING", f"source {SOURCE} works again")]


def test_a_source_must_name_a_registry_partner(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[sources.events]\ntype = "registry-rest"\nregistry = "canton"\n'
                      '[partners.canton]\ntransport = "rest"\n[partners.canton.rest]\n'
                      'url = "https://canton.example/messages"\n')
    with pytest.raises(ConfigError, match=r"sources\.events\.registry: 'canton' is not a partner"):
        load_config(config, get_plugin_manager())


def test_a_registry_rest_partner_is_a_registry(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[partners.registry]\ntransport = "registry-rest"\n'
                      '[partners.registry.registry-rest]\nurl = "https://registry.example/api"\n')
    with pytest.raises(ConfigError, match=r"partners\.registry\.role: .* set role = \"registry\""):
        load_config(config, get_plugin_manager())



async def test_end_to_end_registry_event_to_the_canton_over_sedex_and_its_answer_back(
        tmp_path: Path) -> None:
    """Registry outbox → gateway → sedex → the canton answers → the gateway → registry inbox."""
    sedex = {name: tmp_path / "sedex" / name for name in ("outbox", "inbox", "receipts",
                                                          "processed")}
    for folder in sedex.values():
        folder.mkdir(parents=True)
    canton = SedexSimulator(sedex["outbox"], sedex["receipts"], sedex["processed"],
                            tmp_path / "canton", poll_interval=0.05,
                            answer=Answerer(sedex["inbox"], "message", seed=3))
    sim = RegistrySimulator(residents())
    sim.add_event(MOVE)
    options = {**{k: str(v) for k, v in sedex.items()}, "sender_id": "T3-230-1",
               "recipient_id": "T7-1-1", "message_type": 2515, "poll_interval": "50ms",
               "settle": "50ms"}
    stop = asyncio.Event()
    async with serve(sim.app()) as url, harness(
            tmp_path, transport="sedex", transport_options=options, source="registry-rest",
            source_options=POLLING, settings=registry(url)) as gw:
        answering = asyncio.create_task(canton.run(stop))
        await gw.wait_for(lambda: len(sim.inbox) == 1, timeout=20)
        stop.set()
        await answering
    sent, answer = gw.messages()
    assert (sent.source, sent.state, answer.source, answer.state) == (
        SOURCE, "routed", PARTNER, "routed")
    assert [(d.partner, d.state) for d in gw.deliveries()] == [(PARTNER, "delivered"),
                                                                ("registry", "delivered")]
    [received] = sim.inbox
    assert f"<eCH-0039:referenceMessageId>{sent.message_id}<".encode() in received.body
    assert f"<eCH-0044:vn>{VN}<".encode() in received.body
    assert sim.searches == [{"vn": VN}]
    [(case_partner, count)] = states(
        tmp_path / "gateway.db", "SELECT c.partner, count(*) FROM cases c JOIN case_messages m"
                                 " ON m.case_id = c.id GROUP BY c.id")
    assert (case_partner, count) == (PARTNER, 2)


def cursor_unanswering(root_text: str) -> None:
    """(In a private mount namespace.) The data folder stops answering (its share's server
    is gone) once the source wrote its cursor: writing the next is given up on after its
    timeout, said once, and the same events polled again (duplicates, for the store); a
    source started meanwhile gives up reading its cursor and does not poll; each stops
    while the folder still hangs."""
    root = Path(root_text)
    data = root / "data"
    said = messages_of("plugins.registry_rest")
    hang = contextlib.ExitStack()
    hangs: list[Callable[[], bool]] = []

    async def polls() -> None:
        sim = RegistrySimulator()
        for n in range(2):
            sim.add_event(sample_message(f"event-{n}", seed=n))
        async with serve(sim.app()) as url:
            config = root / "gateway.toml"
            config.write_text(
                '[sources.registry]\ntype = "registry-rest"\npoll_interval = "50ms"\n'
                '[partners.registry]\ntransport = "registry-rest"\nrole = "registry"\n'
                f'[partners.registry.registry-rest]\nurl = "{url}"\n')
            settings = load_config(config, get_plugin_manager())
            context = PluginContext("registry", data, NormaliseContext(1 << 20, 100, 1 << 20,
                                                                       100), settings)
            options = settings.sources["registry"].parsed
            first, intake = RegistrySource(options, context), StubIntake()
            writing = (f"source registry failed: writing its cursor {first.cursor_file.path}:"
                       " not done within 1s (does its file system hang?)")

            def stops_there() -> bool:
                if first.cursor == "2" and not hangs:  # written: the folder hangs now
                    hangs.append(hang.enter_context(unanswering(data, safety=20)))
                    sim.add_event(sample_message("event-2", seed=2))
                return [r.ref for r in intake.submitted].count("registry event 3") >= 3
            await run_until(first, first.cursor_file, intake, stops_there)
            assert said.count(writing) == 1, said  # (then every 5 minutes)
            assert first.cursor == "2"
            assert sim.requests[-1] == "GET /events?limit=100&after=2"  # polled from there again

            asked = len(sim.requests)
            reading = writing.replace("writing", "reading")
            second = RegistrySource(options, context)
            await run_until(second, second.cursor_file, StubIntake(), lambda: reading in said)
            assert len(sim.requests) == asked
            assert hangs[0](), "the source waited until the folder was cut off"

    with hang:
        asyncio.run(polls())
        assert hangs[0](), "the run ended only once the folder was cut off"


def test_a_cursor_folder_that_does_not_answer_holds_up_nothing(tmp_path: Path) -> None:
    """The cursor lives in the gateway's data folder, which may be a share: reading and
    writing it are bounded calls, given up on as a transient failure (the events are
    polled again), not waits that silence the source, and hold up the stop, for as long
    as the share."""
    require_fuse()
    run_isolated("tests.test_registry_rest:cursor_unanswering", str(tmp_path))
