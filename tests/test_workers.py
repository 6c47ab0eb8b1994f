"""Worker processes: normalising beside the event loop, and surviving a worker's death."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from gateway.config import write_initial_config
from gateway.plugins import get_plugin_manager
from tests.flow import drop, message, running, states, until


def sent(db: Path) -> int:
    return states(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")[0][0]


async def test_a_killed_worker_loses_no_message(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text(
        '[gateway]\nworkers = 1\n[sources.registry]\npoll_interval = "50ms"\n'
        '[dispatcher]\nidle_poll = "50ms"\n')
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()) as gateway:
        pool = gateway.pipeline._pool
        assert pool is not None, "entry-point plugins only: processing runs in a worker"
        for pid in list(pool._processes):  # the worker dies, as after a crash in lxml
            os.kill(pid, signal.SIGKILL)
        for n in range(20):
            drop(tmp_path / "registry" / "outbox", f"m{n}.xml", message(f"after-kill-{n}"))
        await until(lambda: sent(db) == 20, timeout=30)
    assert "a worker process died" in caplog.text
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'routed'") == [(20,)]
