"""Retention and disk space (FIELD.md: the message log must not grow until the disk is full).

A running daemon prunes settled messages once unchanged for ``[retention] keep``, and the
database file shrinks; the files archived beside the store (``done_dir``, sedex receipts)
go too; a nearly full disk is said once, journaled, and by ``status``, and
so is its end. The disk is a real small tmpfs in a private mount namespace
(:mod:`tests.mounts`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.archives import BATCH, ArchivedFiles, Pruned, archive_folders
from gateway.assembly import load_config
from gateway.cli.exitcodes import ATTENTION, CONFIG, FAILED, OK
from gateway.config import write_initial_config
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.plugins import get_plugin_manager
from gateway.retry import RetryPolicy
from gateway.store import SQLiteStore
from gateway.testing import drop, states, until
from tests.flow import message, running, write_config
from tests.mounts import ext4, frozen, require_fuse, run_isolated, tmpfs, unanswering
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
    events, pm = Events.listening()
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
        # the copies in done_dir go too: the store no longer holds the inputs either
        await until(lambda: not any((tmp_path / "done").iterdir()), timeout=20)
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


async def test_the_daemon_deletes_persons_who_left_the_register_and_keeps_residents(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A registry's base delivery, then a moveOut: once keep has passed and the messages
    are pruned, the person who moved out is deleted; the base delivery's residents stay."""
    corpus = Path(__file__).parent / "fixtures" / "ech0020"
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "300ms"\n')
    db = tmp_path / "gateway.db"
    events, pm = Events.listening()
    caplog.set_level(logging.INFO, logger="gateway.retention")
    async with running(config, pm):
        drop(tmp_path / "in", "base.xml", (corpus / "baseDelivery.xml").read_bytes())
        await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])
        residents = states(db, "SELECT count(*) FROM persons")[0][0]
        drop(tmp_path / "in", "out.xml", (corpus / "moveOut.xml").read_bytes())
        await until(lambda: states(db, "SELECT count(*) FROM persons WHERE departed_at"
                                       " IS NOT NULL") == [(1,)])
        await until(lambda: states(db, "SELECT count(*) FROM persons") == [(residents - 1,)],
                    timeout=20)
    assert residents > 1
    assert states(db, "SELECT count(*) FROM persons WHERE departed_at IS NOT NULL") == [(0,)]
    [pruned_event] = [e for e in events.seen if e.kind == "store.persons_pruned"]
    assert pruned_event.detail["persons"] == 1
    shown = cli(config, "persons", "show", "7565108772783")  # moveOut.xml's person
    assert shown.returncode != OK and "no person" in (shown.stdout + shown.stderr)
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["persons"] == {"known": residents - 1, "departed": 0}
    said = [r.getMessage() for r in caplog.records if "who left the register" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        "retention: deleted the states of 1 person who left the register before ")
    assert "7565108772783" not in caplog.text and "Berisha" not in caplog.text  # no personal data
    assert cli(config, "journal", "verify").returncode == OK


def deliver_three(config: Path) -> None:
    """Run the gateway of ``config`` until three messages dropped into ``in`` are delivered."""
    db = config.parent / "gateway.db"

    async def run() -> None:
        async with running(config, get_plugin_manager()):
            for n in range(3):
                drop(config.parent / "in", f"m{n}.xml", message(documents=False))
            await until(lambda: states(db, "SELECT count(*) FROM deliveries"
                                           " WHERE state = 'delivered'") == [(3,)])
    asyncio.run(run())


def test_prune_command_counts_first_then_prunes(tmp_path: Path) -> None:
    # a daemon that prunes once a day (at its start: nothing yet); the command does it now
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"
    deliver_three(config)
    time.sleep(1.2)  # the three are unchanged for longer than keep
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK and dry.stdout.startswith("3 settled messages unchanged since")
    assert pruned(db) == 0
    done = cli(config, "prune")
    assert done.returncode == OK and done.stdout.startswith("pruned 3 settled messages")
    assert pruned(db) == 3
    assert cli(config, "prune").stdout.startswith("pruned 0 ")


