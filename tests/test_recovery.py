"""Recover without a restart, and a local fault is not the partner's fault (issue 7, items 6-7).

Faults are real: the sedex outbox deleted and created again, read-only
through a bind mount, hanging (its own file system, frozen), the database on
a small tmpfs filled up, the database file deleted under the running daemon. Mounts happen in a private mount
namespace (:mod:`tests.mounts`); those scenarios run in a child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any

import pluggy
import pytest

from gateway import daemon
from gateway.api import GatewayEvent, hookimpl
from gateway.cli.exitcodes import FAILED, OK, STORE_LOST
from gateway.daemon import Gateway
from gateway.errors import StoreLost
from gateway.plugins import get_plugin_manager
from gateway.store import Claim, SQLiteStore, StoreReader
from gateway.store.anchor import Anchor, read_anchor
from tests.flow import (
    drop,
    message,
    plugin_manager,
    running,
    sedex_partner,
    states,
    until,
    write_config,
)
from tests.mounts import ext4, fill, frozen, read_only, run_isolated, tmpfs, writable
from tests.test_sedex_e2e import BOTH, gateway_dir
from tests.test_sedex_transport import pair_from

MESSAGES = 20


class Events:
    """A ``gateway_event`` listener keeping every event."""

    def __init__(self) -> None:
        self.seen: list[GatewayEvent] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        self.seen.append(event)

    def kinds(self, prefix: str) -> list[str]:
        return [e.kind for e in self.seen if e.kind.startswith(prefix)]

    @classmethod
    def listening(cls) -> tuple[Events, pluggy.PluginManager]:
        """A listener and the gateway's plugin manager with it registered."""
        events, pm = cls(), get_plugin_manager()
        pm.register(events)
        return events, pm


