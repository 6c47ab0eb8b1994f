"""The reference registry plugin against its simulator, through gateway.testing (as a vendor would).

Real aiohttp servers on 127.0.0.1 (``plugins.registry_rest.sim``), the real
gateway (``gateway.testing.harness``); the tests read what was committed and
what the registry holds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.api import ConfigError, NormaliseContext, PersonState, RawInput, load_config
from gateway.plugins import get_plugin_manager
from gateway.testing import harness, sample_message, serve, states
from plugins import ech0020
from plugins.registry_rest.sim import RegistrySimulator

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
    return {"partners": {"registry": {"transport": "registry-rest",
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
    assert [r for r in sim.requests if r.startswith("GET /persons")] == [f"GET /persons?vn={VN}"]
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


async def test_registry_down_keeps_the_delivery_queued_then_delivers_it_once(
        tmp_path: Path) -> None:
    sim = RegistrySimulator()
    sim.down = True
    fast = {"partners": {"partner": {"retry": {"maximum": "200ms"}}}}
    async with serve(sim.app()) as url, harness(
            tmp_path, transport="registry-rest", transport_options={"url": url},
            settings=fast) as gw:
        gw.feed("a.xml", sample_message("answer-1"))
        await gw.wait_for(lambda: gw.event_kinds().count("delivery.retry") >= 2)
        assert sim.inbox == []
        sim.down = False
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered"
    [received] = sim.inbox
    assert received.body == sample_message("answer-1")
    assert received.key.endswith(f"-{delivery.id}")  # the delivery's reference, every attempt


async def test_a_dropped_answer_is_repeated_under_the_same_key_and_kept_once(
        tmp_path: Path) -> None:
    sim = RegistrySimulator()
    sim.drop_after_storing = 1
    async with serve(sim.app()) as url, harness(
            tmp_path, transport="registry-rest", transport_options={"url": url}) as gw:
        gw.feed("a.xml", sample_message("answer-1"))
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered" and delivery.attempts == 2
    assert len(sim.inbox) == 1  # the repeat was recognised by its Idempotency-Key
    assert sum(r == "POST /inbox" for r in sim.requests) == 2


async def test_a_registry_that_refuses_makes_a_dead_letter_with_its_reason(tmp_path: Path) -> None:
    sim = RegistrySimulator(token="s3cret")
    async with serve(sim.app()) as url, harness(
            tmp_path, transport="registry-rest",
            transport_options={"url": url, "token": "wrong"}) as gw:
        gw.feed("a.xml", sample_message("answer-1"))
        [delivery] = await gw.settled(1)
    assert delivery.state == "dead"
    assert "HTTP 401" in (delivery.reason or "") and "s3cret" not in (delivery.reason or "")
    assert sim.inbox == []


async def test_the_token_is_sent(tmp_path: Path) -> None:
    sim = RegistrySimulator(residents(), token="s3cret")
    sim.add_event(MOVE)
    async with serve(sim.app()) as url, harness(
            tmp_path, source="registry-rest", source_options=POLLING,
            settings=registry(url, token="s3cret")) as gw:
        [delivery] = await gw.settled(1)
    assert delivery.state == "delivered"


def test_a_source_must_name_a_registry_partner(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[sources.events]\ntype = "registry-rest"\nregistry = "canton"\n'
                      '[partners.canton]\ntransport = "rest"\n[partners.canton.rest]\n'
                      'url = "https://canton.example/messages"\n')
    with pytest.raises(ConfigError, match=r"sources\.events\.registry: 'canton' is not a partner"):
        load_config(config, get_plugin_manager())