def test_a_rejection_nobody_handled_keeps_its_message_until_it_is(tmp_path: Path) -> None:
    """A delivery the canton rejected needs a case worker, who needs the message refused:
    it is kept, however old, until an operator handles the rejection."""
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"
    deliver_three(config)
    # the canton's negative eventReport on the first (the way back, tests/test_way_back.py,
    # sets it so): done here in the database, as the store records it
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE deliveries SET state = 'rejected' WHERE message = 1")
    time.sleep(1.2)  # the three are unchanged for longer than keep
    assert cli(config, "prune").stdout.startswith("pruned 2 settled messages")
    assert states(db, "SELECT id FROM messages WHERE pruned_at IS NULL") == [(1,)]
    handled = cli(config, "messages", "handle", "1", "--note", "called the canton")
    assert handled.returncode == OK, handled.stderr
    assert cli(config, "prune").stdout.startswith("pruned 1 settled message")
    assert pruned(db) == 3


def test_prune_command_counts_and_deletes_persons_who_left_the_register(tmp_path: Path) -> None:
    # the daemon prunes once a day; the moveOut's person goes with the command, once the
    # messages about them are pruned (the dry run counts them as the run would)
    corpus = Path(__file__).parent / "fixtures" / "ech0020"
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"

    async def run() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "in", "base.xml", (corpus / "baseDelivery.xml").read_bytes())
            await until(lambda: states(db, "SELECT count(*) FROM persons") != [(0,)])
            drop(tmp_path / "in", "out.xml", (corpus / "moveOut.xml").read_bytes())
            await until(lambda: states(db, "SELECT count(*) FROM deliveries"
                                           " WHERE state = 'delivered'") == [(1,)])
    asyncio.run(run())
    time.sleep(1.2)
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK, dry.stderr
    assert dry.stdout.splitlines()[1].startswith("1 person who left the register before ")
    known = states(db, "SELECT count(*) FROM persons")[0][0]
    assert f"persons:    {known} known, 1 of them left the register" in cli(config, "status").stdout
    done = cli(config, "prune")
    assert done.returncode == OK, done.stderr
    assert done.stdout.splitlines()[1].startswith("deleted 1 person who left the register")
    assert states(db, "SELECT count(*) FROM persons WHERE departed_at IS NOT NULL") == [(0,)]
    assert cli(config, "prune").stdout.splitlines()[1].startswith("deleted 0 persons ")


def record_unmatched(db: Path, at: float, raw: bytes) -> None:
    """Record at ``at`` (store time) a receipt for a message of another application."""
    store = SQLiteStore(db, group_commit_delay=0.001, clock=lambda: at)
    store.start()
    try:
        receipt = Receipt(raw.hex(), ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC), raw)
        assert asyncio.run(store.record_receipts([receipt], lambda _p: RetryPolicy())) == [False]
    finally:
        store.close()


def cutoff(said: str) -> str:
    """The time ``keep`` ago as the prune command's first line says it."""
    found = re.search(r" since (\S+\+00:00)", said)
    assert found, said
    return found[1]


def test_prune_command_counts_and_deletes_the_bytes_of_unmatched_receipts(tmp_path: Path) -> None:
    # a shared receipts folder brought receipts for other applications' messages, one two days
    # ago, one just now: a keep of a day takes the older one's bytes; both rows stay
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1d"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"
    record_unmatched(db, time.time() - 2 * 86400, b"<old/>")
    record_unmatched(db, time.time(), b"<recent/>")
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK, dry.stderr
    assert dry.stdout.splitlines()[2] == \
        f"the bytes of 1 unmatched receipt recorded before {cutoff(dry.stdout)} would be deleted"
    assert states(db, "SELECT raw FROM receipts ORDER BY id") == [(b"<old/>",), (b"<recent/>",)]
    done = cli(config, "prune")
    assert done.returncode == OK, done.stderr
    assert done.stdout.splitlines()[2] == (
        f"deleted the bytes of 1 unmatched receipt recorded before {cutoff(done.stdout)}:"
        " receipts that matched no delivery (records and journal remain)")
    assert states(db, "SELECT raw, code FROM receipts ORDER BY id") == [
        (None, "100"), (b"<recent/>", "100")]
    assert journal_count(db, "store.receipts_pruned") == 1
    assert cli(config, "prune").stdout.splitlines()[2].startswith(
        "deleted the bytes of 0 unmatched receipts ")