class Alerts(logging.Handler):
    """The WARNING-and-above lines of the ``gateway`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def alerts(name: str = "gateway") -> Iterator[Alerts]:
    """The WARNING-and-above lines of logger ``name`` while in the block."""
    handler = Alerts()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def fast_probes(gateway: Gateway) -> None:
    """Probe a paused partner every 0.1-0.4 s instead of 2-60 s (the test's time)."""
    gateway.dispatcher.pauses.first, gateway.dispatcher.pauses.longest = 0.1, 0.4


def deliveries(db: Path) -> list[tuple[str, int]]:
    return states(db, "SELECT state, attempts FROM deliveries ORDER BY id")


def journal_count(db: Path, event: str) -> int:
    return int(states(db, "SELECT count(*) FROM journal WHERE event = ?", (event,))[0][0])


async def _outage_then_recovery(root: Path, break_outbox: object, mend_outbox: object) -> None:
    """Send while the outbox is broken, mend it: no attempt burned, one alert, all sent."""
    config = gateway_dir(root)
    db, outbox = root / "gateway.db", root / "sedex" / "outbox"
    events, pm = Events.listening()
    with alerts() as log:
        async with running(config, pm) as gateway:
            fast_probes(gateway)
            break_outbox()  # type: ignore[operator]
            for n in range(MESSAGES):
                drop(root / "registry" / "outbox", f"m{n}.xml", message())
            await until(lambda: len(deliveries(db)) == MESSAGES
                        and journal_count(db, "partner.paused") == 1)
            await asyncio.sleep(1.5)  # several probes meet the fault
            assert {d for d in deliveries(db)} <= {("sending", 1), ("queued", 0)}
            assert journal_count(db, "partner.resumed") == 0
            mend_outbox()  # type: ignore[operator]
            await until(lambda: deliveries(db) == [("sent", 1)] * MESSAGES)
    # every delivery went out on its first attempt, as one sedex message each
    assert len(list(outbox.glob("envl_*.xml"))) == MESSAGES
    assert states(db, "SELECT count(*) FROM attempts")[0][0] == MESSAGES
    assert journal_count(db, "delivery.retry_wait") == journal_count(db, "delivery.dead") == 0
    assert (journal_count(db, "partner.paused"), journal_count(db, "partner.resumed")) == (1, 1)
    assert events.kinds("partner.") == ["partner.paused", "partner.resumed"]
    assert not events.kinds("delivery.transient_failure")
    paused = [line for line in log.lines if "paused" in line]
    assert len(paused) == 1, log.lines
    assert "partner canton paused" in paused[0]
    assert len(log.lines) == 2, log.lines  # the pause and the resumption, nothing per delivery


async def test_sedex_outbox_deleted_and_created_again_resumes(tmp_path: Path) -> None:
    outbox = tmp_path / "sedex" / "outbox"
    await _outage_then_recovery(tmp_path, lambda: shutil.rmtree(outbox), outbox.mkdir)


async def outbox_read_only(root: str) -> None:
    """(In a private mount namespace.) The outbox is read-only for a while."""
    outbox = Path(root) / "sedex" / "outbox"
    await _outage_then_recovery(Path(root), lambda: read_only(outbox), lambda: writable(outbox))


def test_sedex_outbox_read_only_for_a_while_burns_no_attempt(tmp_path: Path) -> None:
    run_isolated("tests.test_recovery:outbox_read_only", str(tmp_path))


async def outbox_full(root: str) -> None:
    """(In a private mount namespace.) The outbox's file system is full for a while."""
    outbox = Path(root) / "sedex" / "outbox"
    tmpfs(outbox, "2m")
    await _outage_then_recovery(Path(root), lambda: fill(outbox),
                                lambda: (outbox / "filler").unlink())


def test_sedex_outbox_full_for_a_while_burns_no_attempt(tmp_path: Path) -> None:
    run_isolated("tests.test_recovery:outbox_full", str(tmp_path))


def _sent(db: Path, partner: str) -> int:
    return int(states(db, "SELECT count(*) FROM deliveries WHERE partner = ? AND state = 'sent'",
                      (partner,))[0][0])


async def outbox_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The canton's outbox stops answering (its file system
    is frozen: writers sleep uninterruptibly) while messages go to it and to a second partner
    of the same sedex client, whose outbox is elsewhere. Then the gateway stops, the file
    system answers again, and the gateway starts again."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    sedex = root / "sedex"
    outbox, registry = sedex / "outbox", root / "registry" / "outbox"
    for folder in ("outbox-b", "inbox-b"):
        (sedex / folder).mkdir()
    (root / "conf.d" / "20-hang.toml").write_text(
        '[partners.canton.sedex]\nwrite_timeout = "2s"\n'
        + sedex_partner(sedex, "canton-b", "T2-3-1", inbox="inbox-b", outbox="outbox-b") + BOTH)
    ext4(outbox)
    with ExitStack() as thawing:
        async with running(config, get_plugin_manager()):
            thawing.enter_context(frozen(outbox))
            for n in range(3):
                drop(registry, f"a{n}.xml", message())
            # the canton's attempts are given up on as unsure; the other partner's go on
            await until(lambda: journal_count(db, "delivery.unsure") >= 3
                        and _sent(db, "canton-b") == 3, timeout=30)
            for n in range(3):  # and so does the intake
                drop(registry, f"b{n}.xml", message())
            await until(lambda: _sent(db, "canton-b") == 6, timeout=30)
            reasons = {r for (r,) in states(db, "SELECT reason FROM deliveries"
                                                " WHERE partner = 'canton'")}
            assert (f"the sedex outbox {outbox} did not take the files within 2s; they may"
                    " have arrived") in reasons
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 10, "the stop waited for the outbox"
    async with running(config, get_plugin_manager()):  # it answers again
        await until(lambda: _sent(db, "canton") == 6, timeout=30)
    # each message went out as its first attempt, repeated, written once
    refs = [r for (r,) in states(db, "SELECT attempt_ref FROM deliveries WHERE partner = 'canton'")]
    assert sorted(p.name for p in outbox.glob("envl_*.xml")) == sorted(f"envl_{r}.xml" for r in refs)
    assert states(db, "SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery"
                      " WHERE d.partner = 'canton'") == [(6,)]


