"""The daemon's life as a process: ``ech-gateway run`` started, signalled, and stopped.

A vendor's plugin (installed as an entry point) makes worker processes fail or hang
as they start, as one that imports in the daemon but not in a spawned process, or
whose import blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from socket import gethostname

import pytest

from gateway.config import write_initial_config
from gateway.contracts import RawInput
from gateway.plugins import LOAD_ENV
from gateway.store import SQLiteStore
from tests.flow import drop, message, states
from tests.mounts import ext4, frozen, require_fuse, run_isolated, unanswering
from tests.test_plugin_loading import BUILT_IN, install
from tests.test_sedex_e2e import gateway_dir

#: The vendor's plugin. In a spawned worker process its import fails (``fails``) or hangs
#: (``hang``) while the file ``$ACME_BROKEN`` says so, and reports that it hangs (its pid in
#: the file ``$ACME_BROKEN.hanging``). A worker given an input saying POISON marks the next workers
#: ``$ACME_NEXT`` (if set), then dies, as if a C library crashed.
#: One given an input saying SLOW says so (the file ``$ACME_BROKEN.slow``) and sleeps.
_VENDOR = """
    import multiprocessing
    import os
    import time

    from gateway.api import hookimpl

    BROKEN = os.environ["ACME_BROKEN"]
    IN_WORKER = multiprocessing.parent_process() is not None

    if IN_WORKER and os.path.exists(BROKEN):
        with open(BROKEN) as mode:
            if mode.read() == "hang":
                with open(BROKEN + ".hanging", "w") as hanging:
                    hanging.write(str(os.getpid()))
                time.sleep(3600)
        import vendorx


    @hookimpl(tryfirst=True)
    def gateway_normalise(raw, context):
        if IN_WORKER and b"SLOW" in raw.data:
            open(BROKEN + ".slow", "w").close()
            time.sleep(3600)
        if IN_WORKER and b"POISON" in raw.data:
            if os.environ.get("ACME_NEXT"):
                with open(BROKEN, "w") as mode:
                    mode.write(os.environ["ACME_NEXT"])
            os._exit(3)
        return None
    """


class Daemon:
    """``ech-gateway run`` with the vendor's plugin, its log in a file."""

    def __init__(self, root: Path, conf: str = "", next_workers: str = "") -> None:
        site = root / "site"
        install(site, "acme-vendorx", "acme", "acme_vendorx_mod", _VENDOR)
        self.config = write_initial_config(root / "gw")
        (root / "gw" / "conf.d" / "10-test.toml").write_text(
            "[gateway]\nworkers = 1\n" + conf)
        self.db = root / "gw" / "gateway.db"
        self.broken = root / "broken"
        self.log = root / "daemon.log"
        path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {**os.environ, LOAD_ENV: f"{BUILT_IN},acme", "PYTHONPATH": os.pathsep.join(path),
                    "ACME_BROKEN": str(self.broken), "ACME_NEXT": next_workers}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "run"],
                stdout=out, stderr=out, env=self.env)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, done: Callable[[], bool], timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not done():
            assert self.proc.poll() is None, f"the daemon ended:\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out:\n{self.text()}"
            time.sleep(0.05)

    def term(self, timeout: float = 20) -> int:
        """Send TERM; the exit code, once the process ended within ``timeout`` seconds
        (below the drain timeout of 30 s, so a stop that waited for it fails)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"TERM was not honoured within {timeout}s:\n{self.text()}")
        return code

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.ensure_stopped()


def _stored(db: Path, inputs: list[RawInput]) -> None:
    """Store ``inputs`` as received and not processed: what a crash leaves."""
    async def add() -> None:
        store = SQLiteStore(db, group_commit_delay=0.001)
        store.start()
        try:
            await store.add_raw(inputs)
        finally:
            store.close()
    asyncio.run(add())


@pytest.mark.parametrize("replacement", ["fails", "hang"])
def test_term_is_honoured_while_recovery_waits_for_a_worker_that_cannot_start(
        tmp_path: Path, daemons: list[Daemon], replacement: str) -> None:
    """At the start, a stored input kills its worker, and the worker started to replace it
    fails or hangs: the recovery waits for it. A TERM stops the daemon at once, and no
    input is lost or blamed: they wait, stored, for the next start."""
    daemon = Daemon(tmp_path, 'worker_start_timeout = "5s"\n', next_workers=replacement)
    daemons.append(daemon)
    poison = message("poison-1").replace(b"<eCH-0044:officialName>",
                                         b"<!-- POISON --><eCH-0044:officialName>", 1)
    _stored(daemon.db, [RawInput("registry", "poison.xml", poison),
                        *(RawInput("registry", f"m{n}.xml", message(f"fine-{n}"))
                          for n in range(3))])
    daemon.start()
    daemon.wait_for(lambda: "starting a worker process failed" in daemon.text())
    code = daemon.term()
    assert code == 0
    lines = daemon.text().splitlines()
    assert "stopping while starting (a second TERM stops at once)" in daemon.text()
    assert lines[-1].endswith("stopped"), lines[-1]
    assert "running:" not in daemon.text()
    assert states(daemon.db, "SELECT ref, state FROM messages ORDER BY id") == [
        ("poison.xml", "received"), *((f"m{n}.xml", "received") for n in range(3))]


def test_a_second_term_cuts_short_the_batch_recovery_is_processing(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """A TERM while the start processes a batch stored before the last stop lets that batch
    finish (within the drain timeout); a second TERM stops at once, and the batch waits,
    stored, for the next start."""
    daemon = Daemon(tmp_path)
    daemons.append(daemon)
    slow = message("slow-1").replace(b"<eCH-0044:officialName>",
                                     b"<!-- SLOW --><eCH-0044:officialName>", 1)
    _stored(daemon.db, [RawInput("registry", "slow.xml", slow),
                        RawInput("registry", "m0.xml", message("fine-0"))])
    daemon.start()
    daemon.wait_for(lambda: Path(f"{daemon.broken}.slow").exists())
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.wait_for(lambda: "stopping while starting" in daemon.text())
    time.sleep(1)
    assert daemon.proc.poll() is None, "the first TERM did not wait for the batch"
    code = daemon.term()
    assert (code, daemon.text().splitlines()[-1].split(" ", 2)[-1]) == (
        0, "INFO gateway.daemon: stopped")
    assert "start cut short; what is left continues at the next start" in daemon.text()
    assert states(daemon.db, "SELECT ref, state FROM messages ORDER BY id") == [
        ("slow.xml", "received"), ("m0.xml", "received")]


def test_term_is_honoured_while_a_worker_process_starts(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """The first worker process hangs as it starts (a plugin's import that blocks): a TERM
    stops the daemon at once, its worker killed, and it says so."""
    daemon = Daemon(tmp_path)
    daemons.append(daemon)
    daemon.broken.write_text("hang")
    daemon.start()
    hanging = Path(f"{daemon.broken}.hanging")
    daemon.wait_for(lambda: hanging.exists() and hanging.read_text() != "")
    worker = int(hanging.read_text())
    code = daemon.term()
    assert code == 0
    assert daemon.text().splitlines()[-1].endswith("stopped")
    time.sleep(0.5)  # (its last parent, init, reaps it)
    assert not Path(f"/proc/{worker}").exists(), "the worker that hangs was left running"


def test_run_exits_2_naming_a_worker_process_that_does_not_start_in_time(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path, 'worker_start_timeout = "2s"\n')
    daemons.append(daemon)
    daemon.broken.write_text("hang")
    daemon.start()
    assert daemon.proc is not None
    code = daemon.proc.wait(timeout=60)
    assert code == 2
    assert daemon.text().splitlines()[-1] == (
        "ech-gateway: worker processes cannot start: the process did not start within 2s"
        " ([gateway] worker_start_timeout); it was killed")


def stopped(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> int:
    """Send ``proc`` a TERM; its exit code once it ended, within ``timeout`` seconds (else
    fail, with its log ``log``)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the process did not end:\n{log.read_text()}") from None


def stops_while_a_worker_hangs(root_text: str) -> None:
    """(In a private mount namespace.) ``run`` writes into a sedex outbox whose file system
    hangs: the write is given up on, its worker killed and left behind, stuck in the
    kernel. A TERM then drains and stops the daemon, and its process ends at once, while
    the worker is still stuck."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    (root / "conf.d" / "20-hang.toml").write_text(
        '[gateway]\nlog_level = "INFO"\nworkers = 1\n[partners.canton.sedex]\nwrite_timeout = "2s"\n')
    outbox, log = root / "sedex" / "outbox", root / "daemon.log"
    ext4(outbox)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                                stdout=out, stderr=out)
    try:
        def wait_for(text: str) -> None:
            deadline = time.monotonic() + 60
            while text not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)

        wait_for("running:")
        with frozen(outbox):
            drop(root / "registry" / "outbox", "a.xml", message())
            wait_for("killed and left behind")
            code = stopped(proc, log, 20)  # while the file system is still frozen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    assert (code, lines[-1].split(" ", 2)[-1]) == (0, "INFO gateway.daemon: stopped"), lines
    assert " WARNING gateway.daemon: 1 worker process (pid " in lines[-2]
    assert lines[-2].endswith(" killed and not ended (stuck in the kernel: a file system that"
                              " hangs?); the process exits without waiting for it")
    # the attempt is repeated at the next start (tests/test_recovery.py: outbox_hangs)
    assert states(db, "SELECT partner, state FROM deliveries") == [("canton", "sending")]


def drop_folder_hangs_in_a_worker(root_text: str) -> None:
    """(In a private mount namespace.) ``run`` with one worker process takes a file from a
    drop folder whose share then stops answering: the move into done_dir hangs in the
    worker. Another source's files keep coming; then TERM, while it still hangs."""
    root = Path(root_text)
    config, db = gateway_dir(root), root / "gateway.db"
    share, other, log = root / "share", root / "other", root / "daemon.log"
    drops, done = share / "in", share / "done"
    ext4(share)
    for folder in (drops, done, other):
        folder.mkdir()
    (root / "conf.d" / "20-hang.toml").write_text(
        f'[gateway]\nlog_level = "INFO"\nworkers = 1\n[sources.registry]\npath = "{drops}"\n'
        f'done_dir = "{done}"\n'
        f'settle = "1s"\nwrite_timeout = "2s"\n[sources.other]\ntype = "folder"\n'
        f'path = "{other}"\npoll_interval = "50ms"\nsettle = "0s"\n')
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                                stdout=out, stderr=out)

    def wait_for(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not done():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    def sent() -> int:
        return int(states(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")[0][0])

    try:
        wait_for(lambda: "running:" in log.read_text())
        drop(drops, "a.xml", message())
        with frozen(share):  # within settle: a.xml is read, its move hangs
            wait_for(lambda: "killed and left behind" in log.read_text())
            for n in range(3):  # the other source, processing (one worker) and sending go on
                drop(other, f"o{n}.xml", message())
                wait_for(lambda n=n: sent() == n + 2)
            code = stopped(proc, log, 20)  # while the file system is still frozen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, text
    assert text.count(f"source registry: taking files from {drops} failed: moving 1 file into"
                      f" {done}: not done within 2s (does its file system hang?)") == 1, text
    assert states(db, "SELECT source, state FROM messages ORDER BY id")[0] == ("registry", "routed")


def archive_hangs_at_stop(root_text: str) -> None:
    """(In a private mount namespace.) ``run`` with retention every second; the share of the
    drop folder's done_dir then loses its server (nothing there answers): the deletions
    there are given up on after the source's ``write_timeout``, said; a TERM then stops the
    daemon, and its process ends while the share still hangs."""
    root = Path(root_text)
    config, share, log = gateway_dir(root), root / "share", root / "daemon.log"
    done = share / "done"
    (root / "conf.d" / "20-hang.toml").write_text(
        f'[gateway]\nlog_level = "INFO"\n[sources.registry]\ndone_dir = "{done}"\n'
        'write_timeout = "2s"\n[retention]\ninterval = "1s"\nkeep_files = "1s"\n')
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                                stdout=out, stderr=out)

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    try:
        wait_for("running:")
        with unanswering(share, safety=90) as hangs:
            wait_for(f"WARNING gateway.archives: retention: cannot delete old files in {done}:"
                     " not done within 2s (does its file system hang?)")
            code = stopped(proc, log, 30)
            assert hangs()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    assert (code, lines[-1].split(" ", 2)[-1]) == (0, "INFO gateway.daemon: stopped"), lines


def test_an_archive_folder_that_hangs_holds_up_no_stop(tmp_path: Path) -> None:
    """Retention's deletions in an archive folder whose share hangs run in a thread given
    up on, which nothing waits for at exit (a thread of asyncio's executor, as before, was
    waited for without end)."""
    require_fuse()
    run_isolated("tests.test_daemon:archive_hangs_at_stop", str(tmp_path), timeout=180)


def test_a_drop_folder_that_hangs_holds_no_worker(tmp_path: Path) -> None:
    """A drop folder whose share hangs while a file is moved away in the only worker
    process: the move is given up on after ``write_timeout`` and the worker killed and
    replaced, so processing and the other source go on; the log says so once; TERM
    stops the daemon while the share still hangs."""
    run_isolated("tests.test_daemon:drop_folder_hangs_in_a_worker", str(tmp_path), timeout=180)


def test_the_process_ends_once_stopped_though_a_worker_is_stuck_in_the_kernel(
        tmp_path: Path) -> None:
    run_isolated("tests.test_daemon:stops_while_a_worker_hangs", str(tmp_path), timeout=180)


#: A vendor's plugin slow to import: it says so (the file ``$ACME_LOADING``), then waits for
#: the file ``$ACME_GO``; the command line is still loading meanwhile.
_SLOW_TO_LOAD = """
    import os
    import time

    open(os.environ["ACME_LOADING"], "w").close()
    while not os.path.exists(os.environ["ACME_GO"]):
        time.sleep(0.01)
    """
#: What the console script runs (pyproject.toml: ``ech-gateway = "gateway.entry:main"``).
_CONSOLE_SCRIPT = "import sys; from gateway.entry import main; sys.exit(main())"


@pytest.mark.parametrize(("launch", "command", "ends"), [
    (["-m", "gateway"], "run", 0),
    (["-c", _CONSOLE_SCRIPT], "run", 0),
    (["-m", "gateway"], "status", -signal.SIGTERM),  # not a daemon: TERM ends it, as always
])
def test_a_term_while_the_command_line_loads_is_kept_for_run(
        tmp_path: Path, launch: list[str], command: str, ends: int) -> None:
    """A TERM in the first second of ``run`` (Python importing) killed it by the default
    action, exit 143 and no "stopped"; ``run`` now stops cleanly, starting nothing."""
    site = tmp_path / "site"
    install(site, "acme-slow", "acme", "acme_slow_mod", _SLOW_TO_LOAD)
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "10-test.toml").write_text("[gateway]\nworkers = 0\n")
    loading, go, log = tmp_path / "loading", tmp_path / "go", tmp_path / "out.log"
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, LOAD_ENV: f"{BUILT_IN},acme", "PYTHONPATH": os.pathsep.join(path),
           "ACME_LOADING": str(loading), "ACME_GO": str(go)}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, *launch, "--config", str(config), command],
                                stdout=out, stderr=out, env=env)
    try:
        deadline = time.monotonic() + 60
        while not loading.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # delivered while the plugin still loads
        go.touch()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    assert code == ends, lines
    if command == "run":
        assert lines[-1].split(" ", 2)[-1] == "INFO gateway.daemon: stopped", lines
        assert not any("running" in line for line in lines), lines


