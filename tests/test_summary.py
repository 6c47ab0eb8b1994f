"""A busy gateway logs what it did at INFO, every summary_interval; an idle one stays quiet."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.flow import drop, message, running, states, until, write_config


def summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "gateway.summary" and r.levelno == logging.INFO]


@pytest.mark.asyncio
async def test_summary_counts_from_the_store_then_quiet_when_idle(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(
        'node_id = "test"\n', 'node_id = "test"\nsummary_interval = "200ms"\n'))
    with caplog.at_level(logging.INFO):
        async with running(config) as gateway:
            await asyncio.sleep(0.5)
            assert summaries(caplog) == [], "nothing happened: no summary"
            for n in range(3):
                drop(tmp_path / "in", f"m{n}.xml", message())
            drop(tmp_path / "in", "bad.xml", b"<broken>")
            db = gateway.settings.store.path
            await until(lambda: len(states(db, "SELECT id FROM deliveries WHERE state = 'delivered'"))
                        == 3 and len(states(db, "SELECT id FROM messages")) == 4)
            await until(lambda: len(summaries(caplog)) >= 1, timeout=3)
            await asyncio.sleep(0.6)
    lines = summaries(caplog)
    assert "".join(lines).count("received") >= 1
    total = {"received": 0, "delivered": 0, "failed": 0}
    for line in lines:
        counts = {kind: int(line.split(f" {kind}")[0].rsplit(" ", 1)[-1]) for kind in total}
        # The work may span several intervals (the unfinished bad.xml waits for its grace),
        # but an interval without work is never summarised.
        assert any(counts.values()), f"idle, yet a summary came: {lines}"
        for kind, count in counts.items():
            total[kind] += count
    assert total == {"received": 4, "delivered": 3, "failed": 1}
    assert lines[-1].endswith("0 pending")
