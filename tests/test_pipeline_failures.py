"""A failure in processing loses no input and stops nothing: recovery at start, the take-up of
a failed run, and the stop that a failed run had already taken."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.contracts import NormaliseContext, RawInput
from gateway.errors import StoreUnavailable
from gateway.pipeline import Pipeline
from gateway.plugin_types import PluginContext
from gateway.processor import Processor
from gateway.store import SQLiteStore
from gateway.testing import harness
from plugins.folder.source import FolderOptions, FolderSource
from plugins.mapping.normaliser import MAPPING_META, ROW_META
from tests.flow import states
from tests.stubs import StubReceiptSink
from tests.test_batch_bytes import _corpus, _pipeline
from tests.test_mapping import CSV_SAMPLE, MAPPINGS
from tests.test_sedex_transport import PAYLOAD, envelope_bytes, make_transport


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "gateway.db", group_commit_delay=0.001)
    s.start()
    yield s
    s.close()


def _fails_on(pipeline: Pipeline, ref: str) -> None:
    """Finishing the input ``ref`` raises, as a plugin's bug would (every time)."""
    finish = pipeline.processor.finish

    def finish_or_fail(mid: int, raw: RawInput, *args: Any) -> Any:
        if raw.ref == ref:
            raise RuntimeError("a bug in a rule")
        return finish(mid, raw, *args)

    pipeline.processor.finish = finish_or_fail  # type: ignore[method-assign]


def _fail_once(store: SQLiteStore, method: str, error: Exception) -> list[Exception]:
    """The store's ``method`` raises ``error`` at its next call, then works; the error, until
    it was raised."""
    works, failures = getattr(store, method), [error]

    async def fails_once(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await works(*args)

    setattr(store, method, fails_once)
    return failures


def _states(folder: Path) -> list[tuple[str, str, str | None]]:
    return states(folder / "gateway.db", "SELECT ref, state, reason FROM messages ORDER BY id")


async def test_recovery_quarantines_an_input_whose_processing_fails_and_starts(
        tmp_path: Path, store: SQLiteStore) -> None:
    """Inputs stored before a crash are processed at the next start; one that fails every
    time is quarantined with the error instead of keeping the daemon from starting."""
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1 << 20)
    try:
        await store.add_raw([RawInput("registry", name, data) for name, data in _corpus()[:4]])
        _fails_on(pipeline, "moveOut.xml")
        assert await asyncio.wait_for(pipeline.recover(), 60) == 4
    finally:
        pipeline.close()
    assert _states(tmp_path) == [
        ("baseDelivery.xml", "not_relevant", "baseDelivery seeds the person state and sends"
                                             " nothing"),
        ("move.xml", "routed", None),
        ("moveOut.xml", "quarantined", "processing failed: RuntimeError('a bug in a rule')"),
        ("marriage.xml", "routed", None)]


async def test_a_run_whose_last_commit_fails_after_the_stop_stops_once_it_took_up_its_batch(
        tmp_path: Path, store: SQLiteStore) -> None:
    """The stop was queued behind the last batch; that batch's commit fails. The run started
    again (by the daemon) takes the batch up, and then stops: it does not wait for ever."""
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1 << 20)
    _fail_once(store, "record_processing", RuntimeError("a bug in recording"))
    try:
        await pipeline.submit([RawInput("registry", name, data) for name, data in _corpus()[:3]])
        await pipeline.stop()
        with pytest.raises(RuntimeError, match="a bug in recording"):
            await asyncio.wait_for(pipeline.run(), 60)
        await asyncio.wait_for(pipeline.run(), 60)
    finally:
        pipeline.close()
    assert [(ref, state) for ref, state, _reason in _states(tmp_path)] == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed")]