def test_run_says_what_it_does_between_opening_the_store_and_running(tmp_path: Path) -> None:
    """Starting the worker processes and processing the inputs stored before the last stop
    took seconds without a log line: an operator watching the log took it for hung."""
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "10-test.toml").write_text("[gateway]\nworkers = 1\n")
    store = SQLiteStore(tmp_path / "gw" / "gateway.db")
    store.start()
    try:  # stored, never processed: the process stopped in between
        asyncio.run(store.add_raw([RawInput("registry", f"{n}.xml", message(f"early-{n}"), {})
                                   for n in range(3)]))
    finally:
        store.close()
    log = tmp_path / "out.log"
    with running_daemon(config, log):
        pass
    said = [line.split(" ", 2)[-1] for line in log.read_text().splitlines()]
    start = next(i for i, line in enumerate(said) if "journal head at start" in line)
    assert said[start + 1:start + 5] == [
        "INFO gateway.daemon: starting 1 worker process",
        "INFO gateway.daemon: processing 3 inputs stored before the last stop",
        "INFO gateway.daemon: processed 3 inputs stored before the last stop",
        f"INFO gateway.daemon: gateway {gethostname()} running: 1 source, 2 partners"]


def test_a_second_run_of_the_same_node_on_one_database_is_refused(tmp_path: Path) -> None:
    """A daemon started by hand beside the one systemd runs took the same node for its own:
    at its start it expired the running one's leases and sent again what that one was sending,
    and both read the same drop folder. The second now stops at once, naming the first; the
    node runs again once the first stopped."""
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "10-test.toml").write_text(
        '[gateway]\nworkers = 0\nnode_id = "gw-1"\n')
    with running_daemon(config, tmp_path / "first.log") as first:
        second = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                                capture_output=True, text=True, timeout=60)
        assert (second.returncode, second.stderr.splitlines()[-1]) == (1, (
            f"ech-gateway: node 'gw-1' already runs on {tmp_path / 'gw' / 'gateway.db'}"
            f" (process {first.pid}): stop it first, or give this one another"
            " [gateway] node_id")), second.stderr
        assert "running:" not in second.stderr
        assert first.poll() is None
    with running_daemon(config, tmp_path / "again.log"):
        pass


@contextlib.contextmanager
def running_daemon(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``ech-gateway run`` on ``config``, once it says it runs, logging to ``log``; stopped
    with TERM at the end, which it must end by with exit 0."""
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                                stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while "running:" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