def test_prune_deletes_archived_files_moved_there_before_keep_files(tmp_path: Path) -> None:
    # messages keep their bodies forever; the files archived in done_dir stay one second
    config = gateway_folder(tmp_path, '[retention]\nkeep = "0"\nkeep_files = "1s"\n'
                                      'interval = "1d"\n')
    db, done = tmp_path / "gateway.db", tmp_path / "done"
    deliver_three(config)
    (done / "unmatched").mkdir()
    (done / "unmatched" / "old-receipt.xml").write_bytes(b"<receipt/>")
    outside = tmp_path / "not-archived.xml"
    outside.write_bytes(b"<x/>")
    (done / "link.xml").symlink_to(outside)
    time.sleep(1.2)  # all of those were moved (or made) there more than a second ago
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK, dry.stderr
    assert dry.stdout.splitlines() == [
        "[retention] keep is 0: messages keep their bodies forever",
        f"4 archived files moved there more than 1s ago would be deleted (4 in {done})"]
    assert len(list(done.rglob("*.xml"))) == 5
    pruned_now = cli(config, "prune")
    assert pruned_now.returncode == OK, pruned_now.stderr
    assert pruned_now.stdout.splitlines()[1] == \
        f"4 archived files moved there more than 1s ago deleted (4 in {done})"
    # a link is neither followed nor deleted; the store still holds the inputs
    assert sorted(p.name for p in done.rglob("*")) == ["link.xml", "unmatched"]
    assert outside.read_bytes() == b"<x/>"
    assert states(db, "SELECT count(*) FROM messages WHERE pruned_at IS NULL") == [(3,)]
    assert cli(config, "prune").stdout.splitlines()[1].startswith("0 archived files")


async def test_a_file_moved_there_later_stays_until_its_own_time(tmp_path: Path) -> None:
    archive = tmp_path / "done"
    archive.mkdir()
    (archive / "older.xml").write_bytes(b"<x/>")
    time.sleep(0.05)
    (archive / "newer.xml").write_bytes(b"<x/>")
    newer = (archive / "newer.xml").stat().st_ctime
    # an hour after the newer one came, less 10 ms: the older one is due, the newer not
    files = ArchivedFiles({archive: 60.0}, 3600.0, clock=lambda: newer + 3600.0 - 0.01)
    assert await files.prune_in(archive, dry_run=True) == Pruned(1)
    assert await files.prune() == 1
    assert [p.name for p in archive.iterdir()] == ["newer.xml"]
    assert await ArchivedFiles({tmp_path / "missing": 60.0}, 1.0).prune() == 0


def test_files_are_kept_forever_with_keep_files_0(tmp_path: Path) -> None:
    config = gateway_folder(tmp_path, '[retention]\nkeep_files = "0"\n')
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "m0.xml").write_bytes(b"<x/>")
    done = cli(config, "prune")
    assert done.returncode == OK, done.stderr
    assert done.stdout.splitlines()[1] == "[retention] keep_files is 0: archived files are kept forever"
    assert (tmp_path / "done" / "m0.xml").exists()


def test_prune_before_the_gateway_ever_ran_still_counts_the_archived_files(tmp_path: Path) -> None:
    config = gateway_folder(tmp_path, '[retention]\nkeep_files = "0"\n')
    dry = cli(config, "prune", "--dry-run")
    assert dry.returncode == OK, dry.stderr
    assert dry.stdout.splitlines() == [
        f"no database at {tmp_path / 'gateway.db'} yet: no messages to prune",
        "[retention] keep_files is 0: archived files are kept forever"]
    assert not (tmp_path / "gateway.db").exists()


