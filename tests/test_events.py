"""Events are made from what was committed, one per journal entry of a documented kind.

Each test drives the real store with the real publisher attached, and reads
what a ``gateway_event`` listener was told: kinds, message and delivery ids,
details. The store's own rows are the reference the events must agree with.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import hookspecs
from gateway.contracts import RawInput
from gateway.errors import StoreError
from gateway.events import DIRECT, KINDS, Publisher
from gateway.hookspecs import hookimpl
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.plugin_types import GatewayEvent
from gateway.plugins import get_plugin_manager
from gateway.store import Outcome, SQLiteStore, StoreReader
from tests.test_store import FAST, answer, queued, raw, routed, sent


class Heard:
    """A ``gateway_event`` listener that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[GatewayEvent]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def store(tmp_path: Path, heard: Heard) -> Iterator[SQLiteStore]:
    """A started store whose commits are published to ``heard``."""
    pm = get_plugin_manager()
    pm.register(heard, name="heard")
    s = SQLiteStore(tmp_path / "g.db", group_commit_delay=0.001)
    s.on_commit(Publisher(pm))
    s.start()
    yield s
    s.close()


def test_every_kind_is_documented_in_one_place_and_named_by_the_hook() -> None:
    doc = hookspecs.gateway_event.__doc__ or ""
    named = set(re.findall(r"``((?:message|delivery|receipt|partner|intake|store)\.[a-z_]+)``",
                           doc))
    assert named == set(KINDS) | set(DIRECT), (
        "the hook doc names exactly the kinds gateway.events.KINDS and DIRECT list")
    contract = GatewayEvent.__doc__ or ""
    assert set(re.findall(r"``((?:message|delivery|receipt)\.[a-z_]+)``", contract)) <= set(KINDS)
    assert "delivery.retry_wait" not in KINDS and "delivery.retry" in KINDS


async def test_quarantine_and_duplicates_carry_their_message_ids(
        store: SQLiteStore, heard: Heard, caplog: pytest.LogCaptureFixture) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    bad = await store.quarantine_raw(raw(2), "bad sedex envelope: no senderId")
    with caplog.at_level(logging.INFO, logger="gateway.events"):
        [(copy, new)] = await store.add_raw([raw(1)])
    assert not new
    [q] = heard.of("message.quarantined")
    assert (q.message, q.delivery, q.detail["reason"]) == (bad, None,
                                                           "bad sedex envelope: no senderId")
    [d] = heard.of("message.duplicate")
    assert (d.message, d.delivery, d.detail["duplicate_of"]) == (copy, None, first)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "gateway.events"]
    assert said == [(logging.INFO, f"message {copy} is a duplicate of message {first}:"
                                   f" same input as message {first}")]


async def test_a_message_id_routed_before_is_a_duplicate_event(store: SQLiteStore,
                                                               heard: Heard) -> None:
    first = await queued(store, "twice")
    second = await queued(store, "twice-other-bytes")
    [(third, _)] = await store.add_raw([raw(77)])
    await store.record_processing([routed(third, "twice")])
    [d] = heard.of("message.duplicate")
    assert (d.message, d.detail["duplicate_of"]) == (third, first)
    assert second != first
    assert StoreReader(store.path).get_message(third)["duplicate_of"] == first


async def test_sent_then_delivered_by_receipt(store: SQLiteStore, heard: Heard) -> None:
    mid, did, ref = await sent(store)
    receipt = Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC))
    await store.record_receipts([receipt], lambda p: FAST)
    assert heard.kinds() == ["delivery.sent", "delivery.delivered"], \
        "steps every message takes (received, queued, sending) stay in the journal"
    for e in heard.events:
        assert (e.message, e.delivery, e.detail["partner"], e.detail["ref"]) == (
            mid, did, "canton", ref)


async def test_the_last_failed_attempt_is_announced_dead_not_retry(store: SQLiteStore,
                                                                   heard: Heard) -> None:
    mid = await queued(store)
    for _ in range(3):  # FAST allows three attempts
        [c] = await store.claim_due("n1", 60, 10, ["canton"])
        await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "down")],
                                    lambda p: FAST, {})
    assert heard.kinds() == ["delivery.retry", "delivery.retry", "delivery.dead"]
    assert [e.detail["attempt"] for e in heard.events] == [1, 2, 3]
    assert all((e.message, e.delivery) == (mid, c.delivery) for e in heard.events)
    dead = heard.events[-1]
    assert dead.detail["error"] == "down" and "retries exhausted" in dead.detail["why"]


async def test_unsure(store: SQLiteStore, heard: Heard) -> None:
    mid = await queued(store, "unsure")
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "unsure", "flush failed")],
                                lambda p: FAST, {})
    [u] = heard.of("delivery.unsure")
    assert (u.message, u.delivery, u.detail["ref"]) == (mid, c.delivery, c.attempt_ref)


async def test_needs_review_unmatched_and_overdue(store: SQLiteStore, heard: Heard) -> None:
    mid2, did2, ref2 = await sent(store, "review")
    stranger = Receipt("not-ours", ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC))
    review = Receipt(ref2, ReceiptOutcome.NEEDS_REVIEW, "999", "unknown code", datetime.now(UTC))
    assert await store.record_receipts([stranger, review], lambda p: FAST) == [False, True]
    [n] = heard.of("delivery.needs_review")
    assert (n.message, n.delivery, n.detail["code"]) == (mid2, did2, "999")
    [x] = heard.of("receipt.unmatched")
    assert (x.message, x.delivery, x.detail["ref"], x.detail["code"]) == (None, None,
                                                                          "not-ours", "100")

    mid3, did3, _ref3 = await sent(store, "late")
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("UPDATE deliveries SET receipt_due_at = ? WHERE id = ?",
                     (time.time() - 1, did3))
    conn.close()
    assert await store.flag_overdue() == [(mid3, did3)]
    [o] = heard.of("receipt.overdue")
    assert (o.message, o.delivery, o.detail["partner"]) == (mid3, did3, "canton")


async def test_answers_reject_or_acknowledge_the_sending_partners_delivery(
        store: SQLiteStore, heard: Heard) -> None:
    _mid, rejected, _ = await sent(store, "to-reject")
    mid_ok, acked, _ = await sent(store, "to-acknowledge")
    rows = await store.add_raw([RawInput("canton", "a1.xml", b"<no/>", {}),
                                RawInput("canton", "a2.xml", b"<yes/>", {})])
    (no, _), (yes, _) = rows
    await store.record_processing([answer(no, "to-reject", "8"), answer(yes, "to-acknowledge", "9")])
    [r] = heard.of("delivery.rejected")
    assert (r.delivery, r.detail["answer"], r.detail["partner"]) == (rejected, no, "canton")
    [a] = heard.of("delivery.acknowledged")
    assert (a.message, a.delivery, a.detail["answer"]) == (mid_ok, acked, yes)
    answers = {e.message: e.detail for e in heard.of("message.answer")}
    assert answers[no]["deliveries"] == [rejected] and not answers[no]["positive"]
    assert answers[yes]["deliveries"] == [acked] and answers[yes]["positive"]


async def test_an_operation_that_failed_announces_nothing(store: SQLiteStore,
                                                          heard: Heard) -> None:
    """Of one batch, only the operation that committed is announced."""
    good = asyncio.ensure_future(store.quarantine_raw(raw(3), "unreadable"))
    bad = asyncio.ensure_future(store.replay_delivery(12345))
    await asyncio.wait([good, bad])
    assert isinstance(bad.exception(), StoreError)
    assert [(e.kind, e.message) for e in heard.events] == [("message.quarantined", good.result())]
