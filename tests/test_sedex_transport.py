"""The sedex transport on real folders: sending, receipts and inbound pairs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import plugins.sedex._files as files
from gateway.archive import safe_unzip
from gateway.assembly import load_config
from gateway.config import write_initial_config
from gateway.contracts import NOT_FROM_PARTNER, Attachment, NormaliseContext
from gateway.errors import (
    ConfigError,
    LocalFault,
    LocalHang,
    PermanentError,
    TransientError,
    WorkerLost,
)
from gateway.fileio import Evidence
from gateway.filestored import Stored
from gateway.filetake import FileTaker, Ready
from gateway.outbound import OutboundItem, ReceiptOutcome, SendResult
from gateway.plugin_types import Offload, PluginContext, in_thread
from gateway.plugins import get_plugin_manager
from gateway.workers import WorkerPool
from plugins.sedex import create_transport, gateway_transport_types
from plugins.sedex._outbox import template, write_attempts
from plugins.sedex._receipts import read_receipts
from plugins.sedex.envelope import Envelope, build_envelope, build_receipt, parse_envelope
from plugins.sedex.options import SedexOptions
from plugins.sedex.transport import SedexTransport
from tests.flow import sedex_partner, until
from tests.mounts import ext4, frozen, require_fuse, run_isolated, unanswering
from tests.stubs import StubIntake, StubReceiptSink

REF = "5f0c2a9e-8d1b-4f3a-a6c7-1b2c3d4e5f60"
PAYLOAD = b'<?xml version="1.0"?><eventReport xmlns="http://www.ech.ch/xmlns/eCH-0223/1" version="1.5"/>'
WHEN = datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1)))


def make_transport(root: Path, offload: Offload = in_thread, **changes: Any) -> SedexTransport:
    """A transport on folders under ``root``; files are taken at first sight unless ``settle``."""
    changes = {"settle": 0, **changes}
    folders = {name: root / name for name in ("outbox", "inbox", "receipts", "processed")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    options = SedexOptions.model_validate({
        **folders, "sender_id": "T3-1234-1", "recipient_id": "T3-CH-1",
        "message_type": 2_200_001, **changes})
    limits = NormaliseContext(max_bytes=1 << 20, max_zip_entries=100, max_zip_bytes=1 << 24,
                              max_zip_ratio=100)
    return create_transport(options, PluginContext("canton", root / "data", limits, None, offload))


def item(ref: str = REF, **changes: Any) -> OutboundItem:
    fields = {"delivery_id": 1, "partner": "canton", "attempt": 1, "attempt_ref": ref,
              "message_id": "m-1", "payload": PAYLOAD, "event_date": WHEN}
    return OutboundItem(**{**fields, **changes})


#: The staging folder the transport keeps inside the outbox.
STAGING = ".ech-gateway-tmp"

def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != STAGING}


def test_transport_type_is_declared() -> None:
    (sedex,) = gateway_transport_types()
    assert (sedex.name, sedex.options) == ("sedex", SedexOptions)


# ---------------------------------------------------------------------------
# send / flush
# ---------------------------------------------------------------------------


@pytest.fixture(params=["unnamed", "renamed"])
def publishing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of publishing a file: O_TMPFILE + link (Linux), temporary name + rename."""
    monkeypatch.setattr(files, "_tmpfile_works", None if request.param == "unnamed" else False)
    return str(request.param)


def check_envelope(outbox: Path) -> None:
    env = parse_envelope((outbox / f"envl_{REF}.xml").read_bytes(), max_bytes=1 << 20)
    assert (env.message_id, env.sender_id, env.recipient_ids, env.version) == (
        REF, "T3-1234-1", ("T3-CH-1",), 1)
    assert (env.message_type, env.message_class, env.event_date) == (2_200_001, 0, WHEN)
    assert env.message_date.tzinfo is not None


@pytest.mark.asyncio
async def test_send_publishes_data_then_envelope_complete(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publishing: str) -> None:
    t = make_transport(tmp_path)
    outbox = tmp_path / "outbox"
    appeared: list[tuple[str, int]] = []  # (name, bytes complete when it became visible)
    real_replace, real_link = os.replace, os.link

    def replace_spy(src: Any, dst: Any) -> None:
        assert Path(src).parent == outbox / STAGING, "written outside staging"
        assert Path(src).name.startswith(".tmp-")
        appeared.append((Path(dst).name, Path(src).stat().st_size))
        real_replace(src, dst)

    def link_spy(src: Any, dst: Any, **kwargs: Any) -> None:
        appeared.append((Path(dst).name, os.fstat(int(src)).st_size))
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(files.os, "replace", replace_spy)
    monkeypatch.setattr(files.os, "link", link_spy)
    result = await t.send(item())
    assert (result.awaits_receipt, result.recipient) == (True, "T3-CH-1")
    envelope_size = (outbox / f"envl_{REF}.xml").stat().st_size
    assert appeared == [(f"data_{REF}.xml", len(PAYLOAD)), (f"envl_{REF}.xml", envelope_size)]
    assert files._tmpfile_works is (publishing == "unnamed")
    assert names(outbox) == {f"data_{REF}.xml", f"envl_{REF}.xml"}
    assert names(outbox / STAGING) == set()
    assert (outbox / f"data_{REF}.xml").read_bytes() == PAYLOAD
    check_envelope(outbox)


@pytest.mark.asyncio
async def test_send_with_attachments_writes_a_zip(tmp_path: Path) -> None:
    t = make_transport(tmp_path, envelope_version=2)
    await t.send(item(attachments=(Attachment("scan.pdf", b"%PDF"),)))
    outbox = tmp_path / "outbox"
    assert names(outbox) == {f"data_{REF}.zip", f"envl_{REF}.xml"}
    content = safe_unzip((outbox / f"data_{REF}.zip").read_bytes(), max_entries=10,
                         max_total_bytes=1 << 20, max_ratio=100)
    assert content == {"message.xml": PAYLOAD, "files/scan.pdf": b"%PDF"}
    assert parse_envelope((outbox / f"envl_{REF}.xml").read_bytes(), max_bytes=1 << 20).version == 2


@pytest.mark.asyncio
async def test_a_resumed_attempt_already_sent_does_nothing(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    await t.send(item())
    envl = tmp_path / "outbox" / f"envl_{REF}.xml"
    before = envl.read_bytes()
    os.utime(envl, (0, 0))
    result = await t.send(item(resumed=True))
    assert "already" in result.detail and result.recipient == "T3-CH-1"
    assert envl.read_bytes() == before and envl.stat().st_mtime == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("folder", ["processed", "working"])
async def test_an_attempt_the_sedex_client_took_already_is_not_written_again(
        tmp_path: Path, folder: str) -> None:
    """sedex client 7+ moves a message from outbox to working, then to processed once sent."""
    t = make_transport(tmp_path)
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / f"envl_{REF}.xml").write_bytes(b"<taken/>")
    assert "already" in (await t.send(item(resumed=True))).detail
    assert names(tmp_path / "outbox") == set()


@pytest.mark.asyncio
async def test_a_crash_between_data_and_envelope_is_repaired(tmp_path: Path, publishing: str) -> None:
    t = make_transport(tmp_path)
    (tmp_path / "outbox" / f"data_{REF}.xml").write_bytes(b"<partial")
    await t.send(item())
    assert (tmp_path / "outbox" / f"data_{REF}.xml").read_bytes() == PAYLOAD
    assert (tmp_path / "outbox" / f"envl_{REF}.xml").exists()