def test_a_sedex_outbox_that_hangs_holds_up_nothing_else(tmp_path: Path) -> None:
    """A write into an outbox that hangs ends after the partner's ``write_timeout`` as unsure:
    the attempts are repeated as the same sedex messages once it answers, never written twice;
    meanwhile intake and the other partners go on, and a stop does not wait for it. The log
    names the partner and the outbox."""
    output = run_isolated("tests.test_recovery:outbox_hangs", str(tmp_path), timeout=240)
    assert (f"sedex partner canton: writing into the outbox {tmp_path / 'sedex' / 'outbox'}"
            " failed: not done within 2s") in output


async def outbox_hangs_for_a_while(root_text: str) -> None:
    """(In a private mount namespace.) The canton's outbox stops answering for several
    ``write_timeout``s while inputs keep coming, then answers again."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    outbox, registry = root / "sedex" / "outbox", root / "registry" / "outbox"
    (root / "conf.d" / "20-hang.toml").write_text('[partners.canton.sedex]\nwrite_timeout = "2s"\n')
    ext4(outbox)
    latencies = []
    with alerts() as log:
        async with running(config, get_plugin_manager()) as gateway:
            fast_probes(gateway)
            with frozen(outbox):
                drop(registry, "a.xml", message())
                await until(lambda: journal_count(db, "partner.paused") == 1, timeout=30)
                for n in range(8):  # 8 s: four write_timeouts
                    started = time.monotonic()
                    drop(registry, f"b{n}.xml", message())
                    await until(lambda n=n: len(deliveries(db)) == n + 2, timeout=30)
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
                assert _sent(db, "canton") == 0
                status = await asyncio.to_thread(_run_cli, config, "status", "--json")
                [reason] = json.loads(status.stdout)["reasons"]
                assert (reason["kind"], reason["partner"], reason["count"]) == ("paused", "canton", 9)
                assert f"the sedex outbox {outbox} did not take the files within 2s" in reason["error"]
            await until(lambda: _sent(db, "canton") == 9, timeout=30)
    print("intake latencies while frozen:", ", ".join(f"{t:.2f}s" for t in latencies))
    assert max(latencies) < 2.0, latencies
    # the first message's attempt was unsure, repeated once the outbox answered; each
    # message went out as its first attempt, written once
    assert journal_count(db, "delivery.unsure") >= 1
    refs = [r for (r,) in states(db, "SELECT attempt_ref FROM deliveries")]
    assert sorted(p.name for p in outbox.glob("envl_*.xml")) == sorted(f"envl_{r}.xml" for r in refs)
    assert states(db, "SELECT count(*) FROM attempts") == [(9,)]
    assert (journal_count(db, "partner.paused"), journal_count(db, "partner.resumed")) == (1, 1)
    [paused] = [line for line in log.lines if "paused on node" in line]
    assert f"the sedex outbox {outbox} did not take the files within 2s" in paused
    assert [line for line in log.lines if "partner canton resumed on node" in line]


def test_a_sedex_outbox_that_hangs_pauses_its_partner_and_intake_goes_on(tmp_path: Path) -> None:
    """A write into an outbox that hangs pauses its partner (log, ``status``, alerts): no
    further round waits on the outbox, so new inputs are taken at once while it hangs for
    several ``write_timeout``s; once a probe finds it answering, the partner resumes and its
    deliveries go out, each as its first attempt, written once."""
    output = run_isolated("tests.test_recovery:outbox_hangs_for_a_while", str(tmp_path),
                          timeout=240)
    assert (f"sedex partner canton: writing into the outbox {tmp_path / 'sedex' / 'outbox'}"
            " failed: not done within 2s (does its file system hang?); the partner is paused"
            " until the outbox answers") in output


async def inbox_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the canton's sedex inbox and
    processed folder stops answering (frozen) once a pair arrived, while the registry drops
    messages for the canton. Then the gateway stops, the share answers again, and the
    gateway starts again."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    share, registry = root / "share", root / "registry" / "outbox"
    inbox, processed = share / "inbox", share / "processed"
    ext4(share)
    inbox.mkdir()
    processed.mkdir()
    (root / "conf.d" / "20-hang.toml").write_text(
        f'[partners.canton.sedex]\nwrite_timeout = "2s"\ninbox = "{inbox}"\n'
        f'processed = "{processed}"\n')
    pair_from(inbox, "P1", "T2-2-1")
    with ExitStack() as thawing, alerts("plugins") as log:
        thawing.enter_context(frozen(share))
        async with running(config, get_plugin_manager()):
            await until(lambda: _stored(db, "canton") == 1, timeout=30)
            failed = (f"sedex partner canton: scanning {inbox} failed: moving 2 files into"
                      f" {processed}: not done within 2s (does its file system hang?)")
            await until(lambda: any(failed in line for line in log.lines), timeout=10)
            for n in range(3):  # the intake and the canton's sends go on
                drop(registry, f"a{n}.xml", message())
                await until(lambda n=n: _sent(db, "canton") == n + 1, timeout=10)
            assert sum(failed in line for line in log.lines) == 1, log.lines
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 10, "the stop waited for the inbox"
        assert _stored(db, "canton") == 1
    async with running(config, get_plugin_manager()):  # it answers again
        await until(lambda: sorted(p.name for p in processed.iterdir())
                    == ["data_P1.xml", "envl_P1.xml"], timeout=30)
        await asyncio.sleep(0.5)
    assert _stored(db, "canton") == 1  # the pair was stored once


def _stored(db: Path, source: str) -> int:
    return int(states(db, "SELECT count(*) FROM messages WHERE source = ?", (source,))[0][0])


def test_a_sedex_inbox_that_hangs_holds_up_nothing_else(tmp_path: Path) -> None:
    """Moving a stored pair into a processed folder whose share hangs is given up on after
    ``write_timeout``: the log says so once, naming the partner and the folders; intake and
    sending go on, a stop does not wait for it, and the pair is stored once."""
    run_isolated("tests.test_recovery:inbox_hangs", str(tmp_path), timeout=240)


async def drop_folder_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the registry's drop folder and its
    done_dir stops answering (frozen) just after a file was dropped, while another source's
    files come in; one worker process. The gateway stops and starts again while it hangs,
    then once it answers."""
    root = Path(root_text)
    config, db = write_config(root), root / "gateway.db"
    share, other = root / "share", root / "other"
    drops, done = share / "in", share / "done"
    ext4(share)
    for folder in (drops, done, other, root / "conf.d"):
        folder.mkdir()
    (root / "conf.d" / "20-hang.toml").write_text(
        f'[gateway]\nworkers = 1\n[sources.registry]\npath = "{drops}"\ndone_dir = "{done}"\n'
        f'settle = "1s"\nwrite_timeout = "1s"\n[sources.other]\ntype = "folder"\n'
        f'path = "{other}"\npoll_interval = "50ms"\nsettle = "0s"\nroute_to = ["canton"]\n')

    def delivered() -> int:
        return int(states(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'")[0][0])

    def said(text: str) -> int:
        return sum(text in line for line in log.lines)

    moving = (f"source registry: taking files from {drops} failed: moving 1 file into {done}:"
              " not done within 1s (does its file system hang?)")
    creating = (f"source registry: taking files from {drops} failed: creating {drops}: not"
                " done within 1s (does its file system hang?)")
    with alerts("plugins") as log, ExitStack() as thawing:
        async with running(config, plugin_manager()):
            drop(drops, "a.xml", message())
            thawing.enter_context(frozen(share))  # within settle: a.xml is read frozen
            await until(lambda: said(moving), timeout=20)
            for n in range(3):  # the other source, the worker and the partner go on
                drop(other, f"o{n}.xml", message())
                await until(lambda n=n: delivered() == n + 2, timeout=20)
            assert said(moving) == 1, log.lines
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 10, "the stop waited for the drop folder"
        async with running(config, plugin_manager()):  # a start while it hangs
            drop(other, "o3.xml", message())
            await until(lambda: delivered() == 5 and said(creating) == 1, timeout=20)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 10, "the stop waited for the drop folder"
    async with running(config, plugin_manager()):  # it answers again
        await until(lambda: not (drops / "a.xml").exists(), timeout=20)
        await asyncio.sleep(0.5)
    # a.xml was stored once and sent once; taken again (the killed worker did not move it),
    # it is a duplicate
    assert states(db, "SELECT state FROM messages WHERE source = 'registry' ORDER BY id")[1:] in (
        [], [("duplicate",)])
    assert delivered() == 5
    assert (done / "a.xml").exists()


def test_a_drop_folder_that_hangs_holds_up_nothing_else(tmp_path: Path) -> None:
    """Calls into a drop folder whose share hangs are given up on after ``write_timeout``:
    a move in the one worker process kills and replaces it, a start does not wait for the
    folder; the log says so once, naming the source and the folders; the other source,
    processing and sending go on, a stop does not wait; a file stored is sent once."""
    run_isolated("tests.test_recovery:drop_folder_hangs", str(tmp_path), timeout=240)


def _wait_for(predicate: Any, timeout: float) -> None:
    """Wait (blocking) until ``predicate()`` is true (a database not yet made is not)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(sqlite3.OperationalError):
            if predicate():
                return
        assert time.monotonic() < deadline, f"condition not reached within {timeout} s"
        time.sleep(0.1)


def outbox_hangs_at_start(root_text: str) -> None:
    """(In a private mount namespace.) The canton's outbox does not answer when ``run`` starts
    (the CLI, in a process of its own); a second partner's outbox is elsewhere. Then it
    answers again, and the daemon is stopped with TERM."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    sedex = root / "sedex"
    outbox, registry = sedex / "outbox", root / "registry" / "outbox"
    for folder in ("outbox-b", "inbox-b"):
        (sedex / folder).mkdir()
    (root / "conf.d" / "20-hang.toml").write_text(
        '[partners.canton.sedex]\nwrite_timeout = "2s"\n'
        + sedex_partner(sedex, "canton-b", "T2-3-1", inbox="inbox-b", outbox="outbox-b") + BOTH)
    ext4(outbox)
    staging = outbox / ".ech-gateway-tmp"
    staging.mkdir()
    (staging / "left-half-written").write_bytes(b"<")  # by a run before
    log = root / "run.log"
    with log.open("w") as stderr, ExitStack() as stack:
        with frozen(outbox):
            daemon = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config),
                                       "run"], stdout=stderr, stderr=stderr)
            stack.callback(daemon.kill)
            for n in range(3):
                drop(registry, f"m{n}.xml", message())
            # the daemon runs: the intake and the other partner go on, the canton waits
            _wait_for(lambda: _sent(db, "canton-b") == 3
                      and journal_count(db, "partner.paused") == 1, timeout=60)
            waits = (f"sedex partner canton waits: the sedex outbox {outbox} does not answer:"
                     f" clearing its staging folder {staging}: not done within 2s (does its"
                     " file system hang?)")
            assert waits in log.read_text(), log.read_text()
            status = _run_cli(config, "status", "--json")
            [reason] = json.loads(status.stdout)["reasons"]
            assert (reason["kind"], reason["partner"], reason["count"]) == ("paused", "canton", 3)
            assert f"clearing its staging folder {staging}" in reason["error"]
        _wait_for(lambda: _sent(db, "canton") == 3, timeout=60)  # it answers: the probe resumes
        assert not (staging / "left-half-written").exists()
        daemon.terminate()
        assert daemon.wait(timeout=30) == 0, log.read_text()
    assert journal_count(db, "partner.resumed") == 1
    assert states(db, "SELECT count(*) FROM attempts") == [(6,)]