async def test_a_row_of_an_export_whose_processing_fails_is_quarantined_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export's rows are processed after it splits; a row whose processing fails is
    quarantined with the error, and the rows after it go on (none waits for a restart)."""
    finish = Processor.finish

    def fails_on_row_3(self: Processor, mid: int, raw: RawInput, *args: Any) -> Any:
        if raw.meta.get(ROW_META) == "3":
            raise RuntimeError("a bug in a rule")
        return finish(self, mid, raw, *args)

    monkeypatch.setattr(Processor, "finish", fails_on_row_3)
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.csv"], "mapping": str(MAPPINGS / "nova.toml")}
    async with harness(tmp_path, source_options=options) as h:
        h.feed("einwohner.csv", CSV_SAMPLE.read_bytes())
        await h.wait_for(lambda: "received" not in {m.state for m in h.messages()}
                         and len(h.messages()) == 9)
        stored = [(m.state, m.reason) for m in h.messages()]
    assert stored.count(("quarantined", "processing failed: RuntimeError('a bug in a rule')")) == 1
    assert [state for state, _reason in stored].count("routed") == 6, stored


async def test_a_batch_that_fails_after_its_commit_is_not_processed_again(
        tmp_path: Path, store: SQLiteStore, hook_calls: list[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Recovery records a batch (three events and an export, which splits into its rows),
    then reading the export's rows fails (a store error, not a full disk). The batch's
    inputs have their outcomes, committed: none is decided or recorded again (before, each
    was, alone, and the store dropped each outcome with "recorded by another writer
    meanwhile", though there is no other writer). The rows wait, stored, and are processed."""
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1 << 20)
    failures = _fail_once(store, "parts_of", sqlite3.OperationalError("disk I/O error"))
    export = RawInput("registry", "einwohner.csv", CSV_SAMPLE.read_bytes(),
                      {MAPPING_META: str(MAPPINGS / "nova.toml")})
    try:
        await store.add_raw([*(RawInput("registry", name, data) for name, data in _corpus()[:3]),
                             export])
        hook_calls.clear()
        with caplog.at_level(logging.INFO):
            await asyncio.wait_for(pipeline.recover(), 60)
    finally:
        pipeline.close()
    assert not failures, "reading the rows failed once"
    assert not [r for r in caplog.records if "another writer" in r.getMessage()]
    stored = _states(tmp_path)
    assert [(ref, state) for ref, state, _reason in stored[:3]] == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed")]
    assert stored[3] == ("einwohner.csv", "split", "split into 8 parts (1 rejected)")
    rows = [state for _ref, state, _reason in stored[4:]]
    assert len(rows) == 8 and "received" not in rows
    # once each: the four inputs and the seven good rows (the rejected one is stored quarantined)
    assert hook_calls.count("gateway_normalise") == 4 + 7


