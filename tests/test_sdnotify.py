"""What the daemon tells systemd over ``NOTIFY_SOCKET`` (a unix datagram socket, as systemd
binds it): a start that processes a backlog asks for more time until ``READY=1``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from gateway.assembly import load_config, make_validator, schema_set
from gateway.config import write_initial_config
from gateway.contracts import RawInput
from gateway.daemon import Gateway
from gateway.plugins import get_plugin_manager
from gateway.sdnotify import notify
from gateway.store import SQLiteStore
from tests.flow import message, states

BACKLOG = 60


async def _stored(db: Path, inputs: list[RawInput]) -> None:
    """Store ``inputs`` as received and not processed: what a stop in between leaves."""
    store = SQLiteStore(db)
    store.start()
    try:
        await store.add_raw(inputs)
    finally:
        store.close()


async def _start_and_stop(config: Path, every: float) -> None:
    """Run the gateway of ``config`` until it is ready, asking for more time every ``every``
    seconds while it starts; then stop it."""
    pm = get_plugin_manager()
    settings = load_config(config, pm)
    gateway = Gateway(settings, pm, make_validator(schema_set(settings)))
    gateway.extend_every = every
    stop = asyncio.Event()
    running = asyncio.create_task(gateway.run(stop))
    ready = asyncio.create_task(gateway.ready.wait())
    await asyncio.wait([running, ready], timeout=120, return_when=asyncio.FIRST_COMPLETED)
    assert gateway.ready.is_set(), running.result() if running.done() else "not ready in 120 s"
    stop.set()
    await asyncio.wait_for(running, 30)


def _listen(sock: socket.socket, said: list[str], done: threading.Event) -> None:
    """Append what comes on ``sock`` to ``said`` until ``done``, as systemd reads it: at once
    (its queue holds ten datagrams)."""
    sock.settimeout(0.05)
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            said.append(sock.recv(4096).decode())


def test_a_start_that_processes_a_backlog_asks_systemd_for_more_time_until_ready(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Type=notify: systemd kills a start that outlasts TimeoutStartSec (90 s by default).
    While the inputs stored before the last stop are processed, the daemon asks for more
    time (EXTEND_TIMEOUT_USEC, three intervals), saying what it does (STATUS); READY=1
    comes once they are all processed, and no more asking after it."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text(  # small batches: a long recovery
        "[gateway]\nworkers = 0\n[dispatcher]\nbatch_size = 2\n")
    db = tmp_path / "gateway.db"
    asyncio.run(_stored(db, [RawInput("registry", f"m{n}.xml", message(f"backlog-{n}"))
                             for n in range(BACKLOG)]))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        said: list[str] = []
        done = threading.Event()
        listener = threading.Thread(target=_listen, args=(sock, said, done))
        listener.start()
        try:
            asyncio.run(_start_and_stop(config, every=0.01))
        finally:
            time.sleep(0.2)
            done.set()
            listener.join()
    ready = said.index("READY=1")
    asking = [s for s in said[:ready] if s.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(asking) >= 3, said
    assert {s.split("\n")[0] for s in asking} == {"EXTEND_TIMEOUT_USEC=30000"}
    assert asking[-1].split("\n")[1] == (f"STATUS=processing {BACKLOG} inputs stored before"
                                         " the last stop")
    assert said[ready - 1] == "STATUS=running"
    assert not [s for s in said[ready:] if s.startswith("EXTEND_TIMEOUT_USEC=")]
    assert "STOPPING=1" in said[ready:]
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'received'") == [(0,)]


def test_a_listener_that_does_not_read_holds_up_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the socket's queue is full (a listener that hangs), a notice is dropped, not
    waited for: the event loop would stop with it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        sent: list[bool] = []
        sender = threading.Thread(target=lambda: sent.extend(notify("WATCHDOG=1")
                                                             for _ in range(100)), daemon=True)
        sender.start()
        sender.join(timeout=10)
        assert not sender.is_alive(), f"notify waited for the listener after {len(sent)} notices"
        assert sent[0] and not sent[-1]
        assert sock.recv(64) == b"WATCHDOG=1"
