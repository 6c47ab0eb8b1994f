"""Retention and disk space (FIELD.md: the message log must not grow until the disk is full).

A running daemon prunes settled messages once unchanged for ``[retention] keep``, and the
database file shrinks; a nearly full disk is said once, journaled, and by ``status``, and
so is its end. The disk is a real small tmpfs in a private mount namespace
(:mod:`tests.mounts`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.cli.exitcodes import ATTENTION, OK
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, states, until
from tests.flow import message, running, write_config
from tests.mounts import run_isolated, tmpfs
from tests.test_recovery import Events, alerts, journal_count

MESSAGES = 300


def cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *argv],
                          capture_output=True, text=True, timeout=60, check=False)


def gateway_folder(root: Path, extra: str) -> Path:
    """A gateway whose registry folder routes to a canton reached through a folder; its config."""
    (root / "canton").mkdir(parents=True, exist_ok=True)
    return write_config(root, '[partners.canton]\ntransport = "folder"\n'
                              '[partners.canton.folder]\npath = "canton"\nsync = false\n', extra)


def size(db: Path) -> int:
    """The database's size in bytes: its pages, whether in the file yet or still in the WAL."""
    [(pages, page_size)] = states(db, "SELECT * FROM pragma_page_count, pragma_page_size")
    return int(pages) * int(page_size)


def pruned(db: Path) -> int:
    return int(states(db, "SELECT count(*) FROM messages WHERE pruned_at IS NOT NULL")[0][0])


async def test_the_daemon_prunes_settled_messages_and_the_file_shrinks(tmp_path: Path) -> None:
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "500ms"\n')
    db = tmp_path / "gateway.db"
    inputs = [message(documents=False) for _ in range(MESSAGES)]
    pm = get_plugin_manager()
    events = Events()
    pm.register(events)
    async with running(config, pm):
        for n, data in enumerate(inputs):
            drop(tmp_path / "in", f"m{n}.xml", data)
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                    == [(MESSAGES,)], timeout=30)
        full = size(db)
        await until(lambda: pruned(db) == MESSAGES, timeout=20)
        # the freed pages go back to the file system at the next checkpoints
        await until(lambda: size(db) <= full - sum(map(len, inputs)) * 3 // 4, timeout=20)
        await until(lambda: db.stat().st_size == size(db), timeout=20)
    assert states(db, "SELECT count(*) FROM payloads WHERE length(raw) > 0") == [(0,)]
    assert journal_count(db, "store.pruned") >= 1
    assert sum(e.detail["messages"] for e in events.seen if e.kind == "store.pruned") == MESSAGES
    # the records and the journal stay: the history is still told, and still verifies
    shown = cli(config, "messages", "show", "1")
    assert shown.returncode == OK and "pruned" in shown.stdout and "delivered" in shown.stdout
    raw = cli(config, "messages", "show", "1", "--raw")
    assert raw.returncode != OK and "message 1 was pruned at" in raw.stderr
    assert cli(config, "journal", "verify").returncode == OK
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["pruned"] == MESSAGES and status["verdict"] == "ok"


def test_prune_command_counts_first_then_prunes(tmp_path: Path) -> None:
    # a daemon that prunes once a day (at its start: nothing yet); the command does it now
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"

    async def deliver_three() -> None:
        async with running(config, get_plugin_manager()):
            for n in range(3):
                drop(tmp_path / "in", f"m{n}.xml", message(documents=False))
            await until(lambda: states(db, "SELECT count(*) FROM deliveries"
                                           " WHERE state = 'delivered'") == [(3,)])
    asyncio.run(deliver_three())
    time.sleep(1.2)  # the three are unchanged for longer than keep
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK and dry.stdout.startswith("3 settled messages unchanged since")
    assert pruned(db) == 0
    done = cli(config, "prune")
    assert done.returncode == OK and done.stdout.startswith("pruned 3 settled messages")
    assert pruned(db) == 3
    assert cli(config, "prune").stdout.startswith("pruned 0 ")


async def disk_nearly_full_then_freed(root_text: str) -> None:
    """(In a private mount namespace.) The database's disk has less room than the threshold."""
    root = Path(root_text)
    tmpfs(root / "data", "8m")
    config = gateway_folder(root, f'[retention]\nwarn_free_below = "4MiB"\n'
                                  f'[store]\npath = "{root}/data/gateway.db"\n').read_text()
    config_path = root / "gateway.toml"
    config_path.write_text(config.replace('[store]\npath = "gateway.db"\n', ""))
    free = os.statvfs(root / "data")
    filler = root / "data" / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - (2 << 20)))  # 2 MiB left
    events = Events()
    pm = get_plugin_manager()
    pm.register(events)
    with alerts() as log:
        async with running(config_path, pm) as gateway:
            # said at the start, once; status tells while it lasts
            await until(lambda: events.kinds("store.space") == ["store.space_low"])
            status = cli(config_path, "status")
            assert status.returncode == ATTENTION, status.stdout + status.stderr
            assert "MiB free on the database's disk, below [retention] warn_free_below" \
                in status.stdout
            await gateway.retention.watch_space()
            assert events.kinds("store.space") == ["store.space_low"], "once per incident"
            filler.unlink()
            await gateway.retention.watch_space()
            assert events.kinds("store.space") == ["store.space_low", "store.space_ok"]
        low = next(e for e in events.seen if e.kind == "store.space_low")
        assert low.detail["threshold_bytes"] == 4 << 20 and low.detail["free_bytes"] < 4 << 20
    space = [line for line in log.lines if "database's disk" in line]
    assert len(space) == 2, log.lines
    assert space[0].startswith("WARNING gateway.alerts: the database's disk")
    assert "room again" in space[1]
    assert cli(config_path, "status").returncode == OK


def test_a_nearly_full_disk_is_said_once_and_its_end_too(tmp_path: Path) -> None:
    run_isolated("tests.test_retention:disk_nearly_full_then_freed", str(tmp_path))