def test_a_sedex_outbox_that_hangs_at_start_holds_up_neither_the_start_nor_the_rest(
        tmp_path: Path) -> None:
    """``run`` starts while a partner's outbox hangs: clearing its staging folder is given
    up on after ``write_timeout``, the log says which partner waits and why, the intake and
    the other partner go on, the partner is paused (``status``) and resumes once the outbox
    answers, its staging folder cleared then."""
    run_isolated("tests.test_recovery:outbox_hangs_at_start", str(tmp_path), timeout=240)


def _run_cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *argv],
                          capture_output=True, text=True, timeout=60, check=False)


async def test_a_restart_while_paused_keeps_the_pause_and_takes_it_all_off_max_age(
        tmp_path: Path) -> None:
    """The pause is the store's: ``status`` tells it, a restart keeps it, and the resumption
    moves the delivery's first attempt by the whole pause, the time before the restart too."""
    config = gateway_dir(tmp_path)
    db, outbox = tmp_path / "gateway.db", tmp_path / "sedex" / "outbox"
    events, pm = Events.listening()
    async with running(config, pm):
        shutil.rmtree(outbox)
        drop(tmp_path / "registry" / "outbox", "m.xml", message())
        await until(lambda: journal_count(db, "partner.paused") == 1)
        status = _run_cli(config, "status", "--json")
        assert status.returncode == FAILED, status.stdout + status.stderr
        [reason] = json.loads(status.stdout)["reasons"]
        assert ((reason["kind"], reason["node"], reason["partner"], reason["count"])
                == ("paused", socket.gethostname(), "canton", 1))
        assert "outbox" in reason["error"]
        await asyncio.sleep(0.5)
    [(first_at, since)] = states(db, "SELECT first_attempt_at, since FROM deliveries,"
                                     " partner_pauses")
    stopped = time.time()
    await asyncio.sleep(1.0)  # the daemon is down, the partner still paused
    outbox.mkdir()
    async with running(config, pm):
        # still paused after the start: the delivery waits for the probe (after 2 s)
        await asyncio.sleep(0.5)
        assert deliveries(db) == [("sending", 1)]
        await until(lambda: deliveries(db) == [("sent", 1)])
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'partner.resumed'")
    resumed = json.loads(detail)
    assert ((resumed["partner"], resumed["node"], resumed["deliveries"])
            == ("canton", socket.gethostname(), 1))
    [(moved,)] = states(db, "SELECT first_attempt_at FROM deliveries")
    # the whole pause, from before the stop to the probe after the start, is off its age
    assert moved - first_at > stopped + 1.0 + 2.0 - since
    assert moved - first_at == pytest.approx(resumed["paused_for"], abs=0.06)
    assert events.kinds("partner.") == ["partner.paused", "partner.resumed"]
    assert states(db, "SELECT count(*) FROM partner_pauses") == [(0,)]
    assert _run_cli(config, "status").returncode == OK