@pytest.mark.asyncio
async def test_send_errors(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    with pytest.raises(PermanentError):
        await t.send(item(ref="not a sedex id"))
    with pytest.raises(PermanentError):
        await t.send(item(attachments=(Attachment("../x", b""),)))
    shutil.rmtree(tmp_path / "outbox")
    with pytest.raises(LocalFault, match="No such file"):
        await t.send(item())


@pytest.mark.asyncio
async def test_outbox_deleted_and_created_again_takes_sends_again(
        tmp_path: Path, publishing: str) -> None:
    """The staging folder inside the outbox comes back with the outbox."""
    t = make_transport(tmp_path)
    outbox = tmp_path / "outbox"
    shutil.rmtree(outbox)
    with pytest.raises(LocalFault):
        await t.send(item())
    outbox.mkdir()  # as an operator (or the sedex client's installer) would
    assert (await t.send(item())).awaits_receipt
    assert names(outbox) == {f"data_{REF}.xml", f"envl_{REF}.xml"}
    assert (outbox / f"data_{REF}.xml").read_bytes() == PAYLOAD
    assert names(outbox / STAGING) == set()
    if publishing == "unnamed":  # one missing folder did not turn O_TMPFILE off for good
        assert files._tmpfile_works is True


async def test_send_many_answers_each_item_and_writes_the_good_ones(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    good = [f"ref-{i}" for i in range(3)]
    results = await t.send_many([item(ref=good[0]), item(ref="not a sedex id"),
                                 item(ref=good[1]), item(ref=good[2])])
    assert [type(r) for r in results] == [SendResult, PermanentError, SendResult, SendResult]
    assert names(tmp_path / "outbox") == {f"{kind}_{ref}.xml" for ref in good
                                          for kind in ("data", "envl")}


@pytest.mark.asyncio
async def test_disk_full_is_a_local_fault_and_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publishing: str) -> None:
    t = make_transport(tmp_path)

    def full(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write_all", full)
    monkeypatch.setattr(files, "write_file", full)
    with pytest.raises(LocalFault, match="No space left"):
        await t.send(item())
    assert names(tmp_path / "outbox") == set()
    assert names(tmp_path / "outbox" / STAGING) == set()


@pytest.mark.asyncio
@pytest.mark.parametrize("sync", [True, False])
async def test_flush_syncs_once_per_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool) -> None:
    t = make_transport(tmp_path, sync=sync)
    calls: list[Path] = []
    monkeypatch.setattr("plugins.sedex.transport.sync_filesystem", calls.append)
    for n in range(3):
        await t.send(item(ref=f"ref-{n}"))
    await t.flush()
    await t.flush()  # nothing new: no second sync
    assert calls == ([tmp_path / "outbox"] if sync else [])


async def test_a_flush_covers_what_was_written_before_it_was_called(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = make_transport(tmp_path)
    calls: list[str] = []
    second_batch = asyncio.Event()
    loop = asyncio.get_running_loop()

    def sync_while_another_batch_is_written(folder: Path) -> None:
        calls.append("sync")
        loop.call_soon_threadsafe(second_batch.set)  # the next batch is written meanwhile

    monkeypatch.setattr("plugins.sedex.transport.sync_filesystem",
                        sync_while_another_batch_is_written)
    await t.send_many([item(ref="ref-a")])
    flush_a = asyncio.create_task(t.flush())
    await second_batch.wait()
    await t.send_many([item(ref="ref-b")])
    await flush_a
    await t.flush()  # batch b was not covered by a's sync: it syncs again
    await t.flush()
    assert calls == ["sync", "sync"]


@pytest.mark.asyncio
async def test_flush_really_syncs(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    await t.send(item())
    await t.flush()


def pairs(outbox: Path) -> set[str]:
    """The refs whose data file and envelope are both in ``outbox``, the envelope whole."""
    refs = {p.name[5:-4] for p in outbox.glob("envl_*.xml")}
    for ref in refs:
        assert parse_envelope((outbox / f"envl_{ref}.xml").read_bytes(), max_bytes=1 << 20)
    return {ref for ref in refs if (outbox / f"data_{ref}.xml").read_bytes() == PAYLOAD}


def state(pid: int) -> str:
    """The state of process (or thread) ``pid``: ``D`` for uninterruptible sleep."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def outbox_hangs_in_a_worker(root_text: str) -> None:
    """(In a private mount namespace.) The outbox's file system stops answering while a
    worker writes a batch: frozen, its writers sleep in the kernel, where not even SIGKILL
    ends them before it thaws (a network share's writers could at least be killed)."""
    root = Path(root_text)
    outbox = root / "outbox"
    ext4(outbox)
    pool = WorkerPool(1)
    t = make_transport(root, pool.offload, write_timeout=1)
    try:
        await pool.offload(template, t.options)  # a new worker imports and builds it first
        assert isinstance((await t.send_many([item(ref="ref-a")]))[0], SendResult)
        [worker] = pool.pids
        with frozen(outbox, safety=30):
            started = time.monotonic()
            async with asyncio.timeout(20):  # (before write_timeout: until the file system thaws)
                results = await t.send_many([item(ref="ref-b"), item(ref="ref-c")])
            assert time.monotonic() - started < 5
            assert [type(r) for r in results] == [LocalHang] * 2  # unsure, and pausing
            assert f"the sedex outbox {outbox} did not take the files within 1s" in str(results[0])
            assert state(worker) == "D", "killed, and there still: the pool did not wait for it"
            assert await pool.offload(os.getpid) not in (worker, os.getpid())  # a new worker
            stuck = asyncio.create_task(pool.offload(write_attempts, t.options, [item(ref="ref-d")]))
            [worker] = pool.pids
            await until(lambda: state(worker) == "D")
            started = time.monotonic()
            pool.close(at_once=True)  # a drain cut short
            assert time.monotonic() - started < 5, "the pool waited for a worker it cannot kill"
            stuck.cancel()
        # once the file system answers, the same attempts are repeated: each pair once, whole
        await pool.offload(template, t.options)
        resumed = await t.send_many([item(ref=r, resumed=True) for r in ("ref-b", "ref-c")])
        assert [type(r) for r in resumed] == [SendResult] * 2
        assert pairs(outbox) - {"ref-d"} == {"ref-a", "ref-b", "ref-c"}
    finally:
        pool.close()


def test_a_write_into_an_outbox_that_hangs_is_given_up_as_unsure(tmp_path: Path) -> None:
    """A batch whose worker hangs in the outbox (on a real file system, frozen) is given up
    on after ``write_timeout``: its attempts are unsure (they may have arrived), its worker
    is killed and replaced, and neither that nor a stop waits for it; the log names the
    partner and the outbox."""
    output = run_isolated("tests.test_sedex_transport:outbox_hangs_in_a_worker", str(tmp_path))
    assert (f"sedex partner canton: writing into the outbox {tmp_path / 'outbox'} failed:"
            " not done within 1s (does its file system hang?)") in output


def outbox_sync_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The disk under the outbox's file system stops answering:
    the outbox is on a loop device whose image is on a file system that is frozen, so files
    are still written (into memory), but their ``syncfs`` waits, uninterruptibly. No workers:
    writes and syncs run in threads of this process."""
    root = Path(root_text)
    disk, outbox = root / "disk", root / "disk" / "outbox"
    ext4(disk)
    ext4(outbox, "32M")
    t = make_transport(root, outbox=outbox, write_timeout=1)

    async def written_not_synced() -> None:
        assert isinstance((await t.send_many([item()]))[0], SendResult)
        async with asyncio.timeout(20):  # (before write_timeout: until the disk thaws)
            hung = rf"syncfs of the sedex outbox {outbox}: not done within 1s"
            with pytest.raises(LocalHang, match=hung):
                await t.flush()
            threads = len(list(Path("/proc/self/task").iterdir()))
            started = time.monotonic()
            with pytest.raises(LocalHang, match=hung):  # at once: the first has not returned
                await t.flush()
            with pytest.raises(LocalFault, match=rf"the sedex outbox {outbox} does not answer"):
                await t.probe()
            assert time.monotonic() - started < 0.5
            assert len(list(Path("/proc/self/task").iterdir())) == threads, "a thread more"

    with frozen(disk, safety=30):
        started = time.monotonic()
        asyncio.run(written_not_synced())
        assert time.monotonic() - started < 5, "the loop's end waited for the stuck syncfs"
        assert "D" in {state(int(task.name)) for task in Path("/proc/self/task").iterdir()}
    asyncio.run(t.flush())  # the disk answers: the same batch is synced
    assert pairs(outbox) == {REF}


def test_a_sync_of_an_outbox_that_hangs_is_given_up(tmp_path: Path) -> None:
    """A ``flush`` whose ``syncfs`` hangs (the outbox's disk: an image on a frozen file
    system) fails after ``write_timeout`` (the dispatcher then repeats the batch's attempts
    as unsure), and its thread holds up nothing."""
    run_isolated("tests.test_sedex_transport:outbox_sync_hangs", str(tmp_path))


class Lines(logging.Handler):
    """The lines logged by the ``plugins.sedex`` loggers while in the block."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> list[str]:
        logging.getLogger("plugins.sedex").addHandler(self)
        logging.getLogger("plugins.sedex").setLevel(logging.INFO)
        return self.lines

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("plugins.sedex").removeHandler(self)


def threads() -> int:
    return len(list(Path("/proc/self/task").iterdir()))


def stuck_threads() -> int:
    """The threads of this process in uninterruptible sleep (in a file system that hangs)."""
    stuck = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            stuck += state(int(task.name)) == "D"
        except (FileNotFoundError, ProcessLookupError):  # it ended since the listing
            continue
    return stuck


def archive_syncs_hang(root_text: str) -> None:
    """(In a private mount namespace.) The disk under the receipts archive and the processed
    folder stops answering: receipts and pairs are still moved there (into memory), but the
    ``syncfs`` after a scan waits, uninterruptibly. No workers: threads of this process."""
    base = Path(root_text)
    disk, root = base / "disk", base / "disk" / "sedex"
    ext4(disk)
    ext4(root, "32M")
    t = make_transport(root, write_timeout=1, poll_interval=0.05)
    sink, intake = StubReceiptSink({"ref-a", "ref-b"}), StubIntake()
    receipts, archive, processed = root / "receipts", root / "receipts-done", root / "processed"

    def said(text: str) -> bool:
        return any(text in line for line in lines)

    async def scans_not_synced() -> None:
        loop = asyncio.create_task(t.run(sink, intake))
        try:
            with frozen(disk, safety=30):
                write_receipt(receipts, "a.xml", "ref-a")
                pair_from(root / "inbox", "P1", "T3-CH-1", "T3-1234-1")
                hang = "not done within 1s (does its file system hang?); tried again at the next scan"
                await until(lambda: said(f"sedex partner canton: scanning {receipts} failed: syncfs"
                                         f" of the receipts archive {archive}: {hang}")
                            and said(f"sedex partner canton: scanning {root / 'inbox'} failed:"
                                     f" syncfs of the processed folder {processed}: {hang}"))
                before = threads()
                # the scans go on meanwhile: another receipt is recorded and moved
                write_receipt(receipts, "b.xml", "ref-b")
                await until(lambda: names(archive) == {"a.xml", "b.xml"})
                await asyncio.sleep(0.5)  # ten scans of each folder: no thread more
                assert threads() == before
                assert [[r.attempt_ref for r in call] for call in sink.calls] == [["ref-a"], ["ref-b"]]
                assert [raw.ref for raw in intake.submitted] == ["P1"]
                assert names(processed) == {"data_P1.xml", "envl_P1.xml"}
            # the disk answers: the next scans sync what was moved
            await until(lambda: said(f"sedex partner canton: scanning {receipts} works again")
                        and said(f"sedex partner canton: scanning {root / 'inbox'} works again"))
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    with Lines() as lines:
        started = time.monotonic()
        asyncio.run(scans_not_synced())
        assert time.monotonic() - started < 15


def test_syncs_of_the_receipts_archive_and_processed_that_hang_are_given_up(
        tmp_path: Path) -> None:
    """The ``syncfs`` of ``receipts-done`` or ``processed`` after a scan that hangs (their
    disk: an image on a frozen file system) is given up on after ``write_timeout``, logged
    naming the partner and the folder; scans go on (a sync still stuck fails at once, no
    thread piles up), and once the disk answers the next scan syncs."""
    run_isolated("tests.test_sedex_transport:archive_syncs_hang", str(tmp_path))


def inbox_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the inbox and ``processed`` stops
    answering (frozen) while a pair is taken: the pair is read and stored, its move into
    ``processed`` hangs. No workers: threads of this process."""
    root = Path(root_text)
    share = root / "share"
    ext4(share)
    inbox, processed = share / "inbox", share / "processed"
    inbox.mkdir()
    processed.mkdir()
    t = make_transport(root, inbox=inbox, processed=processed, write_timeout=1,
                       poll_interval=0.05)
    sink, intake = StubReceiptSink({"ref-a"}), StubIntake()
    failed = (f"sedex partner canton: scanning {inbox} failed: moving 2 files into {processed}:"
              " not done within 1s (does its file system hang?)")
    pair_from(inbox, "P1", "T3-CH-1", "T3-1234-1")

    def said(text: str) -> int:
        return sum(text in line for line in lines)

    async def scans_while_it_hangs() -> None:
        loop = asyncio.create_task(t.run(sink, intake))
        try:
            with frozen(share, safety=30):
                await until(lambda: said(failed), timeout=10)
                assert [raw.ref for raw in intake.submitted] == ["P1"]  # stored before the move
                # the event loop and the receipts go on meanwhile
                write_receipt(root / "receipts", "a.xml", "ref-a")
                await until(lambda: (root / "receipts-done" / "a.xml").exists())
                await asyncio.sleep(1)  # twenty scans of the inbox: each fails at once
                assert stuck_threads() == 1
                assert said(failed) == 1, lines  # said once (then every 5 minutes)
                assert [raw.ref for raw in intake.submitted] == ["P1"]
                assert names(inbox) == {"data_P1.xml", "envl_P1.xml"}
            # it answers: the move given up on ends, scans work again, P1 is not taken twice
            await until(lambda: said(f"sedex partner canton: scanning {inbox} works again"))
            pair_from(inbox, "P2", "T3-CH-1", "T3-1234-1")
            await until(lambda: len(intake.submitted) == 2)
            assert [raw.ref for raw in intake.submitted] == ["P1", "P2"]
            assert names(processed) == {"data_P1.xml", "envl_P1.xml", "data_P2.xml",
                                        "envl_P2.xml"}
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    with Lines() as lines:
        asyncio.run(scans_while_it_hangs())


def test_an_inbox_that_hangs_holds_up_nothing_else(tmp_path: Path) -> None:
    """Calls into an inbox whose share hangs (a real file system, frozen) run in a thread,
    given up on after ``write_timeout``: the log says so once, naming the partner and the
    folders; the event loop and the receipts go on, later scans fail at once (no thread
    piles up). The pair was stored before its move; once the share answers, it is moved
    and not taken again."""
    run_isolated("tests.test_sedex_transport:inbox_hangs", str(tmp_path))


def inbox_reads_hang(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the inbox stops answering while a
    batch of pairs is read. The inbox is on a file system whose disk (a loop device) has
    its image on another one, frozen: a write into the inbox's file system waits there,
    and the loop device serves no read after it. What the listing needs is cached, the
    pairs' contents are not: reading them waits."""
    base = Path(root_text)
    disk, share = base / "disk", base / "disk" / "share"
    ext4(disk)
    ext4(share, "32M")
    t = make_transport(share, write_timeout=1)
    inbox, processed = share / "inbox", share / "processed"
    keys = ("P1", "P2", "P3")
    for key in keys:
        pair_from(inbox, key, "T3-CH-1", "T3-1234-1")
    pairs = {f"{half}_{key}.xml" for key in keys for half in ("data", "envl")}
    os.sync()
    for name in pairs:  # their contents leave the page cache; their names and inodes stay
        fd = os.open(inbox / name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    intake = StubIntake()
    hung = (f"reading 3 pairs or lone files in {inbox}: not done within 1s (does its file"
            " system hang?)")

    async def scans_while_reads_hang() -> None:
        with frozen(disk, safety=30):
            writer = subprocess.Popen(
                ["dd", "if=/dev/zero", f"of={share / 'filler'}", "bs=64k", "count=4",
                 "conv=fsync"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await until(lambda: state(writer.pid) == "D")  # its write waits in the loop device
            started = time.monotonic()
            with pytest.raises(TransientError) as first:
                await t.scan_inbox(intake)
            assert time.monotonic() - started < 10, "bounded by write_timeout"
            with pytest.raises(TransientError) as second:  # at once: the read has not returned
                await t.scan_inbox(intake)
            assert str(first.value) == str(second.value) == hung
            assert stuck_threads() == 1, "one thread for the batch, left behind"
            assert intake.submitted == [] and intake.quarantined == []
            assert names(inbox) == pairs
        assert writer.wait() == 0
        # it answers: the read given up on returns, the next scan takes every pair once
        await until(lambda: not t.inbox_scanner.calls.hung)
        assert await t.scan_inbox(intake) == 3
        assert [raw.ref for raw in intake.submitted] == list(keys)
        assert names(processed) == pairs and names(inbox) == set()

    asyncio.run(scans_while_reads_hang())


def test_a_batch_read_from_an_inbox_that_hangs_is_given_up_on_as_one_call(
        tmp_path: Path) -> None:
    """The pairs of a scan are read in one call into the inbox (a thread per batch, not per
    pair): when the share hangs while they are read (a real file system, frozen under
    it), that call is given up on after ``write_timeout`` as a transient error naming the
    pairs; the next scan fails at once, one thread is left behind, nothing is stored or
    moved. Once the share answers, every pair is stored once and moved."""
    run_isolated("tests.test_sedex_transport:inbox_reads_hang", str(tmp_path))


def receipts_unanswering(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the receipts folder does not answer
    at all (its server is gone) when the transport starts: watching the folder, the first
    call into it, is given up on after ``write_timeout``, said once; the event loop and the
    inbox go on, and the transport stops while the share still hangs."""
    root = Path(root_text)
    share = root / "share"
    receipts = share / "receipts"
    receipts.mkdir(parents=True)
    t = make_transport(root, receipts=receipts, write_timeout=1, poll_interval=0.05)
    failed = (f"sedex partner canton: scanning {receipts} failed: watching {receipts}: not"
              " done within 1s (does its file system hang?)")

    async def scans_while_it_hangs(hangs: Callable[[], bool]) -> None:
        intake = StubIntake()
        loop = asyncio.create_task(t.run(StubReceiptSink(), intake))
        try:
            await until(lambda: failed in lines, timeout=10)
            pair_from(root / "inbox", "P1", "T3-CH-1", "T3-1234-1")
            await until(lambda: [raw.ref for raw in intake.submitted] == ["P1"])
            await asyncio.sleep(0.5)  # ten scans of the receipts: each fails at once
            assert lines.count(failed) == 1, lines
            assert hangs(), "the event loop waited until the share was cut off"
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    with Lines() as lines, unanswering(share, safety=20) as hangs:
        asyncio.run(scans_while_it_hangs(hangs))
        assert hangs(), "the run ended only once the share was cut off"


def test_a_receipts_folder_that_does_not_answer_holds_up_nothing_else(tmp_path: Path) -> None:
    """Watching a folder (inotify looks it up) is a call into it like the others: on a share
    that does not answer it is given up on after ``write_timeout``, not waited for on the
    event loop, which would hold up every other folder, partner and the stop."""
    require_fuse()
    run_isolated("tests.test_sedex_transport:receipts_unanswering", str(tmp_path))


async def receipts_hang(root_text: str) -> None:
    """(In a private mount namespace.) The share holding the receipts folder and its archive
    stops answering (frozen): a recorded receipt's move hangs in a worker process. Each scan
    takes one receipt."""
    root = Path(root_text)
    share = root / "share"
    ext4(share)
    receipts, archive = share / "receipts", share / "receipts-done"
    receipts.mkdir()
    pool = WorkerPool(1)
    t = make_transport(root, pool.offload, receipts=receipts, receipts_archive=archive,
                       write_timeout=1)
    t.receipt_scanner.limit = 1
    sink = StubReceiptSink({"ref-a", "ref-b", "ref-c"})
    moving = re.escape(f"moving 1 receipt into {archive}: not done within 1s (does its file"
                       " system hang?)")

    def recorded() -> list[list[str]]:
        return [[r.attempt_ref for r in call] for call in sink.calls]

    try:
        # a worker, started, that imported and built what reading receipts needs
        await pool.offload(read_receipts, t.receipt_scanner.taker, 1, "canton", 1 << 20)
        for name in "abc":
            write_receipt(receipts, f"{name}.xml", f"ref-{name}")
        with frozen(share, safety=30):
            [worker] = pool.pids
            started = time.monotonic()
            with pytest.raises(TransientError, match=moving):
                await t.scan_receipts(sink, StubIntake())
            assert time.monotonic() - started < 5
            assert state(worker) == "D", "killed, and there still: the pool did not wait for it"
            assert await pool.offload(os.getpid) not in (worker, os.getpid())  # a new worker
            await pool.offload(read_receipts, t.receipt_scanner.taker, 0, "canton", 1 << 20)
            # the next move runs in a thread: it hangs too, and later scans fail at once
            with pytest.raises(TransientError, match=moving):
                await t.scan_receipts(sink, StubIntake())
            started = time.monotonic()
            for _ in range(3):
                with pytest.raises(TransientError, match=moving):
                    await t.scan_receipts(sink, StubIntake())
            assert time.monotonic() - started < 0.5
            assert stuck_threads() == 1
            assert recorded() == [["ref-a"], ["ref-b"]]
        # it answers: the thread's move ends; the killed worker's does not (it died
        # before it moved a.xml): a.xml, recorded, waits in place, not recorded again
        await until(lambda: not t.receipt_scanner.calls.hung)
        assert names(archive) == {"b.xml"}
        assert await t.scan_receipts(sink, StubIntake()) == 1
        assert await t.scan_receipts(sink, StubIntake()) == 0
        assert recorded() == [["ref-a"], ["ref-b"], ["ref-c"]]
        assert names(receipts) == {"a.xml"} and names(archive) == {"b.xml", "c.xml"}
    finally:
        pool.close(at_once=True)


def test_receipts_that_hang_hold_no_worker(tmp_path: Path) -> None:
    """Moving recorded receipts into an archive whose share hangs (a real file system,
    frozen) is given up on after ``write_timeout``: the worker is killed and replaced, later
    moves run in one thread, watched, and fail at once while it hangs; each receipt is
    recorded once and moved once the share answers."""
    run_isolated("tests.test_sedex_transport:receipts_hang", str(tmp_path))


# ---------------------------------------------------------------------------
# receipts
# ---------------------------------------------------------------------------


def write_receipt(folder: Path, name: str, ref: str, code: int = 100) -> None:
    env = Envelope(ref, 2_200_001, 0, "T3-1234-1", ("T3-CH-1",), WHEN, WHEN)
    (folder / name).write_bytes(build_receipt(env, "T3-CH-1", code, "info", WHEN))


def still_there(folder: Path, wanted: set[str]) -> Callable[..., None]:
    def check(*_: Any) -> None:
        assert wanted <= names(folder), "file moved before the call returned"
    return check


async def test_recorded_receipts_are_moved_even_when_the_worker_dies_then(
        tmp_path: Path) -> None:
    moves = []

    async def dies_when_moving(fn: Any, *args: Any, timeout: float | None = None) -> Any:
        if fn.__name__ == "finish":
            moves.append(args)
            raise WorkerLost("a worker process died while running finish")
        return fn(*args)

    t = make_transport(tmp_path, dies_when_moving)
    write_receipt(tmp_path / "receipts", "a.xml", "ref-a", 100)
    sink = StubReceiptSink({"ref-a"})
    assert await t.scan_receipts(sink, StubIntake()) == 1
    assert names(tmp_path / "receipts-done") == {"a.xml"}
    assert await t.scan_receipts(sink, StubIntake()) == 0  # not recorded twice
    assert len(sink.calls) == 1
    assert len(moves) == 1  # the worker died moving it: it was moved in this process


@pytest.mark.asyncio
async def test_receipts_are_recorded_in_one_call_then_moved(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    folder = tmp_path / "receipts"
    write_receipt(folder, "a.xml", "ref-a", 100)
    write_receipt(folder, "20240301-xyz_receipt.xml", "ref-b", 601)
    write_receipt(folder, "Q.xml", "ref-unknown", 401)
    write_receipt(folder, ".tmp-hidden.xml", "ref-c")
    (folder / "readme.txt").write_text("not a receipt")
    visible = {"a.xml", "20240301-xyz_receipt.xml", "Q.xml"}
    sink = StubReceiptSink({"ref-a", "ref-b"}, during_record=still_there(folder, visible))
    assert await t.scan_receipts(sink, StubIntake()) == 3
    assert len(sink.calls) == 1
    outcomes = {r.attempt_ref: r.outcome for r in sink.receipts}
    assert outcomes == {"ref-a": ReceiptOutcome.DELIVERED, "ref-b": ReceiptOutcome.WAIT,
                        "ref-unknown": ReceiptOutcome.FAILED_TRANSIENT}
    assert all(r.at == WHEN and r.raw for r in sink.receipts)
    assert names(folder) == {".tmp-hidden.xml", "readme.txt"}
    done = tmp_path / "receipts-done"
    assert names(done) == {"a.xml", "20240301-xyz_receipt.xml", "unmatched"}
    assert names(done / "unmatched") == {"Q.xml"}
    assert await t.scan_receipts(sink, StubIntake()) == 0
    assert len(sink.calls) == 1


@pytest.mark.asyncio
async def test_garbage_receipt_is_quarantined_then_moved(tmp_path: Path) -> None:
    t = make_transport(tmp_path, receipts_archive=tmp_path / "archive")
    folder = tmp_path / "receipts"
    (folder / "bad.xml").write_bytes(b"<receipt>broken</receipt>")
    intake = StubIntake(during_quarantine=still_there(folder, {"bad.xml"}))
    sink = StubReceiptSink()
    assert await t.scan_receipts(sink, intake) == 1
    ((raw, reason),) = intake.quarantined
    assert (raw.source, raw.ref, raw.data) == ("canton", "bad.xml", b"<receipt>broken</receipt>")
    assert "receipt" in reason
    assert sink.calls == []
    assert names(tmp_path / "archive" / "rejected") == {"bad.xml"}


@pytest.mark.asyncio
async def test_receipt_name_clash_in_archive_never_overwrites(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    done = tmp_path / "receipts-done"
    done.mkdir()
    (done / "a.xml").write_bytes(b"older")
    write_receipt(tmp_path / "receipts", "a.xml", "ref-a")
    await t.scan_receipts(StubReceiptSink(), StubIntake())
    assert (done / "a.xml").read_bytes() == b"older"
    assert names(done) == {"a.xml", "a-1.xml"}


class LinkedBeforeEvidence(FileTaker):
    """A receipts folder where another program replaces an oversized file by a symbolic
    link between the read that found it too large and the taking of its evidence.

    Only the timing is staged here: the OSError is the real one of opening a link
    with O_NOFOLLOW (ELOOP); removing the file instead is no error (evidence is None).
    """

    def evidence(self, ready: Ready, keep: int) -> tuple[Evidence, Stored] | None:
        target = Path(ready.path).with_name("elsewhere")
        os.replace(ready.path, target)
        os.symlink(target, ready.path)
        return super().evidence(ready, keep)


def test_an_oversized_receipt_whose_evidence_cannot_be_kept_is_a_problem_not_a_crash(
        tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    write_receipt(folder, "b.xml", "ref-b")
    limit = (folder / "b.xml").stat().st_size
    (folder / "a.xml").write_bytes(b"<receipt>" + b"x" * limit + b"</receipt>")
    batch = read_receipts(LinkedBeforeEvidence(folder, ("*.xml",), 0, 0), 10, "canton", limit)
    [problem] = batch.problems
    assert problem.startswith(f"cannot keep evidence of sedex receipt {folder / 'a.xml'}"
                              " (larger than the limit): ")
    assert batch.rejected == []
    assert [r.attempt_ref for _stored, r in batch.found] == ["ref-b"]  # the loop went on


# ---------------------------------------------------------------------------
# inbound pairs
# ---------------------------------------------------------------------------


#: The envelope ids of the canton's pairs as ``init`` configures it (its senderId, our
#: recipientId): ``envelope_bytes(ref, **CANTON)`` for a daemon on that configuration.
CANTON: dict[str, Any] = {"sender_id": "T2-2-1", "recipient_ids": ("T1-2511-1",)}


def envelope_bytes(message_id: str = "in-1", **changes: Any) -> bytes:
    fields = {"sender_id": "T3-CH-1", "recipient_ids": ("T3-1234-1",), **changes}
    return build_envelope(Envelope(message_id, 2_200_002, 0, event_date=WHEN, message_date=WHEN,
                                   **fields))


def age(path: Path, seconds: float = 3600) -> None:
    """Set the file's times back (its change time, which the gateway also heeds, stays)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.asyncio
@pytest.mark.parametrize("envelope_first", [True, False])
async def test_pair_in_either_arrival_order(tmp_path: Path, envelope_first: bool) -> None:
    t = make_transport(tmp_path)
    inbox = tmp_path / "inbox"
    pair = {"envl_X1.xml": envelope_bytes(reference_message_id="orig-1"), "data_X1.xml": PAYLOAD}
    first, second = sorted(pair, reverse=not envelope_first)
    (inbox / first).write_bytes(pair[first])
    intake = StubIntake(during_submit=still_there(inbox, set(pair)))
    assert await t.scan_inbox(intake) == 0
    assert intake.submit_calls == [] and intake.quarantined == []
    (inbox / second).write_bytes(pair[second])
    assert await t.scan_inbox(intake) == 1
    ((raw,),) = intake.submit_calls
    assert (raw.source, raw.ref, raw.data) == ("canton", "X1", PAYLOAD)
    assert dict(raw.meta) == {
        "transport": "sedex", "sedex_message_id": "in-1", "sender_id": "T3-CH-1",
        "message_type": "2200002", "message_class": "0", "reference_message_id": "orig-1",
        "payload_name": "data_X1.xml", "envelope_name": "envl_X1.xml",
        "content_type": "application/xml", "moved_to": str(tmp_path / "processed")}
    assert names(inbox) == set()
    assert names(tmp_path / "processed") == set(pair)


@pytest.mark.asyncio
async def test_all_pairs_of_a_scan_in_one_submit_and_hidden_files_ignored(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    inbox = tmp_path / "inbox"
    for n in range(3):
        (inbox / f"data_P{n}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
        (inbox / f"envl_P{n}.xml").write_bytes(envelope_bytes(f"in-{n}"))
    for hidden in (".envl_H.xml", ".data_H.xml", "envl_T.xml.part", "~data_T.xml"):
        (inbox / hidden).write_bytes(b"x")
        age(inbox / hidden)
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 3
    assert len(intake.submit_calls) == 1
    assert [r.meta["sedex_message_id"] for r in intake.submitted] == ["in-0", "in-1", "in-2"]
    assert {r.meta["content_type"] for r in intake.submitted} == {"application/zip"}
    assert intake.quarantined == []
    assert names(inbox) == {".envl_H.xml", ".data_H.xml", "envl_T.xml.part", "~data_T.xml"}


@pytest.mark.asyncio
@pytest.mark.parametrize(("lone", "reason"), [
    ("envl_L.xml", "envelope without payload"), ("data_L.pdf", "payload without envelope")])
async def test_lone_file_quarantined_after_grace(tmp_path: Path, lone: str, reason: str) -> None:
    t = make_transport(tmp_path, pair_grace="50ms")
    inbox = tmp_path / "inbox"
    (inbox / lone).write_bytes(envelope_bytes() if lone.startswith("envl") else b"%PDF")
    intake = StubIntake(during_quarantine=still_there(inbox, {lone}))
    assert await t.scan_inbox(intake) == 0  # still within the grace period
    await asyncio.sleep(0.1)
    assert await t.scan_inbox(intake) == 1
    assert intake.reasons == [reason]
    ((raw, _),) = intake.quarantined
    assert raw.ref == "L"
    assert raw.data == (tmp_path / "processed" / lone).read_bytes()
    assert names(inbox) == set() and intake.submitted == []


@pytest.mark.asyncio
async def test_unfinished_envelope_waits_for_grace_then_is_quarantined(tmp_path: Path) -> None:
    t = make_transport(tmp_path, grace="100ms")
    inbox = tmp_path / "inbox"
    (inbox / "data_B.xml").write_bytes(PAYLOAD)
    (inbox / "envl_B.xml").write_bytes(b"<envelope>")  # perhaps still being written
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 0
    await asyncio.sleep(0.15)
    assert await t.scan_inbox(intake) == 1
    ((raw, reason),) = intake.quarantined
    assert reason.startswith("bad sedex envelope: unfinished file ") and raw.data == PAYLOAD
    assert "envl_B.xml: XML without the end tag of its root element <envelope>" in reason
    assert names(tmp_path / "processed" / "rejected") == {"data_B.xml", "envl_B.xml"}
    assert intake.submitted == []


@pytest.mark.asyncio
async def test_finished_but_bad_envelope_is_quarantined_at_once(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    (tmp_path / "inbox" / "data_B.xml").write_bytes(PAYLOAD)
    (tmp_path / "inbox" / "envl_B.xml").write_bytes(b"<envelope>not sedex</envelope>")
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 1
    ((raw, reason),) = intake.quarantined
    assert reason.startswith("bad sedex envelope") and raw.data == PAYLOAD


@pytest.mark.asyncio
async def test_oversized_payload_is_quarantined_with_what_may_be_kept(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    t.inbox_scanner.max_bytes = 2000  # the envelopes fit, the payload does not
    t.inbox_scanner.max_kept = 100
    big = b"<r>" + b"x" * 3000 + b"</r>"
    (tmp_path / "inbox" / "data_O.xml").write_bytes(big)
    (tmp_path / "inbox" / "envl_O.xml").write_bytes(envelope_bytes())
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 1
    ((raw, reason),) = intake.quarantined
    assert raw.data == big[:100] and raw.meta["size"] == str(len(big))
    assert raw.meta["sha256"] == hashlib.sha256(big).hexdigest()
    assert f"payload of {len(big)} bytes is larger than 2000 bytes" in reason
    assert "keeps its first 100 bytes" in reason
    assert names(tmp_path / "processed" / "rejected") == {"data_O.xml", "envl_O.xml"}


@pytest.mark.asyncio
async def test_bad_pairs_among_good_ones_are_quarantined_with_their_reasons_the_rest_stored(
        tmp_path: Path) -> None:
    """The pairs of a scan are read in one call: each bad one among them (a broken envelope,
    a payload over the limit, a pair for another participant) is quarantined with its
    reason and moved to ``processed/rejected``; the good ones are stored together and moved
    to ``processed``. Each pair is moved only once it is stored."""
    t = make_transport(tmp_path)
    t.inbox_scanner.max_bytes = 2000  # the envelopes fit, D's payload does not
    t.inbox_scanner.max_kept = 100
    inbox = tmp_path / "inbox"
    for key in ("A", "C", "E"):
        pair_from(inbox, key, "T3-CH-1", "T3-1234-1")
    (inbox / "data_B.xml").write_bytes(PAYLOAD)
    (inbox / "envl_B.xml").write_bytes(b"<envelope>not sedex</envelope>")
    big = b"<r>" + b"x" * 3000 + b"</r>"
    (inbox / "data_D.xml").write_bytes(big)
    (inbox / "envl_D.xml").write_bytes(envelope_bytes("id-D"))
    pair_from(inbox, "F", "T3-CH-1", "T3-9999-1")

    def pair_there(*raws: Any) -> None:
        batch = raws[0] if isinstance(raws[0], list) else [raws[0]]
        assert {f"{half}_{raw.ref}.xml" for raw in batch for half in ("data", "envl")} <= names(
            inbox), "moved before it was stored"

    intake = StubIntake(during_submit=pair_there, during_quarantine=pair_there)
    assert await t.scan_inbox(intake) == 6
    assert [[raw.ref for raw in call] for call in intake.submit_calls] == [["A", "C", "E"]]
    assert [raw.ref for raw, _ in intake.quarantined] == ["B", "D", "F"]
    assert {raw.meta["moved_to"] for raw, _ in intake.quarantined} == {
        str(tmp_path / "processed" / "rejected")}, "where an operator finds them"
    broken, oversized, others = intake.reasons
    assert broken.startswith("bad sedex envelope: ")
    assert oversized.startswith(f"payload of {len(big)} bytes is larger than 2000 bytes"
                                " ([limits] max_document_bytes)")
    assert others == ("sedex pair from senderId T3-CH-1 addressed to recipientId T3-9999-1,"
                      " none of our participant ids (T3-1234-1)")
    assert names(inbox) == set()
    assert names(tmp_path / "processed") == {
        "rejected", *(f"{half}_{key}.xml" for key in "ACE" for half in ("data", "envl"))}
    assert names(tmp_path / "processed" / "rejected") == {
        f"{half}_{key}.xml" for key in "BDF" for half in ("data", "envl")}


@pytest.mark.asyncio
async def test_a_batch_read_ends_after_its_time_and_the_next_call_goes_on(
        tmp_path: Path) -> None:
    """One call reads pairs for at most ``read_for`` (half of ``write_timeout``): on a share
    that is slow but answers, a large batch is not given up on as hung; the pairs it left
    are read by the next call of the same scan."""
    t = make_transport(tmp_path)
    t.inbox_scanner.read_for = 0  # every call has run out of time after its first pair
    for key in "ABC":
        pair_from(tmp_path / "inbox", key, "T3-CH-1", "T3-1234-1")
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 3
    assert [[raw.ref for raw in call] for call in intake.submit_calls] == [["A"], ["B"], ["C"]]
    assert names(tmp_path / "inbox") == set()


@pytest.mark.asyncio
async def test_a_pair_that_cannot_be_read_stays_and_the_others_of_its_batch_are_stored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A pair whose file cannot be read as its batch is read (here: replaced by a symbolic
    link since the listing, which is never followed) is left in the inbox with a warning;
    the pairs read in the same call are stored and moved."""
    t = make_transport(tmp_path)
    t.inbox_scanner.batch_bytes = 2 * len(PAYLOAD)  # two pairs per call: A B, then C D E
    inbox = tmp_path / "inbox"
    for key in "ABCDE":
        pair_from(inbox, key, "T3-CH-1", "T3-1234-1")
    (tmp_path / "outside.xml").write_bytes(PAYLOAD)

    def swap_d(_raws: Any) -> None:
        if (inbox / "data_D.xml").is_symlink():
            return
        (inbox / "data_D.xml").unlink()
        (inbox / "data_D.xml").symlink_to(tmp_path / "outside.xml")

    intake = StubIntake(during_submit=swap_d)
    assert await t.scan_inbox(intake) == 4
    assert [[raw.ref for raw in call] for call in intake.submit_calls] == [["A", "B"], ["C", "E"]]
    assert intake.quarantined == []
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"cannot read sedex inbox file(s) {inbox}/D: [Errno 40] Too many levels of symbolic"
        f" links: '{inbox}/data_D.xml'"]
    assert names(inbox) == {"data_D.xml", "envl_D.xml"}


@pytest.mark.asyncio
async def test_stored_pair_that_cannot_be_moved_is_not_stored_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = make_transport(tmp_path)
    (tmp_path / "inbox" / "data_S.xml").write_bytes(PAYLOAD)
    (tmp_path / "inbox" / "envl_S.xml").write_bytes(envelope_bytes())
    (tmp_path / "processed").rmdir()
    (tmp_path / "processed").write_bytes(b"a file where the folder should be")
    intake = StubIntake()
    assert await t.inbox_scanner.scan(intake) == 1
    assert await t.inbox_scanner.scan(intake) == 0
    assert len(intake.submitted) == 1
    assert names(tmp_path / "inbox") == {"data_S.xml", "envl_S.xml"}
    assert any("cannot move" in r.getMessage() and "until restart" in r.getMessage()
               for r in caplog.records)


@pytest.mark.asyncio
async def test_run_picks_up_receipts_and_pairs(tmp_path: Path) -> None:
    t = make_transport(tmp_path, poll_interval=0.05)
    intake, sink = StubIntake(), StubReceiptSink()
    task = asyncio.create_task(t.run(sink, intake))
    await asyncio.sleep(0.1)
    write_receipt(tmp_path / "receipts", "r.xml", REF)
    (tmp_path / "inbox" / "data_R.xml").write_bytes(PAYLOAD)
    (tmp_path / "inbox" / "envl_R.xml").write_bytes(envelope_bytes())
    await wait_for(lambda: intake.submitted and sink.receipts)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.receipts[0].attempt_ref == REF
    assert intake.submitted[0].ref == "R"


async def test_a_vanished_receipts_folder_is_reported_once_then_its_return(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = make_transport(tmp_path, poll_interval=0.02)
    shutil.rmtree(tmp_path / "receipts")
    task = asyncio.create_task(t.run(StubReceiptSink(), StubIntake()))
    await asyncio.sleep(0.3)  # a dozen scans fail meanwhile
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    (tmp_path / "receipts").mkdir()
    await wait_for(lambda: any("works again" in r.getMessage() for r in caplog.records))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(errors) == 1, errors
    assert "scanning" in errors[0] and "No such file or directory" in errors[0]


async def wait_for(condition: Callable[[], object], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_partners_sharing_a_receipts_folder_record_each_receipt_once(
        tmp_path: Path) -> None:
    """One sedex client for two partners: the first running reads the receipts, the other
    once the first stops."""
    first = make_transport(tmp_path, poll_interval=0.05)
    second = make_transport(tmp_path, poll_interval=0.05, recipient_id="T3-CH-2")
    sink, receipts, done = StubReceiptSink(), tmp_path / "receipts", tmp_path / "receipts-done"
    tasks = [asyncio.create_task(t.run(sink, StubIntake())) for t in (first, second)]
    await asyncio.sleep(0.1)
    write_receipt(receipts, "a.xml", "ref-a")
    await wait_for(lambda: (done / "a.xml").exists())
    await asyncio.sleep(0.2)  # scans of both come and go meanwhile
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    write_receipt(receipts, "b.xml", "ref-b")
    await wait_for(lambda: (done / "b.xml").exists())
    await asyncio.sleep(0.2)
    tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert [(r.attempt_ref, r.recipient) for r in sink.receipts] == [
        ("ref-a", "T3-CH-1"), ("ref-b", "T3-CH-1")]


#: Partner canton-b on the sedex client of ``init``'s canton (``{sedex}``: its folders),
#: sharing its inbox; each partner's own ``{extra}`` lines.
SHARING = """\
[partners.canton.sedex]
poll_interval = "50ms"
settle = "0s"
"""


def sharing_site(root: Path, extra: str = "") -> Any:
    """``init``'s configuration with partner ``canton-b`` on its sedex inbox, and ``extra``, in
    conf.d, loaded as the daemon loads it."""
    config = write_initial_config(root)
    (root / "conf.d" / "20-sharing.toml").write_text(
        SHARING + sedex_partner(root / "sedex", "canton-b", "T2-3-1", settle="0s") + extra)
    return load_config(config, get_plugin_manager())


def transport_of(settings: Any, name: str) -> SedexTransport:
    """Partner ``name``'s transport as the daemon makes it."""
    limits = NormaliseContext(max_bytes=1 << 20, max_zip_entries=100, max_zip_bytes=1 << 24,
                              max_zip_ratio=100)
    context = PluginContext(name, settings.gateway.data_dir, limits, settings)
    return create_transport(settings.partners[name].parsed, context)


def pair_from(inbox: Path, key: str, sender: str, recipient: str = "T1-2511-1") -> None:
    """A pair as the sedex client leaves it in ``inbox``: from ``sender`` to ``recipient``."""
    (inbox / f"data_{key}.xml").write_bytes(PAYLOAD)
    (inbox / f"envl_{key}.xml").write_bytes(
        envelope_bytes(f"id-{key}", sender_id=sender, recipient_ids=(recipient,)))


class SlowIntake(StubIntake):
    """Stores as slowly as a busy database: a second reader of the folder would meanwhile
    take the same files."""

    async def submit(self, raws: Any, *, wait: bool = True) -> list[int]:
        await asyncio.sleep(0.1)
        return await super().submit(raws, wait=wait)


async def test_partners_sharing_an_inbox_store_each_pair_once_as_its_senders(
        tmp_path: Path) -> None:
    """The first running reads the inbox, the other once the first stops; whoever reads a
    pair, it is its senderId's partner's, also the stopped partner's."""
    settings = sharing_site(tmp_path)
    first, second = transport_of(settings, "canton"), transport_of(settings, "canton-b")
    inbox, processed = tmp_path / "sedex" / "inbox", tmp_path / "sedex" / "processed"
    intake = SlowIntake()
    tasks = [asyncio.create_task(t.run(StubReceiptSink(), intake)) for t in (first, second)]
    await asyncio.sleep(0.1)
    pair_from(inbox, "A1", "T2-2-1")
    pair_from(inbox, "B1", "T2-3-1")
    await wait_for(lambda: len(names(processed)) == 4)
    await asyncio.sleep(0.2)  # scans of both come and go meanwhile
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    pair_from(inbox, "A2", "T2-2-1")
    pair_from(inbox, "B2", "T2-3-1")
    await wait_for(lambda: len(names(processed)) == 8)
    await asyncio.sleep(0.2)
    tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert sorted((raw.ref, raw.source) for raw in intake.submitted) == [
        ("A1", "canton"), ("A2", "canton"), ("B1", "canton-b"), ("B2", "canton-b")]
    assert [NOT_FROM_PARTNER in raw.meta for raw in intake.submitted] == [False] * 4
    assert intake.quarantined == [] and names(inbox) == set()


async def test_a_pair_no_partner_of_the_inbox_sent_is_kept_and_says_why(tmp_path: Path) -> None:
    """Whoever reads it: under the inbox's first partner's name, marked as not from it; one
    addressed to none of our ids is quarantined."""
    sedex = tmp_path / "sedex"
    settings = sharing_site(tmp_path, extra=(
        sedex_partner(sedex, "canton-c", "T2-4-1", enabled=False)
        + sedex_partner(sedex, "canton-d", "T2-5-1", sender_id="T1-2511-2")))
    reader = transport_of(settings, "canton-b")
    inbox, processed = sedex / "inbox", sedex / "processed"
    pair_from(inbox, "stranger", "T2-9-1")
    pair_from(inbox, "disabled", "T2-4-1")
    pair_from(inbox, "echo", "T1-2511-1")
    pair_from(inbox, "other-id", "T2-2-1", "T1-2511-2")
    pair_from(inbox, "elsewhere", "T2-3-1", "T1-9999-1")
    pair_from(inbox, "b", "T2-3-1")
    pair_from(inbox, "d", "T2-5-1", "T1-2511-2")
    intake = StubIntake()
    assert await reader.scan_inbox(intake) == 7
    assert {raw.ref: (raw.source, raw.meta.get(NOT_FROM_PARTNER)) for raw in intake.submitted} == {
        "stranger": ("canton", "sedex senderId T2-9-1 is the recipient_id of no partner reading"
                               " this inbox (canton T2-2-1, canton-b T2-3-1, canton-d T2-5-1)"),
        "disabled": ("canton", "sedex senderId T2-4-1 is partner 'canton-c''s, which is disabled"),
        "echo": ("canton", "sedex senderId T1-2511-1 is our own participant id (an echo message)"),
        "other-id": ("canton", "sedex senderId T2-2-1 is partner 'canton''s, but it wrote to"
                               " recipientId T1-2511-2, not to that partner's sender_id"),
        "b": ("canton-b", None),
        "d": ("canton-d", None),
    }
    assert {raw.meta["sender_id"] for raw in intake.submitted if raw.ref == "stranger"} == {
        "T2-9-1"}
    [(raw, reason)] = intake.quarantined
    assert (raw.ref, raw.source, reason) == (
        "elsewhere", "canton-b", "sedex pair from senderId T2-3-1 addressed to recipientId"
        " T1-9999-1, none of our participant ids (T1-2511-1, T1-2511-2)")
    assert names(processed / "rejected") == {"data_elsewhere.xml", "envl_elsewhere.xml"}
    assert len(names(processed)) == 12 + 1 and names(inbox) == set()


def test_partners_an_inbox_cannot_tell_apart_are_a_configuration_error(tmp_path: Path) -> None:
    sedex = tmp_path / "one" / "sedex"
    with pytest.raises(ConfigError) as raised:
        sharing_site(tmp_path / "one", extra=sedex_partner(sedex, "twin", "T2-2-1"))
    assert raised.value.problems == [(  # named by the file that set it
        str(tmp_path / "one" / "conf.d" / "20-sharing.toml"), "partners.twin.sedex.recipient_id",
        "partner 'canton' has the same recipient_id and sender_id (T2-2-1, T1-2511-1) and the"
        f" same inbox ({sedex / 'inbox'}): whose a message there is could not be told")]
    # told apart by their own inbox, or by our sender_id; a disabled twin reads nothing
    sedex = tmp_path / "two" / "sedex"
    (sedex / "inbox-twin").mkdir(parents=True)
    settings = sharing_site(tmp_path / "two", extra=(
        sedex_partner(sedex, "twin", "T2-2-1", inbox="inbox-twin")
        + sedex_partner(sedex, "twin-2", "T2-2-1", sender_id="T1-2511-2")
        + sedex_partner(sedex, "twin-3", "T2-2-1", enabled=False)))
    assert sorted(settings.partners) == ["canton", "canton-b", "registry", "twin", "twin-2",
                                         "twin-3"]


async def test_send_many_survives_a_worker_dying_mid_batch(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    refs = [f"ref-{i}" for i in range(3)]

    async def dies_after_the_first(fn: Any, options: Any, items: Any, timeout: float) -> Any:
        fn(options, items[:1])  # one pair is in the outbox when the worker dies
        raise WorkerLost("a worker process died while running write_attempts")

    t._offload = dies_after_the_first
    results = await t.send_many([item(ref=r) for r in refs])
    assert [type(r) for r in results] == [SendResult] * 3
    assert "already handed to sedex" in results[0].detail  # not written twice
    assert names(tmp_path / "outbox") == {f"{kind}_{ref}.xml" for ref in refs
                                          for kind in ("data", "envl")}