def test_the_folders_init_writes_that_retention_empties(tmp_path: Path) -> None:
    """...each with how long a call into it may take: its plugin's ``write_timeout``."""
    config = write_initial_config(tmp_path)
    (config.parent / "conf.d" / "90-timeout.toml").write_text(
        '[sources.registry]\nwrite_timeout = "5s"\n')
    settings = load_config(config, get_plugin_manager())
    assert archive_folders(settings) == {tmp_path / "registry" / "done": 5.0,
                                         tmp_path / "sedex" / "receipts-done": 60.0}


async def test_an_archive_folder_is_pruned_a_batch_per_call(tmp_path: Path) -> None:
    """A call into the folder looks at a batch of entries (each call is bounded in time);
    the files due are deleted in all of them, subfolders' too."""
    archive = tmp_path / "done"
    (archive / "sub").mkdir(parents=True)
    for n in range(BATCH + 5):
        (archive / f"m{n}.xml").write_bytes(b"<x/>")
    (archive / "sub" / "r.xml").write_bytes(b"<x/>")
    files = ArchivedFiles({archive: 60.0}, 1.0, clock=lambda: time.time() + 60)
    assert await files.prune() == BATCH + 6
    assert [p.name for p in archive.rglob("*")] == ["sub"]


def archive_unanswering(root_text: str) -> None:
    """(In a private mount namespace.) An archive folder's share does not answer (its server
    is gone): pruning it is given up on after its timeout, said, and the next folder is
    pruned; the next run fails at once; the runs end while the share still hangs."""
    root = Path(root_text)
    share, other = root / "share", root / "other"
    (share / "done").mkdir(parents=True)
    other.mkdir()
    (other / "old.xml").write_bytes(b"<x/>")
    files = ArchivedFiles({share / "done": 1.0, other: 60.0}, 3600.0,
                          clock=lambda: time.time() + 7200)
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("gateway.archives").addHandler(handler)
    logging.getLogger("gateway.archives").setLevel(logging.INFO)

    async def runs() -> list[int]:
        return [await files.prune(), await files.prune()]

    with unanswering(share, safety=20) as hangs:
        assert asyncio.run(runs()) == [1, 0]
        assert hangs(), "retention waited until the share was cut off"
    assert not (other / "old.xml").exists()
    gave_up = (f"retention: cannot delete old files in {share / 'done'}: not done within 1s"
               " (does its file system hang?)")
    assert said == [gave_up, f"retention: deleted 1 file archived in {other} more than 1h ago",
                    gave_up]


def test_an_archive_folder_that_does_not_answer_holds_up_no_other(tmp_path: Path) -> None:
    """Deleting old files in an archive folder on a share that hangs is a bounded call,
    given up on like its plugin's own calls into it: neither the other folders, nor the
    rest of retention (it goes on to the messages), nor the stop wait for it."""
    require_fuse()
    run_isolated("tests.test_retention:archive_unanswering", str(tmp_path))


