"""gateway.testing runs a source under test into ``collect`` and reports what was committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.api import Intake, PluginContext, PluginOptions, RawInput, SourceType, hookimpl
from gateway.errors import ConfigError
from gateway.testing import PARTNER, SOURCE, harness, sample_message


class TickerOptions(PluginOptions):
    count: int


class Ticker:
    """A source that submits ``count`` messages and one input nobody recognises, then idles."""

    def __init__(self, options: TickerOptions, context: PluginContext) -> None:
        self.count = options.count
        self.name = context.name

    async def run(self, intake: Intake) -> None:
        raws = [RawInput(self.name, f"tick-{n}", sample_message(f"tick-{n}", seed=n))
                for n in range(self.count)]
        await intake.submit([*raws, RawInput(self.name, "junk", b"<junk/>")])
        await asyncio.Event().wait()


class TickerPlugin:
    @hookimpl
    def gateway_source_types(self) -> list[SourceType]:
        return [SourceType("ticker", TickerOptions, Ticker)]


async def test_a_source_under_test_delivers_into_collect(tmp_path: Path) -> None:
    async with harness(tmp_path, plugins=[TickerPlugin()], source="ticker",
                       source_options={"count": 3}) as gw:
        deliveries = await gw.settled(3)
        await gw.wait_for(lambda: "message.quarantined" in gw.event_kinds())
    assert [d.state for d in deliveries] == ["delivered"] * 3
    assert sorted(item.message_id or "" for item in gw.collected) == ["tick-0", "tick-1", "tick-2"]
    states = {m.ref: (m.source, m.state) for m in gw.messages()}
    assert states == {"tick-0": (SOURCE, "routed"), "tick-1": (SOURCE, "routed"),
                      "tick-2": (SOURCE, "routed"), "junk": (SOURCE, "quarantined")}
    senders = {m.ref: m.sender_id for m in gw.messages()}  # the header senderId, if read
    sample_sender = senders["tick-0"]
    assert sample_sender and senders == {"tick-0": sample_sender, "tick-1": sample_sender,
                                         "tick-2": sample_sender, "junk": None}
    [quarantined] = [e for e in gw.events if e.kind == "message.quarantined"]
    assert quarantined.message == next(m.id for m in gw.messages() if m.ref == "junk")


async def test_a_config_the_plugin_refuses_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        async with harness(tmp_path, plugins=[TickerPlugin()], source="ticker",
                           source_options={"cuont": 3}):
            raise AssertionError("started with a bad option")
    assert "sources.drop.cuont: unknown key 'cuont'" in str(caught.value)
    assert "did you mean 'count'?" in str(caught.value)


async def test_from_partner_stores_what_the_partner_sent_as_its_transport_would(
        tmp_path: Path) -> None:
    async with harness(tmp_path) as gw:
        mid = await gw.from_partner(sample_message("answer-1"), ref="answer.xml")
        await gw.wait_for(lambda: gw.messages()[0].state != "received")
    [stored] = gw.messages()
    assert (stored.id, stored.source, stored.ref, stored.message_id) == (
        mid, PARTNER, "answer.xml", "answer-1")
