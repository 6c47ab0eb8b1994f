"""The whole core with the real folder source, normaliser and routing, and a stub transport."""

from __future__ import annotations

from pathlib import Path

from tests.flow import StubTransport, drop, message, running, states, until, write_config


def delivery_states(db: Path) -> list[str]:
    return [r[0] for r in states(db, "SELECT state FROM deliveries ORDER BY id")]


async def test_dropped_messages_are_delivered_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ids = [f"flow-{n}" for n in range(20)]
    async with running(config):
        for n, mid in enumerate(ids):
            drop(tmp_path / "in", f"m{n}.xml", message(mid))
        await until(lambda: delivery_states(tmp_path / "gateway.db").count("delivered") == 20)
    sent = sorted(i.message_id or "" for i in StubTransport.sent["canton"])
    assert sent == sorted(ids)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(
        f"m{n}.xml" for n in range(20))
    assert list((tmp_path / "in").iterdir()) == []


async def test_transient_failures_are_retried(tmp_path: Path) -> None:
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.retry]\n'
               'initial = "10ms"\njitter = 0\n[partners.canton.stub]\nfail_transient = 2\n')
    config = write_config(tmp_path, partner)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("retry-me"))
        await until(lambda: delivery_states(tmp_path / "gateway.db") == ["delivered"])
    [(attempts,)] = states(tmp_path / "gateway.db", "SELECT attempts FROM deliveries")
    assert attempts == 3


async def test_permanent_failure_is_a_dead_letter(tmp_path: Path) -> None:
    partner = ('[partners.canton]\ntransport = "stub"\n[partners.canton.stub]\n'
               "fail_permanent = true\n")
    config = write_config(tmp_path, partner)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message("dead"))
        await until(lambda: delivery_states(tmp_path / "gateway.db") == ["dead"])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM deliveries")
    assert "partner refuses this message" in reason


async def test_not_routed_is_not_relevant(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace('route_to = ["canton"]', "route_to = []")
    config.write_text(text)
    async with running(config):
        drop(tmp_path / "in", "m.xml", message())
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("not_relevant",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason == "no rule routes it to a partner"


async def test_invalid_message_is_quarantined_with_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    bad = message().replace(b"eCH-0044:officialName>", b"eCH-0044:officialNam>", 2)
    async with running(config):
        drop(tmp_path / "in", "m.xml", bad)
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM messages") == [("quarantined",)])
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason.startswith("invalid eCH-0223 1.5: line ")
    assert delivery_states(tmp_path / "gateway.db") == []