def prune_frozen(root_text: str) -> None:
    """(In a private mount namespace.) ``prune`` while one archive folder's file system
    holds up every write (its server stopped answering): deleting there is given up on
    after its source's write_timeout, the next folder is pruned, and the command names the
    folder; it exits FAILED."""
    root = Path(root_text)
    share = root / "share"
    ext4(share)
    config = gateway_folder(root, '[sources.other]\ntype = "folder"\npath = "in2"\n'
                                  'done_dir = "done2"\nroute_to = ["canton"]\n'
                                  '[retention]\nkeep = "0"\nkeep_files = "1s"\n')
    config.write_text(config.read_text().replace(
        'done_dir = "done"', f'done_dir = "{share / "done"}"\nwrite_timeout = "1s"'))
    for done in (share / "done", root / "done2"):
        done.mkdir()
        (done / "old.xml").write_bytes(b"<x/>")
    time.sleep(1.2)  # both were moved there more than keep_files ago
    errors: list[str] = []
    with frozen(share, safety=60):
        prune = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config),
                                  "prune"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        assert prune.stderr is not None
        reader = threading.Thread(target=lambda: errors.extend(prune.stderr or ()), daemon=True)
        reader.start()
        gave_up = (f"cannot delete the old archived files in {share / 'done'}: not done"
                   " within 1s (does its file system hang?)\n")
        asyncio.run(until(lambda: gave_up in errors, timeout=30))
        assert not (root / "done2" / "old.xml").exists()
    # (its thread waits in the frozen file system, uninterruptibly: the process ends once
    # it thaws; on a share whose server is gone, at once)
    out, _ = prune.communicate(timeout=30)
    reader.join(timeout=30)
    assert prune.returncode == FAILED, (out, errors)
    assert out.splitlines()[1] == ("1 archived file moved there more than 1s ago deleted"
                                   f" (0 in {share / 'done'}, 1 in {root / 'done2'})")


def test_prune_names_an_archive_folder_that_does_not_answer_and_goes_on(tmp_path: Path) -> None:
    """``ech-gateway prune`` deletes in calls bounded like the daemon's retention: an
    archive folder on a share that hangs is named with the time it was given, not waited
    for; the other folders are pruned all the same, and the command fails."""
    run_isolated("tests.test_retention:prune_frozen", str(tmp_path))


def test_an_archive_folder_holding_the_database_is_refused(tmp_path: Path) -> None:
    # retention would delete gateway.toml, the drop folder's waiting files, the documents
    config = gateway_folder(tmp_path, "")
    config.write_text(config.read_text().replace('done_dir = "done"', 'done_dir = "."'))
    checked = cli(config, "check-config")
    assert checked.returncode == CONFIG
    assert f"sources.registry.done_dir: {tmp_path} holds the database ({tmp_path / 'gateway.db'})" \
        in checked.stdout
    assert "give it a folder of its own" in checked.stdout
    assert cli(config, "run").returncode == CONFIG
    # a folder holding another folder the gateway uses is refused too
    config.write_text(config.read_text().replace('done_dir = "."', f'done_dir = "{tmp_path}/in/.."'))
    assert "holds" in cli(config, "check-config").stdout
    config.write_text(config.read_text().replace(f'done_dir = "{tmp_path}/in/.."',
                                                 'done_dir = "in/done"'))
    refused = cli(config, "check-config").stdout
    assert "sources.registry.done_dir" not in refused, refused


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
    events, pm = Events.listening()
    with alerts() as log:
        async with running(config_path, pm) as gateway:
            # said at the start, once; status tells while it lasts
            await until(lambda: events.kinds("store.space") == ["store.space_low"])
            status = cli(config_path, "status")
            assert status.returncode == ATTENTION, status.stdout + status.stderr
            # the free space in a unit that shows it, not "0.0 GiB free" beside "2 MiB free",
            # nor "0 MiB free" for 0.9 MiB
            free = re.search(r"\b(\d\.\d) MiB free on its disk", status.stdout)
            assert free is not None and free.group(1) != "0.0", status.stdout
            assert f"  {free.group(1)} MiB free on the database's disk, below [retention]" \
                " warn_free_below" in status.stdout, status.stdout
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


async def disk_nearly_full_at_the_stop(root_text: str) -> None:
    """(In a private mount namespace.) The daemon stops while its disk is low on space."""
    root = Path(root_text)
    tmpfs(root / "data", "8m")
    config_path = root / "gateway.toml"
    config_path.write_text(gateway_folder(root, f'[retention]\nwarn_free_below = "4MiB"\n'
                                                f'[store]\npath = "{root}/data/gateway.db"\n')
                           .read_text().replace('[store]\npath = "gateway.db"\n', ""))
    free = os.statvfs(root / "data")
    (root / "data" / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - (2 << 20)))
    said: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("gateway.alerts")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # an incident alerted once ends at INFO
    try:
        async with running(config_path) as gateway:
            await until(lambda: gateway.retention.low)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [line for line in said if line.startswith("store.space_low")] == [
        "store.space_low: open at the stop, after 0s, 1 in all"], said


