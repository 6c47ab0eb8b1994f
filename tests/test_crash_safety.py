"""SIGKILL at random moments while 1,000 messages flow: each reaches the outbox exactly once."""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lxml import etree

from gateway.config import write_initial_config
from tests.flow import drop, message, states

MESSAGES = 1000
CYCLES = 20
E39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
E90 = "{http://www.ech.ch/xmlns/eCH-0090/1}"


class Daemon:
    """``ech-gateway run`` as a child process that reports READY=1 over sd_notify."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.log = workdir / "daemon.log"
        self.address = str(workdir / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "NOTIFY_SOCKET": self.address}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
                stdout=out, stderr=out, env=env)

    def wait_ready(self, timeout: float = 30) -> None:
        self.sock.settimeout(timeout)
        while self.sock.recv(256) != b"READY=1":
            pass

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def ensure_stopped(self) -> None:
        """Kill the daemon if a failed test left it running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def sent(db: Path) -> int:
    return states(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")[0][0]


def outbox_pairs(outbox: Path) -> collections.Counter[str]:
    """eCH-0223 messageId -> number of complete envelope/payload pairs carrying it."""
    found: collections.Counter[str] = collections.Counter()
    for envl in outbox.glob("envl_*.xml"):
        ref = envl.stem.removeprefix("envl_")
        assert etree.parse(str(envl)).findtext(f"{E90}messageId") == ref
        data = outbox / f"data_{ref}.xml"
        assert data.exists(), f"envelope {envl.name} without its payload"
        found[etree.parse(str(data)).findtext(f".//{E39}messageId") or "?"] += 1
    return found


def test_sigkill_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text(
        '[gateway]\nlog_level = "WARNING"\n[dispatcher]\nidle_poll = "50ms"\nbatch_size = 20\n'
        '[sources.registry]\npoll_interval = "50ms"\nbatch_size = 20\nsettle = "50ms"\n'
        '[partners.canton.sedex]\nsettle = "50ms"\n')
    db, outbox = tmp_path / "gateway.db", tmp_path / "sedex/outbox"
    inbox = tmp_path / "registry/outbox"
    rng = random.Random(os.environ.get("CRASH_SEED", "2235"))
    ids = [f"crash-{n:04d}" for n in range(MESSAGES)]
    daemon = Daemon(config, tmp_path)
    try:
        run_cycles(daemon, inbox, ids, rng, db)
    finally:
        daemon.ensure_stopped()

    pairs = outbox_pairs(outbox)
    missing = [i for i in ids if pairs[i] == 0]
    doubled = {i: n for i, n in pairs.items() if n > 1}
    assert not missing, f"{len(missing)} messages never reached the outbox, e.g. {missing[:5]}"
    assert not doubled, f"messages in the outbox more than once: {list(doubled.items())[:5]}"
    assert set(pairs) == set(ids)
    assert list(inbox.glob("*.xml")) == []
    per_message = states(db, "SELECT m.message_id, count(d.id) FROM messages m JOIN deliveries d"
                             " ON d.message = m.id GROUP BY m.message_id")
    assert len(per_message) == MESSAGES and all(n == 1 for _m, n in per_message)


def test_worker_processes_die_with_a_killed_daemon(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    daemon = Daemon(config, tmp_path)
    daemon.start()
    daemon.wait_ready()
    assert daemon.proc is not None
    parent = daemon.proc.pid
    workers = [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    assert workers, "the daemon runs worker processes by default"
    daemon.kill()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)], "workers outlived the daemon"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, or a pid taken by an unrelated process, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and "spawn_main" in Path(
        f"/proc/{pid}/cmdline").read_text(errors="replace")


def run_cycles(daemon: Daemon, inbox: Path, ids: list[str], rng: random.Random, db: Path) -> None:
    """Kill the daemon at random moments while bursts arrive, then let it finish."""
    per_cycle = MESSAGES // CYCLES
    for cycle in range(CYCLES):
        # the registry writes a burst while the gateway is down; it is killed mid-way through it
        for n in range(cycle * per_cycle, (cycle + 1) * per_cycle):
            drop(inbox, f"m{n:04d}.xml", message(ids[n]))
        daemon.start()
        daemon.wait_ready()
        time.sleep(rng.uniform(0.0, 0.12))
        daemon.kill()
    daemon.start()
    daemon.wait_ready()
    deadline = time.monotonic() + 60
    while sent(db) < MESSAGES and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.stop() == 0
