"""The dispatcher with a transport that sends a batch at once (``send_many``)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from lxml import etree

from gateway.contracts import Normalised, Route
from gateway.dispatcher import Dispatcher
from gateway.errors import GatewayError, PermanentError, TransientError
from gateway.outbound import OutboundItem, SendResult
from gateway.retry import RetryPolicy
from gateway.store import DeliveryState, MessageState, Processed, SQLiteStore, StoreReader
from tests.test_store import raw

NEVER_AGAIN = RetryPolicy(max_attempts=1, initial=0.0, maximum=0.0, jitter=0.0)


class BatchTransport:
    """Answers each batch from a script: by messageId, a result or an error."""

    def __init__(self, answer: object = None) -> None:
        self.answer = answer
        self.batches: list[list[str | None]] = []
        self.single_sends = 0

    async def send(self, item: OutboundItem) -> SendResult:
        self.single_sends += 1
        return SendResult(awaits_receipt=False)

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        self.batches.append([i.message_id for i in items])
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer == "short":
            return []
        out: list[SendResult | GatewayError] = []
        for item in items:
            if item.message_id == "refused":
                out.append(PermanentError("partner refuses it"))
            elif item.message_id == "busy":
                out.append(TransientError("partner busy"))
            else:
                out.append(SendResult(awaits_receipt=False, detail="in one batch"))
        return out

    async def run(self, *_args: object) -> None:
        await asyncio.Event().wait()


async def dispatch_once(store: SQLiteStore, transport: BatchTransport,
                        message_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Queue one message per messageId, run one dispatch round; (state, reason) per messageId."""
    rows = await store.add_raw([raw(i) for i in range(len(message_ids))])
    tree = etree.ElementTree(etree.Element("x"))
    await store.record_processing([
        Processed(mid, MessageState.ROUTED, normalised=Normalised("personEventMessage", m, b"<x/>", tree),
                  routes=[Route("canton", "test")])
        for (mid, _new), m in zip(rows, message_ids, strict=True)])
    dispatcher = Dispatcher(store, {"canton": transport},
                            {"canton": NEVER_AGAIN}, {}, node="t", lease=60, batch_size=100,
                            idle_poll=0.05)
    claims = await store.claim_due("t", 60, 100, ["canton"])
    await dispatcher._dispatch(claims)
    reader = StoreReader(store.path)
    try:
        return {m["message_id"]: (m["deliveries"][0]["state"], m["deliveries"][0]["reason"])
                for m in reader.list_messages()}
    finally:
        reader.close()


async def test_one_batch_call_with_a_result_per_item(store: SQLiteStore) -> None:
    transport = BatchTransport()
    states = await dispatch_once(store, transport, ["ok-1", "refused", "busy", "ok-2"])
    assert transport.batches == [["ok-1", "refused", "busy", "ok-2"]] and not transport.single_sends
    assert states["ok-1"] == (DeliveryState.DELIVERED, None)
    assert states["ok-2"] == (DeliveryState.DELIVERED, None)
    assert states["refused"] == (DeliveryState.DEAD, "permanent error: partner refuses it")
    assert states["busy"][0] == DeliveryState.DEAD  # one attempt allowed here
    assert "partner busy" in (states["busy"][1] or "")


async def test_a_failing_batch_fails_every_item_as_transient(store: SQLiteStore) -> None:
    states = await dispatch_once(store, BatchTransport(TransientError("outbox full")), ["a", "b"])
    assert all(s == DeliveryState.DEAD and "outbox full" in (r or "") for s, r in states.values())


@pytest.mark.parametrize(("answer", "said"), [(RuntimeError("boom"), "boom"),
                                             ("short", "wrong number of results")])
async def test_a_transport_bug_loses_nothing(store: SQLiteStore, answer: object, said: str) -> None:
    [(state, reason)] = (await dispatch_once(store, BatchTransport(answer), ["x"])).values()
    assert state == DeliveryState.DEAD  # one attempt allowed here; normally retried
    assert "unexpected transport error" in (reason or "") and said in (reason or "")


