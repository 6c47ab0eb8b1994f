"""Batches are bounded by bytes as well as by count, so that memory follows the budget,
not the size of what registries drop (a city's base deliveries)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from gateway.assembly import make_validator, schema_set
from gateway.batching import BatchQueue, Waiting, batch_bytes, cut
from gateway.config import load_settings, write_initial_config
from gateway.contracts import RawInput
from gateway.intake_pause import IntakePause
from gateway.pipeline import Pipeline
from gateway.plugins import get_plugin_manager
from gateway.processor import Processor, normalise_context, partner_targets
from gateway.stage_calls import Normalising
from gateway.store import SQLiteStore
from gateway.workers import WorkerPool
from tests.flow import states

ECH0020 = Path(__file__).parent / "fixtures" / "ech0020"


def _inputs(sizes: Sequence[int]) -> list[tuple[int, RawInput]]:
    return [(n, RawInput("registry", f"m{n}.xml", b"x" * size)) for n, size in enumerate(sizes)]


def test_cut_stops_a_batch_at_the_count_or_the_bytes_and_keeps_the_order() -> None:
    items = _inputs([10, 10, 10, 25, 10, 3, 3, 3, 3])
    batches = list(cut(items, 3, 20))
    assert [[mid for mid, _raw in b] for b in batches] == [[0, 1], [2], [3], [4, 5, 6], [7, 8]]
    assert all(batch_bytes(b) <= 20 or len(b) == 1 for b in batches)
    assert list(cut([], 3, 20)) == []


async def test_the_queue_is_full_at_its_bytes_and_an_empty_queue_takes_any_batch() -> None:
    queue = BatchQueue(max_batches=10, max_bytes=100)
    await asyncio.wait_for(queue.put(_inputs([500])), 1)  # larger than the queue: taken alone
    assert queue.full()
    waiting = asyncio.create_task(queue.put(_inputs([10])))
    await asyncio.sleep(0.01)
    assert not waiting.done(), "a put into a queue full of bytes waits"
    assert batch_bytes(queue.get_nowait()) == 500
    await asyncio.wait_for(waiting, 1)
    assert not queue.full()
    queue.put_nowait(None)  # the stop marker has no bytes
    assert [batch_bytes(queue.get_nowait()), queue.get_nowait()] == [10, None]


async def test_waiting_batches_are_gathered_within_the_bounds_and_the_stop_comes_last() -> None:
    waiting = Waiting(count=3, max_bytes=25, queued_bytes=1 << 20)
    a, b, c, d = (_inputs([10])[0] for _ in range(4))
    for batch in ([a], [b], [c, d]):
        await waiting.put(batch)
    await waiting.put(None)
    assert await waiting.next() == [a, b], "[c, d] would take it to 40 bytes"
    assert waiting.next_nowait() == [c, d]
    assert waiting.next_nowait() is None, "the stop is next"
    assert waiting.next_nowait() is None, "and stays next"
    assert await asyncio.wait_for(waiting.next(), 1) is None


def _pipeline(folder: Path, store: SQLiteStore, batch_bytes: int, queued_bytes: int) -> Pipeline:
    """The pipeline of ``init``'s configuration, in this process, with the byte bounds given."""
    settings = load_settings(write_initial_config(folder))
    pm = get_plugin_manager()
    proc = Processor(pm, settings, normalise_context(settings),
                     make_validator(schema_set(settings)), partner_targets(settings))
    return Pipeline(store, pm, proc, lambda: None, pause=IntakePause(pm), pool=WorkerPool(0),
                    batch_size=500, batch_bytes=batch_bytes, queued_bytes=queued_bytes)


async def _run(pipeline: Pipeline, files: Sequence[tuple[str, bytes]], *,
               wait: bool) -> list[list[str]]:
    """Submit ``files`` one by one, then run the pipeline until all is processed; the
    file names of each batch it normalised, in order. All is submitted before the
    pipeline runs; without ``wait``, what does not fit into the queue waits in the store."""
    seen: list[list[str]] = []
    normalise = pipeline.stages.normalise

    async def recorded(batch: list[tuple[int, RawInput]], avoid: int | None = None) -> Normalising:
        seen.append([raw.ref for _mid, raw in batch])
        return await normalise(batch, avoid)

    pipeline.stages.normalise = recorded  # type: ignore[method-assign]
    for name, data in files:
        await pipeline.submit([RawInput("registry", name, data)], wait=wait)
    running = asyncio.create_task(pipeline.run())
    await asyncio.wait_for(pipeline.stop(), 60)
    await asyncio.wait_for(running, 60)
    return seen


def _corpus() -> list[tuple[str, bytes]]:
    """The base delivery, then events about its persons (each a few KB)."""
    names = ["baseDelivery.xml", "move.xml", "moveOut.xml", "marriage.xml", "death.xml",
             "changeName.xml", "divorce.xml"]
    return [(name, (ECH0020 / name).read_bytes()) for name in names]


async def test_batches_hold_at_most_the_batch_bytes_and_every_input_is_processed_once(
        tmp_path: Path) -> None:
    files = _corpus()
    sizes = {name: len(data) for name, data in files}
    budget = 2 * max(sizes[n] for n in sizes if n != "baseDelivery.xml")
    store = SQLiteStore(tmp_path / "gateway.db", group_commit_delay=0.001)
    store.start()
    pipeline = _pipeline(tmp_path, store, batch_bytes=budget, queued_bytes=1 << 20)
    try:
        batches = await _run(pipeline, files, wait=True)
    finally:
        pipeline.close()
        store.close()
    assert [name for batch in batches for name in batch] == [name for name, _ in files]
    assert all(sum(sizes[n] for n in batch) <= budget or len(batch) == 1 for batch in batches)
    assert batches[0] == ["baseDelivery.xml"], "larger than the budget: a batch of its own"
    assert len(batches) < len(files) - 1, "small inputs still share batches"
    assert states(tmp_path / "gateway.db", "SELECT ref, state FROM messages ORDER BY id") == [
        ("baseDelivery.xml", "not_relevant"), ("move.xml", "routed"), ("moveOut.xml", "routed"),
        ("marriage.xml", "routed"), ("death.xml", "routed"), ("changeName.xml", "routed"),
        ("divorce.xml", "routed")]


async def test_a_backlog_over_the_queued_bytes_waits_in_the_store_and_comes_in_budgeted_batches(
        tmp_path: Path) -> None:
    """Submits that do not wait (a push) while the queue is full of bytes are remembered
    by id and read back from the store in batches within the budget."""
    files = _corpus()
    budget = 2 * len(files[1][1])
    store = SQLiteStore(tmp_path / "gateway.db", group_commit_delay=0.001)
    store.start()
    pipeline = _pipeline(tmp_path, store, batch_bytes=budget, queued_bytes=1)
    try:
        batches = await _run(pipeline, files, wait=False)
    finally:
        pipeline.close()
        store.close()
    sizes = {name: len(data) for name, data in files}
    assert [name for batch in batches for name in batch] == [name for name, _ in files]
    assert batches[0] == ["baseDelivery.xml"], "queued: the queue was empty"
    assert all(sum(sizes[n] for n in batch) <= budget or len(batch) == 1 for batch in batches)
    assert len(batches) < len(files) - 1, "read back from the store in batches, not one by one"
    assert states(tmp_path / "gateway.db",
                  "SELECT count(*) FROM messages WHERE state = 'received'") == [(0,)]
