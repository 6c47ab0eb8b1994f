"""``status`` says a partner is failing while its deliveries have failed for longer than its
``failing_after``, and no longer once it takes deliveries again (FIELD.md: counts that
reflect the present)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from lxml import etree

from gateway.config import write_initial_config
from gateway.contracts import Normalised, RawInput, Route
from gateway.retry import RetryPolicy
from gateway.store import MessageState, Outcome, Processed, SQLiteStore
from tests.flow import message, states
from tests.test_cli import cli

HOUR = 3600.0


async def _route(db: Path, count: int, tag: str, at: float) -> None:
    """``count`` messages routed to the canton at time ``at``, each with one delivery queued."""
    store = SQLiteStore(db, clock=lambda: at)
    store.start()
    try:
        rows = await store.add_raw([RawInput("registry", f"{tag}-{i}.xml", message(f"{tag}-{i}"),
                                             {}) for i in range(count)])
        tree = etree.ElementTree(etree.Element("x"))
        await store.record_processing([
            Processed(mid, MessageState.ROUTED,
                      normalised=Normalised("personEventMessage", f"{tag}-{i}", b"<x/>", tree),
                      routes=[Route("canton", "test")])
            for i, (mid, _new) in enumerate(rows)])
    finally:
        store.close()


async def _attempt(db: Path, at: float, kind: str, limit: int = 10) -> list[int]:
    """Attempt the canton's due deliveries (at most ``limit``) at time ``at``, each with the
    outcome ``kind``; the deliveries attempted."""
    store = SQLiteStore(db, clock=lambda: at)
    store.start()
    try:
        claims = await store.claim_due("n1", 60, limit, ["canton"])
        await store.record_outcomes(
            [Outcome(c.delivery, c.attempt_ref, kind, "HTTP 503") for c in claims],
            lambda _partner: RetryPolicy(initial=1, jitter=0), {"canton": HOUR})
        return [c.delivery for c in claims]
    finally:
        store.close()


def _status(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, int], str]:
    """``status``'s exit code, its JSON ``failing`` and the text's ATTENTION lines."""
    code, out, _ = cli(capsys, "--config", str(config), "status", "--json")
    data = json.loads(out)
    failing = [r for r in data["reasons"] if r["kind"] == "failing"]
    assert failing == ([{"kind": "failing", "count": sum(data["failing"].values()),
                         "what": failing[0]["what"], "hint": failing[0]["hint"],
                         "partners": data["failing"]}] if data["failing"] else [])
    text_code, text, _ = cli(capsys, "--config", str(config), "status")
    assert text_code == code
    return code, data["failing"], text.split("ATTENTION:\n", 1)[-1] if code else ""


def test_a_partner_failing_for_longer_than_failing_after_needs_attention_until_it_works(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)  # canton's failing_after: 1h
    db = tmp_path / "gateway.db"
    two_hours_ago = time.time() - 2 * HOUR
    asyncio.run(_route(db, 2, "old", two_hours_ago))
    asyncio.run(_attempt(db, two_hours_ago, "transient"))  # failing for two hours
    assert states(db, "SELECT state FROM deliveries") == [("retry_wait",)] * 2
    code, failing, attention = _status(capsys, config)
    assert (code, failing) == (1, {"canton": 2})
    assert attention.startswith("  2 deliveries failing for longer than their partner's"
                                " failing_after: ech-gateway messages list --delivery-state"
                                " retry_wait")
    assert "failing: canton 2\n" in cli(capsys, "--config", str(config), "status")[1]
    # the partner takes one of them: it works again, though the other waits for its retry
    [taken] = asyncio.run(_attempt(db, time.time(), "sent", limit=1))
    assert _status(capsys, config) == (0, {}, "")
    # the other one fails again at its retry: the partner fails still (now and then)
    [again] = asyncio.run(_attempt(db, time.time() + 1, "transient", limit=1))
    assert again != taken
    code, failing, attention = _status(capsys, config)
    assert (code, failing) == (1, {"canton": 1})
    assert attention.startswith("  1 delivery failing for longer than its partner's failing_after")


def test_failing_after_is_the_partners_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    asyncio.run(_route(db, 1, "old", time.time() - 2 * HOUR))
    asyncio.run(_attempt(db, time.time() - 2 * HOUR, "transient"))
    assert _status(capsys, config)[:2] == (1, {"canton": 1})
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('failing_after = "1h"', 'failing_after = "3h"', 1),
                      encoding="utf-8")
    assert _status(capsys, config) == (0, {}, "")
    config.write_text(text.replace('failing_after = "1h"', 'failing_after = "1h"\nenabled = false',
                                   1), encoding="utf-8")
    assert _status(capsys, config)[:2] == (0, {}), "a disabled partner's deliveries are held"