def delivery_counts(store: SQLiteStore) -> dict[str, int]:
    """The store's deliveries per state."""
    reader = StoreReader(store.path)
    try:
        return dict(reader.counts()["deliveries"])
    finally:
        reader.close()


class GatedTransport(BatchTransport):
    """Holds the first batch until released, to show what happens meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        first = not self.batches
        results = await super().send_many(items)
        if first:
            await self.gate.wait()
        return results


@pytest.mark.parametrize("rounds", [1, 2])
async def test_the_next_batch_goes_while_one_waits_for_its_transport(
        store: SQLiteStore, rounds: int) -> None:
    rows = await store.add_raw([raw(i) for i in range(4)])
    tree = etree.ElementTree(etree.Element("x"))
    await store.record_processing([
        Processed(mid, MessageState.ROUTED, routes=[Route("canton", "test")],
                  normalised=Normalised("personEventMessage", f"m-{mid}", b"<x/>", tree))
        for mid, _new in rows])
    transport = GatedTransport()
    dispatcher = Dispatcher(store, {"canton": transport}, {}, {},
                            node="t", lease=60, batch_size=2, idle_poll=0.01, rounds=rounds)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.3)
    assert len(transport.batches) == rounds  # with one round, the second batch waits
    transport.gate.set()
    for _ in range(100):
        if len(transport.batches) == 2:
            break
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await task
    assert delivery_counts(store) == {DeliveryState.DELIVERED: 4}


class HangingTransport(BatchTransport):
    """Takes every batch and answers none until released (a partner that does not answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        results = await super().send_many(items)
        await self.gate.wait()
        return results


async def test_a_partner_whose_rounds_all_hang_holds_up_no_other(store: SQLiteStore) -> None:
    """Both rounds in flight wait for a partner that does not answer: the other partner's
    deliveries, queued after them, are claimed and delivered meanwhile."""
    tree = etree.ElementTree(etree.Element("x"))

    async def queue(partner: str, first: int, n: int) -> None:
        rows = await store.add_raw([raw(i) for i in range(first, first + n)])
        await store.record_processing([
            Processed(mid, MessageState.ROUTED, routes=[Route(partner, "test")],
                      normalised=Normalised("personEventMessage", f"{partner}-{mid}", b"<x/>",
                                            tree))
            for mid, _new in rows])

    await queue("slow", 0, 2)
    await queue("fast", 10, 3)
    slow, fast = HangingTransport(), BatchTransport()
    dispatcher = Dispatcher(store, {"slow": slow, "fast": fast}, {}, {}, node="t", lease=60,
                            batch_size=1, idle_poll=0.01, rounds=2)
    task = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(300):
            if len(fast.batches) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(slow.batches) == 2  # two rounds, each waiting for the slow partner
        assert len(fast.batches) == 3  # before the fix: never, both rounds were taken
    finally:
        slow.gate.set()
        dispatcher.stop()
        await task
    assert delivery_counts(store) == {DeliveryState.DELIVERED: 5}


class UnflushableTransport(BatchTransport):
    """Takes every batch, but can never make it durable (a file system gone read-only)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1
        raise TransientError("cannot make the outbox durable: [Errno 30] read-only")


async def test_a_flush_that_keeps_failing_is_logged_once(
        store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> None:
    transport = UnflushableTransport()
    dispatcher = Dispatcher(store, {"canton": transport}, {"canton": NEVER_AGAIN}, {}, node="t",
                            lease=60, batch_size=100, idle_poll=0.05)
    tree = etree.ElementTree(etree.Element("x"))
    with caplog.at_level(logging.INFO, logger="gateway.dispatcher"):
        for n in range(5):
            [(mid, _new)] = await store.add_raw([raw(n)])
            await store.record_processing([Processed(
                mid, MessageState.ROUTED, routes=[Route("canton", "test")],
                normalised=Normalised("personEventMessage", f"round-{n}", b"<x/>", tree))])
            claims = await store.claim_due("t", 60, 100, ["canton"])
            await dispatcher._dispatch([c for c in claims if c.message == mid])
    assert transport.flushes == 5
    errors = [r.getMessage() for r in caplog.records
              if r.name == "gateway.dispatcher" and r.levelno >= logging.ERROR]
    assert errors == ["transport canton: making its batch durable failed:"
                      " cannot make the outbox durable: [Errno 30] read-only"]


class RefRecorder(BatchTransport):
    """Fails every attempt with a Retry-After; remembers each attempt's references."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | GatewayError]:
        self.refs += [(i.attempt_ref, i.delivery_ref) for i in items]
        return [TransientError("503 busy", retry_after=120.0) for _ in items]


async def test_retry_after_schedules_the_next_attempt_and_delivery_ref_stays(
        store: SQLiteStore) -> None:
    [(mid, _new)] = await store.add_raw([raw(0)])
    tree = etree.ElementTree(etree.Element("x"))
    await store.record_processing([Processed(
        mid, MessageState.ROUTED, routes=[Route("canton", "test")],
        normalised=Normalised("personEventMessage", "m-1", b"<x/>", tree))])
    transport = RefRecorder()
    dispatcher = Dispatcher(store, {"canton": transport},
                            {"canton": RetryPolicy(initial=0.01, jitter=0.0)}, {}, node="t",
                            lease=60, batch_size=10, idle_poll=0.05)
    for _ in range(2):
        [claim] = await store.claim_due("t", 60, 10, ["canton"])
        before = store.now()
        await dispatcher._dispatch([claim])
        [(due,)] = await store._writer.read(
            lambda c: c.execute("SELECT next_attempt_at FROM deliveries").fetchall())
        assert due >= before + 120.0  # the partner's wait, not the policy's 10 ms
        # due again at once, as if the two minutes had passed
        await store._writer.write(
            lambda c: (c.execute("UPDATE deliveries SET next_attempt_at = 0"), []))
    (ref1, key1), (ref2, key2) = transport.refs
    assert ref1 != ref2  # two attempts, one delivery
    assert key1 == key2 == f"{store.identity()}-{claim.delivery}"
    assert len(store.identity()) == 32


async def test_a_dispatcher_started_while_another_program_holds_the_lock_waits_for_it(
        tmp_path: Path) -> None:
    """Releasing its leases at the start waits for the store, as claiming does: the
    dispatcher does not fail (and restart) meanwhile, and takes up its deliveries after."""
    store = SQLiteStore(tmp_path / "g.db", group_commit_delay=0.001, busy_timeout=0.2)
    store.start()
    try:
        [(mid, _new)] = await store.add_raw([raw(0)])
        tree = etree.ElementTree(etree.Element("x"))
        await store.record_processing([Processed(
            mid, MessageState.ROUTED, normalised=Normalised("personEventMessage", "held", b"<x/>",
                                                            tree),
            routes=[Route("canton", "test")])])
        assert len(await store.claim_due("t", 600, 100, ["canton"])) == 1  # before a restart
        transport = BatchTransport()
        dispatcher = Dispatcher(store, {"canton": transport}, {"canton": NEVER_AGAIN}, {},
                                node="t", lease=600, batch_size=100, idle_poll=0.05)
        other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another program's write lock
        try:
            run = asyncio.create_task(dispatcher.run())
            await asyncio.wait([run], timeout=1.0)  # several times the busy timeout
            assert not run.done(), run.exception()
        finally:
            other.execute("ROLLBACK")
            other.close()
        for _ in range(200):  # its lease released, the delivery is claimed and sent at once
            if transport.batches:
                break
            await asyncio.sleep(0.01)
        assert transport.batches == [["held"]]
        dispatcher.stop()
        await run
    finally:
        store.close()