async def test_a_probe_whose_claim_fails_is_probed_again_without_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe's claim that fails otherwise than a full disk (a database locked by another
    node) fails the dispatcher, which restarts and probes the partner again: once the fault
    on this machine is mended, it resumes and its delivery goes, the daemon running on."""
    monkeypatch.setattr("gateway.supervision.RESTART_MIN", 0.05)
    config = gateway_dir(tmp_path)
    db, outbox = tmp_path / "gateway.db", tmp_path / "sedex" / "outbox"
    events, pm = Events.listening()
    async with running(config, pm) as gateway:
        fast_probes(gateway)
        shutil.rmtree(outbox)
        drop(tmp_path / "registry" / "outbox", "m.xml", message())
        await until(lambda: journal_count(db, "partner.paused") == 1)
        claim_due, probes = gateway.store.claim_due, list[int]()

        async def locked_once(node: str, lease: float, limit: int, partners: Sequence[str],
                              **kw: Any) -> list[Claim]:
            if "canton" in partners:  # (it is paused: a claim for it is its probe)
                probes.append(limit)
                if len(probes) == 1:
                    raise sqlite3.OperationalError("database is locked")
            return await claim_due(node, lease, limit, partners, **kw)

        monkeypatch.setattr(gateway.store, "claim_due", locked_once)
        await until(lambda: len(probes) == 1)
        outbox.mkdir()
        await until(lambda: deliveries(db) == [("sent", 1)])
    assert probes[:2] == [1, 1]
    assert events.kinds("partner.") == ["partner.paused", "partner.resumed"]
    assert states(db, "SELECT count(*) FROM partner_pauses") == [(0,)]


async def test_another_nodes_pause_pauses_nothing_here(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A pause is its node's: a daemon takes up only its own node's pauses and sends to a
    partner another node paused (its fault is another machine's); the pause stays that
    node's, in ``status`` too."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    store = SQLiteStore(db)
    store.start()
    try:
        since = await store.pause_partner("elsewhere", "canton", "disk full")
    finally:
        store.close()
    events, pm = Events.listening()
    with caplog.at_level(logging.INFO, logger="gateway.partner_pause"):
        async with running(config, pm):
            drop(tmp_path / "registry" / "outbox", "m.xml", message())
            await until(lambda: deliveries(db) == [("sent", 1)])
    # (a pause taken up is said, and holds the delivery until its probe)
    assert not [r for r in caplog.records if r.name == "gateway.partner_pause"], caplog.text
    assert not events.kinds("partner.")
    assert states(db, "SELECT node, partner, since FROM partner_pauses") == [
        ("elsewhere", "canton", since)]
    status = _run_cli(config, "status", "--json")
    [reason] = json.loads(status.stdout)["reasons"]
    assert (reason["kind"], reason["node"], reason["count"]) == ("paused", "elsewhere", 0)


def _head(db: Path) -> int:
    return int(states(db, "SELECT max(seq) FROM journal")[0][0])


@pytest.mark.parametrize(("how", "verdict"), [("deleted", "MISSING"), ("replaced", "TRUNCATED")])
async def test_database_deleted_or_replaced_while_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, verdict: str) -> None:
    """The daemon notices, alerts once, takes no more input; a restart refuses to go on."""
    monkeypatch.setattr(daemon, "ANCHOR_INTERVAL", 0.2)  # the test's time, not 2 s
    config = gateway_dir(tmp_path)
    db, drops = tmp_path / "gateway.db", tmp_path / "registry" / "outbox"
    backup = tmp_path / "backup.db"
    events, pm = Events.listening()
    with alerts() as log, pytest.raises(StoreLost, match=f"was {how}"):
        async with running(config, pm) as gateway:
            for n in range(5):
                drop(drops, f"first{n}.xml", message())
            await until(lambda: deliveries(db) == [("sent", 1)] * 5)
            with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(backup)) as copy:
                source.backup(copy)  # an operator's backup, soon older than the journal
            for n in range(5):
                drop(drops, f"second{n}.xml", message())
            await until(lambda: len(deliveries(db)) == 10)
            # the anchor beside the database follows the journal (every 2 s)
            await until(lambda: (read_anchor(db) or Anchor("", 0, "", 0)).seq == _head(db))
            if how == "deleted":
                db.unlink()
            else:
                os.replace(backup, db)
            for n in range(5):
                drop(drops, f"late{n}.xml", message())
            await until(lambda: bool(events.kinds("store.lost")))
            assert gateway.store.lost is not None
    # input stopped: what came after the loss is still in the drop folder, not lost
    assert sorted(p.name for p in drops.glob("late*.xml")) == [f"late{n}.xml" for n in range(5)]
    assert events.kinds("store.lost") == ["store.lost"]
    critical = [line for line in log.lines if line.startswith("CRITICAL")]
    assert len(critical) == 1 and f"was {how} while running" in critical[0], log.lines
    if how == "replaced":  # the restore completed: the old database's WAL goes with it
        for leftover in ("gateway.db-wal", "gateway.db-shm"):
            (tmp_path / leftover).unlink(missing_ok=True)
    # after the stop, the journal no longer reaches its anchor ...
    verify = _run_cli(config, "journal", "verify")
    assert verify.returncode == FAILED, verify.stdout + verify.stderr
    assert verify.stdout.startswith(f"journal {verdict}"), verify.stdout
    # ... and the daemon refuses to start on it: one line, no traceback, its own exit code
    run = _run_cli(config, "run")
    assert run.returncode == STORE_LOST, run.stderr
    assert verdict in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert db.exists() == (how == "replaced")  # a refused start makes no new database


async def test_journal_verify_reports_intact_against_the_anchor(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.store")
    config = gateway_dir(tmp_path)
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "one.xml", message())
        await until(lambda: deliveries(tmp_path / "gateway.db") == [("sent", 1)])
    anchor = read_anchor(tmp_path / "gateway.db")
    assert anchor is not None and anchor.seq == _head(tmp_path / "gateway.db")  # written at stop
    # the head is in the log too, at start and at stop
    heads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("journal head")]
    assert heads[0].startswith("journal head at start: entry 0, hash 000000")
    assert heads[-1] == (f"journal head at stop: entry {anchor.seq}, hash {anchor.hash}"
                         f" (database {anchor.identity})")
    verify = _run_cli(config, "journal", "verify")
    assert verify.returncode == OK
    assert verify.stdout.strip() == f"journal intact: {anchor.seq} entries, anchored at entry {anchor.seq}"


async def database_disk_full_then_freed(root_text: str) -> None:
    """(In a private mount namespace.) The database's disk fills up, then space is freed."""
    root = Path(root_text)
    config = gateway_dir(root)
    tmpfs(root / "data", "6m")
    (root / "conf.d" / "20-db.toml").write_text(f'[store]\npath = "{root}/data/gateway.db"\n')
    db, drops = root / "data" / "gateway.db", root / "registry" / "outbox"
    events, pm = Events.listening()
    with alerts() as log:
        async with running(config, pm) as gateway:
            gateway.pipeline.pause.first, gateway.pipeline.pause.longest = 0.1, 0.4
            drop(drops, "before.xml", message())
            await until(lambda: deliveries(db) == [("sent", 1)])
            filler = fill(root / "data")
            for n in range(MESSAGES):
                drop(drops, f"m{n}.xml", message())
            await until(lambda: bool(events.kinds("intake.paused")))
            await asyncio.sleep(1.0)  # several retries meet the full disk
            assert not events.kinds("intake.resumed")
            filler.unlink()
            # every message proceeds without a restart: stored, processed, sent
            await until(lambda: deliveries(db) == [("sent", 1)] * (MESSAGES + 1), timeout=20)
            assert states(db, "SELECT DISTINCT state FROM messages") == [("routed",)]
            assert not list(drops.glob("*.xml"))
    assert events.kinds("intake.") == ["intake.paused", "intake.resumed"]
    # the warning came first: a 6 MiB disk has less room than [retention] warn_free_below
    assert log.lines[0].startswith("WARNING gateway.alerts: the database's disk")
    # one alert for the incident and one for its end, whatever the number of inputs and retries
    assert len(log.lines) == 3, log.lines
    assert log.lines[1].startswith("WARNING gateway.alerts: intake paused: the store cannot write")
    assert log.lines[2].startswith("WARNING gateway.alerts: intake resumed after ")


def test_database_disk_full_then_freed_recovers_without_restart(tmp_path: Path) -> None:
    run_isolated("tests.test_recovery:database_disk_full_then_freed", str(tmp_path))


async def test_another_database_in_place_is_refused_as_replaced(tmp_path: Path) -> None:
    """A database made elsewhere (another identity) does not pass for the anchored one."""
    db, other = tmp_path / "gateway.db", tmp_path / "elsewhere" / "gateway.db"
    for path in (db, other):
        store = SQLiteStore(path)
        store.start()
        await store.note("partner.paused", {"partner": "canton", "error": "test"})
        store.close()
    anchored = read_anchor(db)
    assert anchored is not None and anchored.seq == 1
    os.replace(other, db)
    reader = StoreReader(db)
    try:
        anchor, problem = reader.against_anchor()
    finally:
        reader.close()
    assert anchor == anchored
    assert problem is not None and problem.startswith("REPLACED: this database is ")
    with pytest.raises(StoreLost, match="journal REPLACED"):
        SQLiteStore(db).start()
    assert read_anchor(db) == anchored  # a refused start leaves the anchor as it was
