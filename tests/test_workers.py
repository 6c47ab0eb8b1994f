"""Worker processes: normalising beside the event loop, and surviving a worker's death."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway import processor, worker_stages
from gateway.assembly import make_validator, schema_set
from gateway.config import load_settings, write_initial_config
from gateway.contracts import Decision, Normalised, RawInput
from gateway.daemon import build_pipeline, worker_pool
from gateway.errors import WorkerLost, WorkerStartFailed
from gateway.person_state import PersonChange, StoredPerson
from gateway.pipeline import Pipeline
from gateway.plugins import LOAD_ENV, get_plugin_manager
from gateway.store import MessageState, Processed, SQLiteStore
from gateway.workers import WorkerPool
from tests.flow import FIXTURES, drop, message, running, seeded_states, states, until
from tests.test_plugin_loading import BUILT_IN, install

ECH0020 = Path(__file__).parent / "fixtures" / "ech0020"


def sent(db: Path) -> int:
    return states(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")[0][0]


async def test_a_killed_worker_loses_no_message(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text(
        '[gateway]\nworkers = 1\n[sources.registry]\npoll_interval = "50ms"\nsettle = "50ms"\n'
        '[dispatcher]\nidle_poll = "50ms"\n')
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()) as gateway:
        assert gateway.pool.pids, "entry-point plugins only: processing runs in a worker"
        for pid in gateway.pool.pids:  # the worker dies, as after a crash in lxml
            os.kill(pid, signal.SIGKILL)
        for n in range(20):
            drop(tmp_path / "registry" / "outbox", f"m{n}.xml", message(f"after-kill-{n}"))
        await until(lambda: sent(db) == 20, timeout=30)
    assert "a worker process died" in caplog.text
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'routed'") == [(20,)]


async def _pipeline_run(folder: Path, store: SQLiteStore, inputs: Sequence[tuple[str, bytes]],
                        *, workers: int = 2, batch: int = 1, queued_first: bool = True) -> None:
    """Run ``inputs`` (file name, bytes), submitted one by one, through the pipeline of
    ``init``'s configuration in ``folder`` on ``store``, with ``workers`` and batches of up
    to ``batch``, until all are recorded.

    :param queued_first: submit everything before the pipeline runs (at most 64: the
        queue's size), so that the batches are as ``batch`` makes them; else while it runs.
    """
    config = write_initial_config(folder)
    (folder / "conf.d" / "10-test.toml").write_text(
        f"[gateway]\nworkers = {workers}\n[dispatcher]\nbatch_size = {batch}\n")
    settings = load_settings(config)
    pm = get_plugin_manager()
    store.start()
    pipeline = build_pipeline(settings, pm, store, make_validator(schema_set(settings)),
                              lambda: None, worker_pool(settings, pm))
    try:
        running = None if queued_first else asyncio.create_task(pipeline.run())
        for name, data in inputs:
            await pipeline.submit([RawInput("registry", name, data)])
        await pipeline.stop()
        await (running if running is not None else pipeline.run())
        assert pipeline.pool.size == workers and len(pipeline.pool.pids) == workers
    finally:
        pipeline.close()
        store.close()


def _files(*names: str) -> list[tuple[str, bytes]]:
    """The corpus files ``names``, as inputs."""
    return [(name, (ECH0020 / name).read_bytes()) for name in names]


async def test_a_batch_normalised_ahead_still_sees_the_state_the_batch_before_left(
        tmp_path: Path) -> None:
    """Queued batches are normalised ahead, in the other worker; person state is read after.

    ``move.xml`` and ``moveOut.xml`` carry an identification only: they become
    messages only with the state ``baseDelivery.xml`` (the batch before) records.
    """
    store = SQLiteStore(tmp_path / "gateway.db", group_commit_delay=0.001)
    await _pipeline_run(tmp_path, store, _files("baseDelivery.xml", "move.xml", "moveOut.xml"))
    assert states(tmp_path / "gateway.db", "SELECT ref, state FROM messages ORDER BY id") == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed")]


#: More keys than one event's person has: the persons a base delivery states.
_MANY_KEYS = 10


class _SlowRecords(SQLiteStore):
    """The real store, whose first recording commits only after an event's person was read
    twice (a base delivery's persons are read once, as ``read base``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, group_commit_delay=0.001)
        self.calls: list[str] = []
        self._read = asyncio.Event()

    async def stored_persons(self, keys: Sequence[str]) -> dict[str, StoredPerson]:
        self.calls.append("read base" if len(keys) > _MANY_KEYS else "read")
        if self.calls.count("read") == 2:
            self._read.set()
        return await super().stored_persons(keys)

    async def record_processing(self, results: Sequence[Processed]) -> list[int]:
        if "commit" not in self.calls:
            await asyncio.wait_for(self._read.wait(), timeout=10)
        created = await super().record_processing(results)
        self.calls.append("commit")
        return created


async def test_a_batch_is_finished_with_the_states_the_batch_before_is_still_recording(
        tmp_path: Path) -> None:
    """Batch *k+1* is decided while batch *k* is decided and recorded: it must see the
    persons *k* leaves.

    ``move.xml`` carries an identification only, so it becomes a message only with
    the state the first batch (``baseDelivery.xml``) works out.
    It is decided first while ``baseDelivery.xml`` is (the person unknown), then again
    once that batch's states are known, while they are still being recorded: the first
    batch commits only after that second read.
    """
    store = _SlowRecords(tmp_path / "gateway.db")
    await _pipeline_run(tmp_path, store, _files("baseDelivery.xml", "move.xml"))
    assert "read base" in store.calls  # (the persons it states, to merge them into)
    # move.xml read twice, before the first commit
    assert [c for c in store.calls if c != "read base"] == ["read", "read", "commit", "commit"]
    assert states(tmp_path / "gateway.db", "SELECT ref, state FROM messages ORDER BY id") == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed")]


class _CountedReads(SQLiteStore):
    """The real store, counting the person reads of each batch's subjects."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, group_commit_delay=0.001)
        self.reads: list[tuple[str, ...]] = []

    async def stored_persons(self, keys: Sequence[str]) -> dict[str, StoredPerson]:
        self.reads.append(tuple(keys))
        return await super().stored_persons(keys)


async def test_a_batch_decided_ahead_stands_unless_the_batch_before_changed_its_person(
        tmp_path: Path) -> None:
    """``move.xml`` is decided while ``baseDelivery.xml`` (its person's state) is: decided
    again. ``moveOut.xml``, about another person, is decided while ``move.xml`` is: its
    decision stands, read once. All three come out as they would one at a time."""
    store = _CountedReads(tmp_path / "gateway.db")
    await _pipeline_run(tmp_path, store, _files("baseDelivery.xml", "move.xml", "moveOut.xml"))
    move, move_out = "vn:7568982977671", "vn:7565108772783"
    events = [keys for keys in store.reads if len(keys) <= _MANY_KEYS]  # not the base's
    assert sum(move in keys for keys in events) == 2
    assert sum(move_out in keys for keys in events) == 1
    assert states(tmp_path / "gateway.db", "SELECT ref, state FROM messages ORDER BY id") == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed")]


class _LateCommits(SQLiteStore):
    """The real store, whose recordings commit a while after they are asked for."""

    async def record_processing(self, results: Sequence[Processed]) -> list[int]:
        await asyncio.sleep(0.2)
        return await super().record_processing(results)


def _base_of_one(vn: str, permit: str) -> bytes:
    """``baseDelivery.xml`` with only the person of ``vn``, whose permit is now ``permit``,
    valid from 1 December (after the corpus's events: an older one would not undo them)."""
    text = (ECH0020 / "baseDelivery.xml").read_text()
    head, _, rest = text.partition("<eCH-0020:messages>")
    blocks = ["<eCH-0020:messages>" + b for b in rest.split("<eCH-0020:messages>")]
    tail = blocks[-1][blocks[-1].index("</eCH-0020:messages>") + len("</eCH-0020:messages>"):]
    mine = next(b for b in blocks if vn in b)
    mine = mine[:mine.index("</eCH-0020:messages>") + len("</eCH-0020:messages>")]
    mine = mine.replace("<eCH-0011:residencePermit>0202<", f"<eCH-0011:residencePermit>{permit}<")
    mine = mine.replace("ValidFrom>2026-10-01<", "ValidFrom>2026-12-01<")
    return (head.replace("<eCH-0058:messageId>", "<eCH-0058:messageId>again-", 1)
            + mine + tail).encode()


async def test_a_base_delivery_leaves_the_states_the_batch_before_made(
        tmp_path: Path) -> None:
    """A ``baseDelivery`` has no subject, but states persons: their states before it are
    read as a subject's are, so that what it leaves is merged into what the batch before
    made, and the batch after it, decided while it is still being recorded, sees that.
    Decided while the batch before it is (two workers finish at once), it is decided
    again, since that batch changed a person it states.

    Q's permit B is prolonged (batch 2); a base delivery then states permit C for Q
    (batch 3); the same prolongation to B, sent again dated after it (batch 4), is a change
    from C to B: ``othercaseOfMigration``. Seeing batch 2's state instead, it would be the
    same permit again: ``duplicateOfPermit``.
    """
    vn = "7562328558609"
    event = (ECH0020 / "changeResidencePermit-prolongationB.xml").read_bytes()
    inputs = [("base.xml", (ECH0020 / "baseDelivery.xml").read_bytes()),
              ("prolonged.xml", event), ("base-c.xml", _base_of_one(vn, "0301")),
              ("again.xml", event.replace(b"<eCH-0058:messageId>", b"<eCH-0058:messageId>2", 1)
               .replace(b"eventDate>2026-11-09<", b"eventDate>2026-12-05<"))]
    await _pipeline_run(tmp_path, _LateCommits(tmp_path / "gateway.db", group_commit_delay=0.001),
                        inputs)
    events = states(tmp_path / "gateway.db",
                    "SELECT m.ref, json_extract(j.detail, '$.event') FROM journal j"
                    " JOIN messages m ON m.id = j.message"
                    " WHERE j.event = 'message.normalised' ORDER BY m.id")
    assert events == [("base.xml", None), ("prolonged.xml", "prolongationB"),
                      ("base-c.xml", None), ("again.xml", "othercaseOfMigration")]


def _each_event_twice() -> list[tuple[str, bytes]]:
    """The corpus in manifest order, each event twice in a row (sent again under another
    messageId, so not a duplicate), and the base delivery again halfway: most batches are
    about a person the batch before changed."""
    files = [f["file"] for f in tomllib.loads((ECH0020 / "MANIFEST.toml").read_text())["file"]]
    inputs: list[tuple[str, bytes]] = []
    for i, name in enumerate(files):
        data = (ECH0020 / name).read_bytes()
        again = data.replace(b"<eCH-0058:messageId>", b"<eCH-0058:messageId>x", 1)
        inputs += [(name, data)] if name == "baseDelivery.xml" else [(name, data), (f"again-{name}", again)]
        if i == len(files) // 2:
            inputs.append(("base-again.xml", (ECH0020 / "baseDelivery.xml").read_bytes().replace(
                b"<eCH-0058:messageId>", b"<eCH-0058:messageId>y", 1)))
    return inputs


async def _what_becomes(folder: Path, workers: int, batch: int
                        ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What becomes of :func:`_each_event_twice` with ``workers`` and batches of ``batch``:
    each message's state, reason, personEvent and eCH-0223 text, and the persons' states."""
    await _pipeline_run(folder, SQLiteStore(folder / "gateway.db", group_commit_delay=0.001),
                        _each_event_twice(), workers=workers, batch=batch, queued_first=False)
    db = folder / "gateway.db"
    return (states(db, "SELECT m.ref, m.state, m.reason, p.canonical,"
                       " (SELECT json_extract(j.detail, '$.event') FROM journal j"
                       "  WHERE j.message = m.id AND j.event = 'message.normalised')"
                       " FROM messages m JOIN payloads p ON p.message = m.id ORDER BY m.id"),
            states(db, "SELECT id, state FROM persons ORDER BY id"))


async def test_batches_decided_ahead_come_out_as_one_at_a_time(tmp_path: Path) -> None:
    """Whatever the batches and however many are decided at once, every message and every
    person's state is what processing the inputs one at a time in one process makes."""
    alone = await _what_becomes(tmp_path / "alone", workers=0, batch=1)
    routed = [m for m in alone[0] if m[1] == "routed"]
    # the comparison has content: messages with their eCH-0223 text, most with a personEvent
    assert all(m[3] for m in routed) and sum(bool(m[4]) for m in routed) > 40
    for workers, batch in ((2, 1), (2, 3)):
        assert await _what_becomes(tmp_path / f"w{workers}-b{batch}", workers, batch) == alone


def _pid() -> int:
    return os.getpid()


def _die() -> None:
    os._exit(3)  # as a crash in a C library would


async def test_offload_runs_in_a_worker_process_and_survives_its_death() -> None:
    pool = WorkerPool(1)
    try:
        assert await pool.offload(_pid) != os.getpid()
        with pytest.raises(WorkerLost, match="died while running _die"):
            await pool.offload(_die)
        assert await pool.offload(_pid) != os.getpid()  # new workers for the next call
    finally:
        pool.close()


async def test_a_worker_stuck_in_its_work_is_stopped_at_once_when_asked() -> None:
    """A drain cut short stops the workers at once: one stuck (a hung file system) does not
    hold up the daemon's stop."""
    pool = WorkerPool(1)
    assert await pool.offload(_pid) != os.getpid()  # started
    stuck = asyncio.create_task(pool.offload(time.sleep, 60))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    pool.close(at_once=True)
    assert time.monotonic() - started < 10
    with pytest.raises((WorkerLost, asyncio.CancelledError)):
        await asyncio.wait_for(stuck, 10)


def _open_to_write(path: str, opened: list[threading.Thread] | None = None) -> None:
    """Open ``path`` for writing (noting the thread in ``opened``): a FIFO without a reader
    holds ``open`` until one comes, as a file system that hangs does."""
    if opened is not None:
        opened.append(threading.current_thread())
    os.close(os.open(path, os.O_WRONLY))


async def test_work_that_runs_over_its_timeout_is_given_up_and_its_worker_replaced(
        tmp_path: Path) -> None:
    """A worker stuck in ``open`` of a FIFO nobody reads (a real wait in the kernel, as on a
    file system that hangs) is killed once its work runs over its timeout, and replaced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    pool = WorkerPool(1)
    try:
        stuck = await pool.offload(_pid)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.offload(_open_to_write, str(fifo), timeout=0.5)
        assert time.monotonic() - started < 5
        assert await pool.offload(_pid) not in (stuck, os.getpid())  # a new worker
        await until(lambda: not Path(f"/proc/{stuck}").exists())  # killed (and reaped)
        assert await pool.offload(_pid, timeout=30) == pool.pids[0]  # in time: kept
    finally:
        pool.close()


async def test_without_workers_offload_gives_up_on_a_thread_that_hangs_and_leaves_it(
        tmp_path: Path) -> None:
    """A thread stuck in ``open`` of a FIFO nobody reads is given up on and left behind: a
    daemon thread, which nothing waits for at exit."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    opened: list[threading.Thread] = []
    with pytest.raises(TimeoutError):
        await WorkerPool(0).offload(_open_to_write, str(fifo), opened, timeout=0.2)
    [thread] = opened
    assert thread.is_alive() and thread.daemon
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # the reader its open waits for
    thread.join(5)
    assert not thread.is_alive()


async def test_workers_run_at_the_lower_priority_asked_for() -> None:
    pool = WorkerPool(1, nice=5)
    try:
        assert await pool.offload(os.nice, 0) == min(os.nice(0) + 5, 19)
    finally:
        pool.close()


async def test_without_workers_offload_runs_in_a_thread() -> None:
    pool = WorkerPool(0)
    assert await pool.offload(_pid) == os.getpid()
    assert await pool.offload(threading.get_ident) != threading.get_ident()


def test_records_crossing_to_workers_pickle_whole() -> None:
    from datetime import UTC, datetime

    from gateway.contracts import Attachment, Normalised, RawInput, Route
    from gateway.outbound import OutboundItem, Receipt, ReceiptOutcome, SendResult
    from gateway.store import MessageState, Processed

    records = [
        RawInput("registry", "a.xml", b"<a/>", {"content_type": "application/xml"}),
        OutboundItem(1, "canton", 2, "ref-1", "m-1", b"<a/>", (Attachment("f.pdf", b"%PDF"),),
                     datetime.now(UTC), resumed=True),
        Receipt("ref-1", ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC), b"<r/>"),
        SendResult(awaits_receipt=True, detail="in the outbox"),
        Processed(7, MessageState.ROUTED, None,
                  Normalised("personEventMessage", "m-1", b"<a/>", None, reference_message_id="m-0"),
                  False, [Route("canton", "rule")], {"ignored_routes": []}),
    ]
    for record in records:
        assert pickle.loads(pickle.dumps(record)) == record


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


async def test_work_goes_to_the_worker_asked_for_and_new_work_to_the_least_busy() -> None:
    pool = WorkerPool(2)
    try:
        first = [await pool.run(_pid, worker=w) for w in (0, 1)]
        assert len(set(first)) == 2 and os.getpid() not in first
        assert [await pool.run(_pid, worker=w) for w in (0, 1)] == first  # the same process each
        busy = asyncio.create_task(pool.run(_sleep, 0.5, worker=0))
        await asyncio.sleep(0.1)
        assert pool.pick() == 1
        assert await pool.run_where(_pid, worker=0) == (1, first[1])  # not behind the busy one
        assert await busy == first[0]
        assert pool.pick(avoid=0) == 1 and pool.pick(avoid=1) == 0
    finally:
        pool.close()


async def test_work_that_insists_on_its_worker_waits_for_it_and_lets_other_work_pass() -> None:
    pool = WorkerPool(2)
    try:
        first = [await pool.run(_pid, worker=w) for w in (0, 1)]
        busy = asyncio.create_task(pool.run(_sleep, 0.4, worker=0))
        await asyncio.sleep(0.1)
        insisting = asyncio.create_task(pool.run_where(_pid, worker=0, insist=True))
        await asyncio.sleep(0.05)
        assert not insisting.done()  # worker 1 is free, but it waits for worker 0
        assert await pool.run_where(_pid) == (1, first[1])  # later work passes it
        assert await insisting == (0, first[0])
        assert await busy == first[0]
    finally:
        pool.close()


async def test_work_whose_caller_gave_up_waiting_is_not_run() -> None:
    pool = WorkerPool(1)
    try:
        busy = asyncio.create_task(pool.run(_sleep, 0.3))
        await asyncio.sleep(0.05)
        gave_up = asyncio.create_task(pool.offload(_die))  # would kill the worker if it ran
        await asyncio.sleep(0.05)
        gave_up.cancel()
        pid = await busy
        assert await pool.offload(_pid) == pid  # the same worker: nothing killed it
    finally:
        pool.close()


@pytest.fixture
def in_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a fresh worker process (nothing kept yet)."""
    monkeypatch.setattr("gateway.workers.settle_gc", lambda: None)  # not in the test process
    monkeypatch.setattr(worker_stages, "_worker", None)
    monkeypatch.setattr(worker_stages, "_inputs", {})
    monkeypatch.setattr(worker_stages, "_kept", deque())
    worker_stages.init_worker(load_settings(write_initial_config(tmp_path)))


def _ech0020_batch() -> list[tuple[int, RawInput]]:
    """A move (completed from the base delivery's state), a change of permit (needs no
    state) and an eCH-0223 message (no draft)."""
    return [(1, RawInput("registry", "move.xml", (ECH0020 / "move.xml").read_bytes())),
            (2, RawInput("registry", "permit.xml",
                         (ECH0020 / "changeResidencePermit-prolongationB.xml").read_bytes())),
            (3, RawInput("registry", "m.xml", message("kept-1")))]


def _base_states() -> dict[str, StoredPerson]:
    """The persons of ``baseDelivery.xml`` as enrichment finds them once it is recorded, by key."""
    return seeded_states(RawInput("registry", "base.xml",
                                  (ECH0020 / "baseDelivery.xml").read_bytes()))


@pytest.mark.parametrize("lost", [False, True])
def test_a_base_delivery_crosses_to_the_core_as_its_keys_and_is_finished_alike(
        in_worker: None, lost: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The states a base delivery makes stay in the worker: the core gets their keys,
    all enrichment reads. A worker that no longer holds them normalises it again."""
    raw = RawInput("registry", "base.xml", (ECH0020 / "baseDelivery.xml").read_bytes())
    [step] = pickle.loads(pickle.dumps(worker_stages.normalise_work([(7, raw)])))
    assert isinstance(step, Normalised) and worker_stages.held(step)
    assert len(pickle.dumps(step)) < len(raw.data) // 10
    if lost:
        monkeypatch.setattr(worker_stages, "_inputs", {})
        assert worker_stages.finish_kept([7], {}) is None
        [seeded] = worker_stages.finish_work([(7, raw, step)], {})
    else:
        [seeded] = worker_stages.finish_kept([7], {}) or []
    changes = [c for c in seeded.persons if isinstance(c, PersonChange)]
    assert len(changes) == len(seeded.persons) == 46
    assert sorted(step.persons[0].keys()) == sorted(k for c in changes for k in c.keys)
    assert all('"official_name"' in c.merged for c in changes)  # whole states, not keys


def _outcomes(results: Sequence[Processed]) -> list[tuple[object, ...]]:
    return [(p.state, p.reason, p.normalised.xml if p.normalised else None, p.routes,
             p.decision, [c.merged if isinstance(c, PersonChange) else c for c in p.persons])
            for p in results]


@pytest.mark.parametrize("lost", ["finished elsewhere", "forgotten", "restarted"])
def test_a_batch_its_worker_no_longer_holds_is_finished_with_its_inputs_alike(
        in_worker: None, lost: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps cross without their drafts; the worker that normalised the batch finishes
    it by id. A worker that does not hold it (another one, or this one after
    ``KEPT_BATCHES`` other batches, or restarted) says so, and finishes it from the inputs,
    normalising the drafts again: the outcome is the same."""
    known, batch = _base_states(), _ech0020_batch()
    mids = [mid for mid, _raw in batch]
    steps = pickle.loads(pickle.dumps(worker_stages.normalise_work(batch)))
    assert [s.draft is worker_stages.KEPT for s in steps] == [True, True, False]
    # an eCH-0223 message's one state crosses whole: any worker can finish it
    assert [worker_stages.held(s) for s in steps] == [True, True, False]
    assert [type(p).__name__ for p in steps[2].persons] == ["PersonState"]
    for (_mid, raw), step in zip(batch, steps, strict=True):
        assert raw.data not in pickle.dumps(step)  # neither the draft nor the XML travel
    if lost == "finished elsewhere":
        assert worker_stages.finish_kept([9], known) is None  # (a batch it never normalised)
        monkeypatch.setattr(worker_stages, "_inputs", {})
    elif lost == "forgotten":
        for other in range(worker_stages.KEPT_BATCHES):
            worker_stages.normalise_work([(100 + other, batch[0][1])])
    else:
        monkeypatch.setattr(worker_stages, "_inputs", {})
        monkeypatch.setattr(worker_stages, "_kept", deque())
    assert worker_stages.finish_kept(mids, known) is None
    elsewhere = worker_stages.finish_work(
        [(mid, raw, step) for (mid, raw), step in zip(batch, steps, strict=True)], known)
    worker_stages.normalise_work(batch)
    kept = worker_stages.finish_kept(mids, known)
    assert kept is not None
    assert _outcomes(elsewhere) == _outcomes(kept)
    assert [p.state for p in kept] == [MessageState.ROUTED] * 3
    assert all(p.normalised and b"personEventMessage" in p.normalised.xml for p in kept[:2])
    again = worker_stages.finish_kept(mids, known)  # still held: a batch may be decided again
    assert again is not None and _outcomes(again) == _outcomes(kept)


def test_a_batch_s_equal_decisions_cross_as_one(in_worker: None) -> None:
    """Inputs the same rule decides the same way come back with one decision and one route
    between them (pickled once); a plugin's decision that cannot be hashed stays as it is."""
    known, batch = _base_states(), _ech0020_batch()[:2]
    worker_stages.normalise_work(batch)
    results = pickle.loads(pickle.dumps(worker_stages.finish_kept([1, 2], known)))
    assert [p.state for p in results] == [MessageState.ROUTED] * 2
    first, second = results
    assert first.decision is not None and first.decision is second.decision
    assert first.routes == second.routes and first.routes[0] is second.routes[0]
    plugins = Decision("vendor", "why", ["canton"])  # type: ignore[arg-type]
    assert processor._shared({}, plugins) is plugins


async def test_a_worker_restarted_between_the_stages_finishes_the_batch_alike(
        tmp_path: Path) -> None:
    """The worker that normalised a batch dies before finishing it: a new one finishes
    it from the inputs, with the outcome the batch has where nothing died."""

    async def run(folder: Path, kill: bool) -> list[tuple[object, ...]]:
        settings = load_settings(write_initial_config(folder))
        store = SQLiteStore(folder / "gateway.db", group_commit_delay=0.001)
        store.start()
        pool = WorkerPool(1, worker_stages.init_worker, (settings,))
        pipeline = build_pipeline(settings, get_plugin_manager(), store,
                                  make_validator(schema_set(settings)), lambda: None, pool)
        try:
            base = RawInput("registry", "base.xml", (ECH0020 / "baseDelivery.xml").read_bytes())
            [mid] = await store.add_raw([base])
            await pipeline.process([(mid[0], base)])
            raws = [raw for _mid, raw in _ech0020_batch()]
            batch = [(mid, raw) for (mid, _new), raw in
                     zip(await store.add_raw(raws), raws, strict=True)]
            normalised = await pool.run_where(worker_stages.normalise_work, batch)
            if kill:
                [pid] = pool.pids
                os.kill(pid, signal.SIGKILL)
                await until(lambda: not _alive(pid), timeout=10)
            return _outcomes(await pipeline.process(batch, normalised))
        finally:
            pipeline.close()
            store.close()

    alike = await run(tmp_path / "alive", kill=False)
    assert [state for state, *_rest in alike] == [MessageState.ROUTED] * 3
    assert await run(tmp_path / "killed", kill=True) == alike


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _init_with_a_poison(settings: object) -> None:
    """The real worker, whose normalising dies (as in a C library) on an input saying POISON."""
    worker_stages.init_worker(settings)
    worker = worker_stages._worker
    assert worker is not None
    normalise = worker.normalise_batch

    def dies_on_poison(batch: Sequence[tuple[int, RawInput]]) -> list[processor.Step]:
        if any(b"POISON" in raw.data for _mid, raw in batch):
            os._exit(3)
        return normalise(batch)

    worker.normalise_batch = dies_on_poison  # type: ignore[method-assign]


async def test_an_input_that_kills_its_worker_is_quarantined_and_the_others_flow(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_initial_config(tmp_path)
    settings = load_settings(config)
    store = SQLiteStore(tmp_path / "gateway.db", group_commit_delay=0.001)
    store.start()
    pool = WorkerPool(1, _init_with_a_poison, (settings,))
    pipeline = build_pipeline(settings, get_plugin_manager(), store,
                              make_validator(schema_set(settings)), lambda: None, pool)
    poison = message("poison-1").replace(b"<eCH-0044:officialName>",
                                         b"<!-- POISON --><eCH-0044:officialName>", 1)
    inputs = [RawInput("registry", f"m{n}.xml", message(f"fine-{n}")) for n in range(4)]
    try:
        await pipeline.submit([*inputs[:2], RawInput("registry", "poison.xml", poison),
                               *inputs[2:]])
        await pipeline.stop()
        await pipeline.run()
        # the next batch finds a new worker
        await pipeline.submit([RawInput("registry", "later.xml", message("fine-later"))])
        await pipeline.stop()
        await pipeline.run()
    finally:
        pipeline.close()
        store.close()
    rows = dict(states(tmp_path / "gateway.db", "SELECT ref, state FROM messages"))
    assert rows == {"m0.xml": "routed", "m1.xml": "routed", "poison.xml": "quarantined",
                    "m2.xml": "routed", "m3.xml": "routed", "later.xml": "routed"}
    [(reason,)] = states(tmp_path / "gateway.db",
                         "SELECT reason FROM messages WHERE ref = 'poison.xml'")
    assert reason == "processing this input crashed the worker process"
    assert "processing this batch again one input at a time" in caplog.text


def _init_unless_broken(settings: object, broken: str) -> None:
    """The real worker's initializer, which fails while the file ``broken`` exists, as a
    vendor's plugin that imports in the daemon but not in a spawned process; each attempt
    adds a byte to the file."""
    if os.path.exists(broken):
        with open(broken, "a") as attempts:
            attempts.write("x")
        raise ImportError("No module named 'vendorx'")
    worker_stages.init_worker(settings)


async def test_workers_that_cannot_start_stop_the_start_naming_the_cause(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    settings = load_settings(write_initial_config(tmp_path))
    pool = WorkerPool(2, _init_unless_broken, (settings, str(broken)))
    try:
        with pytest.raises(WorkerStartFailed) as caught:
            await pool.start()
        assert str(caught.value) == ("worker processes cannot start:"
                                     " ImportError: No module named 'vendorx'")
        assert pool.pids == []
        # what plugins offload meanwhile runs here, without a process spawned for it
        assert await pool.offload(_pid) == os.getpid()
        assert broken.read_text() == "x"
    finally:
        pool.close()


def test_run_exits_2_naming_why_its_worker_processes_cannot_start(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "acme-vendorx", "acme", "acme_vendorx_mod", """
        import multiprocessing

        if multiprocessing.parent_process() is not None:  # a spawned worker process
            import vendorx
        """)
    config = write_initial_config(tmp_path / "gw")
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, LOAD_ENV: f"{BUILT_IN},acme", "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "ech-gateway: worker processes cannot start: PluginError: plugin 'acme' (acme_vendorx_mod"
        " from acme-vendorx 0.1) fails to load: ModuleNotFoundError: No module named 'vendorx'")


@pytest.mark.parametrize("mended", ["while waiting", "by the next start"])
async def test_inputs_wait_while_a_new_worker_cannot_start_and_none_is_quarantined(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        mended: str) -> None:
    """The worker dies and its replacement cannot start: the inputs are no more to blame
    than the batches are; they are processed once a worker starts, or at the next start."""
    monkeypatch.setattr("gateway.workers.START_RETRY_FIRST", 0.2)
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text("[dispatcher]\nbatch_size = 2\n")
    settings = load_settings(config)
    db, broken = tmp_path / "gateway.db", tmp_path / "broken"

    def started() -> tuple[SQLiteStore, Pipeline]:
        store = SQLiteStore(db, group_commit_delay=0.001)
        store.start()
        pool = WorkerPool(1, _init_unless_broken, (settings, str(broken)))
        return store, build_pipeline(settings, get_plugin_manager(), store,
                                     make_validator(schema_set(settings)), lambda: None, pool)

    store, pipeline = started()
    try:
        await pipeline.start()
        run = asyncio.create_task(pipeline.run())
        broken.touch()  # (a vendor's package updated under the running daemon, say)
        [pid] = pipeline.pool.pids
        os.kill(pid, signal.SIGKILL)
        await until(lambda: not _alive(pid), timeout=10)
        await pipeline.submit([RawInput("registry", f"m{n}.xml", message(f"waits-{n}"))
                               for n in range(6)])
        await until(lambda: len(broken.read_text()) >= 2, timeout=30)  # tried again
        assert states(db, "SELECT DISTINCT state FROM messages") == [("received",)]
        if mended == "while waiting":
            broken.unlink()
            await until(lambda: states(db, "SELECT DISTINCT state FROM messages") == [("routed",)],
                        timeout=30)
            await pipeline.stop()
            await run
        else:
            run.cancel()  # a stop whose drain was cut short
            with pytest.raises(asyncio.CancelledError):
                await run
    finally:
        pipeline.close(at_once=True)
        store.close()
    if mended == "by the next start":
        broken.unlink()
        store, pipeline = started()
        try:
            await pipeline.start()
            assert await pipeline.recover() == 6
        finally:
            pipeline.close()
            store.close()
    assert states(db, "SELECT ref, state FROM messages ORDER BY id") == [
        (f"m{n}.xml", "routed") for n in range(6)]
    assert caplog.text.count("starting a worker process failed:"
                             " ImportError: No module named 'vendorx'") == 1
    assert caplog.text.count("a worker process died") == 1  # the kill, not once per batch
    assert ("starting a worker process works again" in caplog.text) == (mended == "while waiting")


def test_what_a_worker_process_logs_is_written_as_the_daemons_lines_are(tmp_path: Path) -> None:
    """A plugin's warning in a worker process (upgrading a versionless eCH-0223 1.4 file
    named by its person's VN) reaches the daemon's log in the configured format, JSON,
    and without the VN: not as Python's bare fallback line."""
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "10-json.toml").write_text(
        '[gateway]\nlog_format = "json"\nworkers = 1\n'
        '[sources.registry]\nsettle = "50ms"\npoll_interval = "50ms"\n'
        '[partners.registry]\nech0223_version = "1.4"\n')  # the registry writes 1.4
    db = tmp_path / "gw" / "gateway.db"
    with subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                          stderr=subprocess.PIPE, text=True) as daemon:
        try:
            drop(tmp_path / "gw" / "registry" / "outbox", "7561234567897.xml",
                 (FIXTURES / "valid-pem14-changeoccupation.xml").read_bytes())
            deadline = time.monotonic() + 60
            while not _processed(db):
                assert time.monotonic() < deadline, "the file was not processed"
                time.sleep(0.1)
        finally:
            daemon.terminate()
            _out, err = daemon.communicate(timeout=60)
    lines = err.splitlines()
    assert lines and "7561234567897" not in err
    records = [json.loads(line) for line in lines]  # every line one JSON object
    [upgraded] = [r for r in records if "upgraded to 1.5" in r["msg"]]
    assert upgraded["level"] == "WARNING" and upgraded["logger"] == "plugins.ech0223"
    assert "756…" in upgraded["msg"]


def _processed(db: Path) -> bool:
    """Whether the daemon has processed an input (``False`` before its database is made)."""
    try:
        return bool(states(db, "SELECT state FROM messages WHERE state != 'received'"))
    except sqlite3.OperationalError:  # not there yet, or not migrated yet
        return False