async def test_the_backlog_read_back_after_a_failed_read_loses_nothing(
        tmp_path: Path, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pushes answered while the queue was full wait in the store, remembered by id; when
    reading them back fails (the store cannot for now), the read is tried again with the
    same ids, and every one of them is processed."""
    monkeypatch.setattr("gateway.admission.FEED_RETRY", 0.01)
    files = _corpus()
    pipeline = _pipeline(tmp_path, store, batch_bytes=2 * len(files[1][1]), queued_bytes=1)
    failures = _fail_once(store, "inputs", StoreUnavailable("disk full"))
    try:
        for name, data in files:
            await pipeline.submit([RawInput("registry", name, data)], wait=False)
        running = asyncio.create_task(pipeline.run())
        await asyncio.wait_for(pipeline.stop(), 60)
        await asyncio.wait_for(running, 60)
    finally:
        pipeline.close()
    assert not failures, "the read failed once"
    assert [ref for ref, _state, _reason in _states(tmp_path)] == [name for name, _ in files]
    assert {state for _ref, state, _reason in _states(tmp_path)} == {"routed", "not_relevant"}


async def test_a_submit_whose_caller_is_cancelled_still_queues_what_it_stored(
        tmp_path: Path, store: SQLiteStore) -> None:
    """A source stopped while its submit waits for room in the queue (the drain, or a task
    beside it failing): its inputs are stored, so they are queued all the same and processed,
    not left for the next start."""
    files = _corpus()
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1)
    try:
        await pipeline.submit([RawInput("registry", *files[0])])  # the queue is full now
        waiting = asyncio.create_task(pipeline.submit([RawInput("registry", name, data)
                                                       for name, data in files[1:4]]))
        await asyncio.sleep(0.1)
        assert not waiting.done(), "it waits for room in the queue"
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        running = asyncio.create_task(pipeline.run())
        await asyncio.wait_for(pipeline.stop(), 60)
        await asyncio.wait_for(running, 60)
    finally:
        pipeline.close()
    assert [(ref, state) for ref, state, _reason in _states(tmp_path)] == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed"),
        ("marriage.xml", "routed")]


async def test_a_stop_during_recovery_begins_no_further_batch(
        tmp_path: Path, store: SQLiteStore) -> None:
    """A TERM while a long backlog is recovered at start: no further batch is begun, and
    what is left waits, stored, for the next start."""
    pipeline = _pipeline(tmp_path, store, batch_bytes=1, queued_bytes=1 << 20)  # one per batch
    stop = asyncio.Event()
    process = pipeline.process

    async def stop_after_the_first(batch: Any, *args: Any) -> Any:
        stop.set()  # TERM came while the first batch was processed
        return await process(batch, *args)

    pipeline.process = stop_after_the_first  # type: ignore[method-assign]
    try:
        await store.add_raw([RawInput("registry", name, data) for name, data in _corpus()[:3]])
        assert await asyncio.wait_for(pipeline.recover(stop), 60) == 1
    finally:
        pipeline.close()
    assert [state for _ref, state, _reason in _states(tmp_path)] == [
        "not_relevant", "received", "received"]


async def test_a_run_cancelled_while_its_commit_waits_for_disk_space_ends_at_once(
        tmp_path: Path, store: SQLiteStore) -> None:
    """A drain cut short (a second TERM) while the disk is full: the run ends, its batch
    waits stored for the next start; it does not wait for the disk."""
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1 << 20)

    async def full(results: Any) -> Any:
        raise StoreUnavailable("database or disk is full")

    try:
        await pipeline.submit([RawInput("registry", name, data) for name, data in _corpus()[:2]])
        store.record_processing = full  # type: ignore[method-assign]
        running = asyncio.create_task(pipeline.run())
        for _ in range(500):
            if pipeline.pause.paused:
                break
            await asyncio.sleep(0.01)
        assert pipeline.pause.paused, "the commit waits for disk space"
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(running, 5)
    finally:
        pipeline.close()
    assert [state for _ref, state, _reason in _states(tmp_path)] == ["received", "received"]


async def test_a_folder_source_stopped_while_storing_moves_its_files_away(
        tmp_path: Path, store: SQLiteStore) -> None:
    """The drain stops the folder source while its files wait for room in the queue: they
    are stored all the same, so their files are moved to done_dir all the same, not left to
    be taken again at the next start as duplicates (a TERM during a burst made 500)."""
    files = _corpus()
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1)
    options = FolderOptions(path=tmp_path / "in", done_dir=tmp_path / "done", settle=0)
    folder = FolderSource(options, PluginContext("registry", tmp_path, NormaliseContext(
        max_bytes=1 << 20, max_zip_entries=10, max_zip_bytes=1 << 20, max_zip_ratio=10), None))
    try:
        await pipeline.submit([RawInput("registry", *files[0])])  # the queue is full now
        options.path.mkdir()
        for name, data in files[1:4]:
            (options.path / name).write_bytes(data)
        await _drained_while_storing(tmp_path, pipeline, asyncio.create_task(folder.run(pipeline)),
                                     4, "the three files are stored, and wait for room")
    finally:
        pipeline.close()
    assert list(options.path.iterdir()) == [], "nothing is left to be taken again"
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(
        name for name, _ in files[1:4])
    assert [state for _ref, state, _reason in _states(tmp_path)] == [
        "not_relevant", "routed", "routed", "routed"]


async def test_a_sedex_inbox_stopped_while_storing_moves_its_pairs_away(
        tmp_path: Path, store: SQLiteStore) -> None:
    """As for the folder source: a pair stored while the drain stops the sedex transport is
    moved out of the inbox all the same, not taken again at the next start."""
    files = _corpus()
    pipeline = _pipeline(tmp_path, store, batch_bytes=1 << 20, queued_bytes=1)
    transport = make_transport(tmp_path / "sedex")
    inbox = tmp_path / "sedex" / "inbox"
    try:
        await pipeline.submit([RawInput("registry", *files[0])])  # the queue is full now
        (inbox / "data_in-1.xml").write_bytes(PAYLOAD)
        (inbox / "envl_in-1.xml").write_bytes(envelope_bytes("in-1"))
        await _drained_while_storing(
            tmp_path, pipeline, asyncio.create_task(transport.run(StubReceiptSink(), pipeline)),
            2, "the pair is stored, and waits for room")
    finally:
        pipeline.close()
    assert list(inbox.iterdir()) == [], "nothing is left to be taken again"
    assert sorted(p.name for p in (tmp_path / "sedex" / "processed").iterdir()) == [
        "data_in-1.xml", "envl_in-1.xml"]


async def _drained_while_storing(tmp_path: Path, pipeline: Pipeline, source: asyncio.Task[None],
                                 stored: int, what: str) -> None:
    """Once ``stored`` inputs are stored (the source's last ones wait for room in the queue),
    stop ``source`` as the drain does, then let the pipeline empty its queue and stop."""
    for _ in range(500):
        if len(_states(tmp_path)) == stored:
            break
        await asyncio.sleep(0.01)
    assert len(_states(tmp_path)) == stored, what
    source.cancel()  # the drain
    running = asyncio.create_task(pipeline.run())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(source, 60)
    await asyncio.wait_for(pipeline.stop(), 60)
    await asyncio.wait_for(running, 60)