def test_a_disk_low_on_space_at_the_stop_is_said_open(tmp_path: Path) -> None:
    """The committed ``store.space_low``, never ended by ``store.space_ok``: the stop says
    it is open, as it says a partner's failing attempts."""
    run_isolated("tests.test_retention:disk_nearly_full_at_the_stop", str(tmp_path))


def test_prune_prints_its_times_as_every_command_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local time with its UTC offset and milliseconds (README: one time format everywhere)."""
    config = gateway_folder(tmp_path, '[retention]\nkeep = "30d"\n')
    store = SQLiteStore(tmp_path / "gateway.db")
    store.start()
    store.close()
    monkeypatch.setenv("TZ", "Europe/Zurich")  # for the command's process
    for argv in (["prune", "--dry-run"], ["prune"]):
        done = cli(config, *argv)
        assert done.returncode == OK, done.stderr
        times = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d)?", done.stdout)
        assert len(times) == 3, done.stdout
        for said in times:
            at = datetime.fromisoformat(said)
            assert said == datetime.fromtimestamp(at.timestamp(), ZoneInfo("Europe/Zurich")
                                                  ).isoformat(timespec="milliseconds")
            assert abs(at.timestamp() - (time.time() - 30 * 86400)) < 60


def test_a_moveout_dated_before_a_later_movein_leaves_the_person_a_resident(
        tmp_path: Path) -> None:
    """Valon Berisha moved in on 1 November; the registry's moveOut of 25 October arrives
    after it (a delivery held up). It is forwarded as any moveOut, but it is older than the
    person's state: it marked him gone ("left the register"), and retention deleted the
    state of a resident once the messages about him were pruned."""
    from tests.test_ech0020_vendors import BERISHA, NS, berisha, variant

    def moving_in(root: Any) -> None:
        berisha(root)
        names = root.find(".//e20:nameData", NS)
        names.find("e11:officialName", NS).text, names.find("e11:firstName", NS).text = \
            "Berisha", "Valon"

    corpus = Path(__file__).parent / "fixtures" / "ech0020"
    config = gateway_folder(tmp_path, '[retention]\nkeep = "1s"\ninterval = "1d"\n')
    db = tmp_path / "gateway.db"
    move_in = variant(tmp_path, "moveIn-abroad.xml", "moveIn.xml", moving_in, "2026-11-01")
    move_out = variant(tmp_path, "moveOut.xml", "moveOut.xml", lambda root: None, "2026-10-25")

    async def run() -> None:
        async with running(config, get_plugin_manager()):
            for n, data in enumerate([(corpus / "baseDelivery.xml").read_bytes(),
                                      move_in.read_bytes(), move_out.read_bytes()], 1):
                drop(tmp_path / "in", f"{n}.xml", data)
                await until(lambda n=n: states(db, "SELECT count(*) FROM messages WHERE state"
                                                   " NOT IN ('received')") == [(n,)])
            await until(lambda: states(db, "SELECT count(*) FROM deliveries"
                                           " WHERE state = 'delivered'") == [(2,)])
    asyncio.run(run())
    assert states(db, "SELECT ref, state FROM messages ORDER BY id") == [
        ("1.xml", "not_relevant"), ("2.xml", "routed"), ("3.xml", "routed")]  # forwarded
    shown = cli(config, "persons", "show", BERISHA)
    assert shown.returncode == OK, shown.stderr
    assert "left the register" not in shown.stdout
    time.sleep(1.2)  # the messages are unchanged for longer than keep
    done = cli(config, "prune")
    assert done.returncode == OK, done.stderr
    assert done.stdout.splitlines()[1].startswith("deleted 0 persons who left the register")
    assert cli(config, "persons", "show", BERISHA).returncode == OK
