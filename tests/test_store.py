"""The SQLite store: group commit, states, claims with leases, receipts, replay, journal."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.contracts import Attachment, Normalised, RawInput, Route
from gateway.errors import KeyReuseRejected, StoreConflict, StoreError
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.retry import RetryPolicy
from gateway.store import (
    DeliveryState,
    MessageState,
    Outcome,
    Processed,
    SQLiteStore,
    StoreReader,
    _connection,
    _delivery_ops,
    _intake_ops,
)
from gateway.store._connection import connect

FAST = RetryPolicy(max_attempts=3, initial=0.0, maximum=0.0, jitter=0.0)


def raw(n: int = 0) -> RawInput:
    return RawInput("registry", f"m{n}.xml", f"<x n='{n}'/>".encode(), {"content_type": "xml"})


def routed(mid: int, message_id: str = "abc", partners: tuple[str, ...] = ("canton",)) -> Processed:
    n = Normalised("personEventMessage", message_id, b"<x/>", etree.ElementTree(etree.Element("x")))
    return Processed(mid, MessageState.ROUTED, normalised=n, raw_is_canonical=False,
                     routes=[Route(p, "test") for p in partners])


async def queued(store: SQLiteStore, message_id: str = "abc") -> int:
    [(mid, _new)] = await store.add_raw([raw(hash(message_id) % 10_000)])
    await store.record_processing([routed(mid, message_id)])
    return mid


def answer(mid: int, referenced: str, action: str) -> Processed:
    """What processing decides about a partner's eventReport."""
    n = Normalised("eventReport", f"answer-{mid}", b"<x/>", etree.ElementTree(etree.Element("x")),
                   reference_message_id=referenced, action=action)
    return Processed(mid, MessageState.NOT_RELEVANT, "no route", normalised=n)


async def sent(store: SQLiteStore, message_id: str = "abc") -> tuple[int, int, str]:
    """A message routed to ``canton`` and sent there: (message, delivery, attempt_ref)."""
    mid = await queued(store, message_id)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST,
                                {"canton": 3600})
    return mid, c.delivery, c.attempt_ref


async def test_group_commit_batches_concurrent_writers(store: SQLiteStore) -> None:
    rows = await asyncio.gather(*(store.add_raw([raw(i)]) for i in range(200)))
    assert len({r[0][0] for r in rows}) == 200
    batches, ops = store.commits
    assert batches < 200, "concurrent writes must share commits"
    assert ops < 200, "concurrent calls storing inputs must share an operation"
    reader = StoreReader(store.path)
    assert [reader.raw(r[0][0]) for r in rows] == [raw(i).data for i in range(200)]
    assert reader.counts()["messages"] == {"received": 200}


async def test_concurrent_inputs_one_refused_the_others_stored(store: SQLiteStore) -> None:
    def keyed(key: str, data: bytes) -> RawInput:
        return RawInput("push", "ref", data, {"idempotency_key": key})

    [(first, _)] = await store.add_raw([keyed("k", b"<a/>")])
    calls = [asyncio.ensure_future(store.add_raw(raws)) for raws in (
        [raw(1)], [keyed("k", b"<other/>")], [raw(2), raw(1)], [keyed("k", b"<a/>")])]
    cancelled = asyncio.ensure_future(store.add_raw([raw(3)]))
    await asyncio.sleep(0)
    cancelled.cancel()  # its caller gave up: its input is stored all the same
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[1], KeyReuseRejected) and done[1].first == first
    [(one, new_one)], [(_two, new_two), (again, new_again)], [(repeat, new_repeat)] = (
        done[0], done[2], done[3])
    assert (new_one, new_two, new_again, new_repeat) == (True, True, False, False)
    assert repeat == first
    reader = StoreReader(store.path)
    assert reader.get_message(again)["duplicate_of"] == one
    assert [m["ref"] for m in reader.list_messages()].count("m3.xml") == 1
    assert b"<other/>" not in [reader.raw(m["id"]) for m in reader.list_messages()]


@pytest.mark.parametrize("group_commit_max", [1, 4])
async def test_inputs_are_stored_when_their_operation_fills_the_batch(
        tmp_path: Path, group_commit_max: int) -> None:
    """Queueing the intake operation into a full batch runs it at once (max 1; max 4
    with three writes waiting): the call's inputs are in it, each call gets its own rows."""
    store = SQLiteStore(tmp_path / "g.db", group_commit_max=group_commit_max,
                        group_commit_delay=0.001)
    store.start()
    try:
        [(first, new_first)] = await store.add_raw([raw(0)])
        notes = [asyncio.ensure_future(store.note("test", {"n": n})) for n in range(3)]
        calls = [[raw(1)], [raw(2), raw(0)], [raw(3), raw(1)], [raw(4)]]
        done = await asyncio.gather(*(store.add_raw(raws) for raws in calls))
        await asyncio.gather(*notes)
    finally:
        store.close()
    assert new_first
    assert [[new for _mid, new in rows] for rows in done] == [
        [True], [True, False], [True, False], [True]]
    reader = StoreReader(store.path)
    for raws, rows in zip(calls, done, strict=True):
        for r, (mid, new) in zip(raws, rows, strict=True):
            assert reader.raw(mid) == r.data
            if not new:
                original = first if r == raw(0) else done[0][0][0]
                assert reader.get_message(mid)["duplicate_of"] == original
    assert reader.counts()["messages"] == {"received": 5, "duplicate": 2}


async def test_same_input_twice_is_a_duplicate(store: SQLiteStore) -> None:
    (a, new_a), = await store.add_raw([raw(1)])
    (b, new_b), = await store.add_raw([raw(1)])
    assert new_a and not new_b
    reader = StoreReader(store.path)
    assert reader.get_message(b)["state"] == MessageState.DUPLICATE
    assert reader.get_message(b)["reason"] == f"same input as message {a}"


async def test_same_message_id_routed_twice_is_a_duplicate(store: SQLiteStore) -> None:
    first = await queued(store, "same-id")
    [(mid, _)] = await store.add_raw([raw(99)])
    await store.record_processing([routed(mid, "same-id")])
    reader = StoreReader(store.path)
    second = reader.get_message(mid)
    assert second["state"] == MessageState.DUPLICATE
    assert second["deliveries"] == []
    assert str(first) in second["reason"]


async def test_claim_send_receipt_delivered(store: SQLiteStore) -> None:
    mid = await queued(store)
    [claim] = await store.claim_due("n1", 60, 10, ["canton"])
    assert claim.attempt == 1 and not claim.resumed and claim.payload == b"<x/>"
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []  # leased
    await store.record_outcomes([Outcome(claim.delivery, claim.attempt_ref, "sent")],
                                lambda p: FAST, {"canton": 3600})
    receipt = Receipt(claim.attempt_ref, ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC))
    assert await store.record_receipts([receipt], lambda p: FAST) == [True]
    msg = StoreReader(store.path).get_message(mid)
    assert msg["deliveries"][0]["state"] == DeliveryState.DELIVERED
    events = [j["event"] for j in msg["journal"]]
    assert events == ["message.received", "message.normalised", "delivery.queued",
                      "delivery.sending", "delivery.sent", "delivery.delivered"]


async def test_unknown_receipt_is_stored_but_unmatched(store: SQLiteStore) -> None:
    r = Receipt("nobody", ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC))
    assert await store.record_receipts([r], lambda p: FAST) == [False]


async def test_expired_lease_resumes_the_same_attempt(store: SQLiteStore) -> None:
    await queued(store)
    [first] = await store.claim_due("n1", 0.0, 10, ["canton"])
    time.sleep(0.01)
    [again] = await store.claim_due("n2", 60, 10, ["canton"])
    assert again.resumed and again.attempt_ref == first.attempt_ref and again.attempt == 1


async def test_release_leases_at_start_up(store: SQLiteStore) -> None:
    await queued(store)
    [first] = await store.claim_due("n1", 600, 10, ["canton"])
    assert await store.release_leases("n1") == 1
    [again] = await store.claim_due("n1", 600, 10, ["canton"])
    assert again.attempt_ref == first.attempt_ref


async def test_transient_failures_retry_then_die(store: SQLiteStore) -> None:
    mid = await queued(store)
    refs = set()
    for _ in range(3):
        [c] = await store.claim_due("n1", 60, 10, ["canton"])
        refs.add(c.attempt_ref)
        await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "down")],
                                    lambda p: FAST, {})
    assert len(refs) == 3, "each retry is a new attempt with a new reference"
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert d["state"] == DeliveryState.DEAD
    assert "retries exhausted after 3 attempts" in d["reason"]


async def test_an_unsure_attempt_is_repeated_as_the_same_attempt(store: SQLiteStore) -> None:
    mid = await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "unsure", "flush failed")],
                                lambda p: FAST, {})
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert (d["state"], d["reason"], d["attempts"]) == (DeliveryState.SENDING, "flush failed", 1)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (again.attempt_ref, again.attempt, again.resumed) == (c.attempt_ref, 1, True)
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST, {})
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert (d["state"], d["reason"]) == (DeliveryState.SENT, None)
    events = [e["event"] for e in StoreReader(store.path).get_message(mid)["journal"]]
    assert events.count("delivery.unsure") == 1


async def test_an_unsure_attempt_waits_and_gives_up_only_at_the_maximum_age(
        store: SQLiteStore) -> None:
    mid = await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    one_attempt = RetryPolicy(max_attempts=1, initial=100, jitter=0)
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "unsure", "flush failed")],
                                lambda p: one_attempt, {})
    assert await store.claim_due("n1", 60, 10, ["canton"]) == [], "it waits for its delay"
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert d["state"] == DeliveryState.SENDING, "max_attempts does not count: same attempt"
    short = RetryPolicy(max_age=10, initial=100, jitter=0)
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "unsure", "flush failed")],
                                lambda p: short, {})
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert d["state"] == DeliveryState.DEAD
    assert "maximum age of 10s" in d["reason"] and "may have reached the partner" in d["reason"]


async def test_retry_schedule_is_persisted(store: SQLiteStore) -> None:
    mid = await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    slow = RetryPolicy(initial=100, jitter=0)
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "x")],
                                lambda p: slow, {})
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert d["state"] == DeliveryState.RETRY_WAIT
    assert d["next_attempt_at"] > time.time() + 90
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []


async def test_transient_receipt_retries_with_new_attempt(store: SQLiteStore) -> None:
    await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST, {})
    r = Receipt(c.attempt_ref, ReceiptOutcome.FAILED_TRANSIENT, "401", "hub", datetime.now(UTC))
    await store.record_receipts([r], lambda p: FAST)
    [c2] = await store.claim_due("n1", 60, 10, ["canton"])
    assert c2.attempt == 2 and c2.attempt_ref != c.attempt_ref


async def test_needs_review_and_replay(store: SQLiteStore) -> None:
    mid = await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST, {})
    r = Receipt(c.attempt_ref, ReceiptOutcome.NEEDS_REVIEW, "999", "?", datetime.now(UTC))
    await store.record_receipts([r], lambda p: FAST)
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert d["state"] == DeliveryState.NEEDS_REVIEW
    new = await store.replay_delivery(d["id"])
    states = {x["id"]: x["state"] for x in StoreReader(store.path).get_message(mid)["deliveries"]}
    assert states == {d["id"]: DeliveryState.REPLAYED, new: DeliveryState.QUEUED}
    with pytest.raises(StoreError):
        await store.replay_delivery(new)


async def test_overdue_receipts_are_flagged_once(store: SQLiteStore) -> None:
    await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST,
                                {"canton": 0.0})
    time.sleep(0.01)
    assert len(await store.flag_overdue()) == 1
    assert await store.flag_overdue() == []


async def test_journal_chain_detects_tampering(store: SQLiteStore) -> None:
    await queued(store)
    store.close()
    reader = StoreReader(store.path)
    count, broken = reader.verify_journal()
    assert count == 3 and broken is None
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE journal SET detail = '{}' WHERE seq = 2")
    conn.commit()
    assert reader.verify_journal()[1] == 2


async def test_failed_operation_does_not_undo_the_batch(store: SQLiteStore) -> None:
    ok = asyncio.ensure_future(store.add_raw([raw(5)]))
    bad = asyncio.ensure_future(store.replay_delivery(12345))
    assert (await ok)[0][1]
    with pytest.raises(StoreError):
        await bad
    assert StoreReader(store.path).counts()["messages"] == {"received": 1}


async def test_delivery_ids_returned_are_the_stored_ones(store: SQLiteStore) -> None:
    rows = await store.add_raw([raw(i) for i in range(10, 13)])
    await queued(store, "before")  # ids do not start at 1
    created = await store.record_processing(
        [routed(mid, f"m-{mid}", ("canton", "other")) for mid, _new in rows])
    conn = sqlite3.connect(store.path)
    stored = conn.execute("SELECT id, message, partner FROM deliveries WHERE id IN"
                          f" ({','.join('?' * len(created))}) ORDER BY id", created).fetchall()
    assert [r[0] for r in stored] == created and len(created) == 6
    assert [(r[1], r[2]) for r in stored] == [
        (mid, p) for mid, _new in rows for p in ("canton", "other")]
    journal = conn.execute("SELECT delivery FROM journal WHERE event = 'delivery.queued'"
                           " ORDER BY seq").fetchall()
    assert [d for (d,) in journal][-6:] == created


async def test_same_message_id_twice_in_one_batch(store: SQLiteStore) -> None:
    rows = await store.add_raw([raw(20), raw(21)])
    await store.record_processing([routed(mid, "twin") for mid, _new in rows])
    reader = StoreReader(store.path)
    first, second = (reader.get_message(mid) for mid, _new in rows)
    assert first["state"] == MessageState.ROUTED and len(first["deliveries"]) == 1
    assert second["state"] == MessageState.DUPLICATE and second["deliveries"] == []


async def test_claims_come_in_due_order_across_states_and_stop_at_the_limit(
        tmp_path: Path) -> None:
    now = [1_000_000.0]  # the store's clock, moved by hand: a loaded machine changes nothing
    store = SQLiteStore(tmp_path / "g.db", group_commit_delay=0.001, clock=lambda: now[0])
    store.start()
    try:
        expired = await queued(store, "expired")
        [lost] = await store.claim_due("n2", 0.3, 10, ["canton"])  # n2 stops; its lease expires
        first = await queued(store, "first")
        [c] = await store.claim_due("n1", 60, 10, ["canton"])
        await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "down")],
                                    lambda p: FAST, {})  # retry_wait, due at once
        later = [await queued(store, f"later-{i}") for i in range(3)]
        now[0] += 1.0  # past n2's lease
        claims = await store.claim_due("n1", 60, 3, ["canton"])
        assert [x.message for x in claims] == [expired, first, later[0]]
        assert claims[0].resumed and claims[0].attempt_ref == lost.attempt_ref
        assert claims[1].attempt == 2 and not claims[1].resumed
        claims = await store.claim_due("n1", 60, 10, ["canton"])
        assert [x.message for x in claims] == [later[1], later[2]]
        assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    finally:
        store.close()


async def test_receipts_for_one_attempt_in_one_batch_apply_in_order(store: SQLiteStore) -> None:
    mid = await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent")], lambda p: FAST, {})
    now = datetime.now(UTC)
    batch = [Receipt(c.attempt_ref, ReceiptOutcome.WAIT, "601", "waiting", now),
             Receipt(c.attempt_ref, ReceiptOutcome.DELIVERED, "100", "ok", now),
             Receipt(c.attempt_ref, ReceiptOutcome.FAILED_PERMANENT, "303", "late", now)]
    assert await store.record_receipts(batch, lambda p: FAST) == [True, True, True]
    msg = StoreReader(store.path).get_message(mid)
    assert msg["deliveries"][0]["state"] == DeliveryState.DELIVERED
    assert [j["event"] for j in msg["journal"]][-3:] == [
        "receipt.wait", "delivery.delivered", "receipt.late"]
    assert len(msg["deliveries"][0]["receipts"]) == 3


async def test_attachments_go_with_their_claim_only(store: SQLiteStore) -> None:
    plain = await queued(store, "plain")
    [(mid, _new)] = await store.add_raw([raw(7)])
    files = (Attachment("b.pdf", b"B"), Attachment("a.pdf", b"A"))
    n = Normalised("personEventMessage", "with-files", b"<x/>",
                   etree.ElementTree(etree.Element("x")), attachments=files)
    await store.record_processing([Processed(mid, MessageState.ROUTED, normalised=n,
                                             routes=[Route("canton", "test")])])
    claims = {c.message: c for c in await store.claim_due("n1", 60, 10, ["canton"])}
    assert claims[plain].attachments == ()
    assert [a.name for a in claims[mid].attachments] == ["a.pdf", "b.pdf"]


async def test_a_duplicate_names_the_message_it_duplicates(store: SQLiteStore) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    [(copy, new)] = await store.add_raw([raw(1)])
    assert not new
    assert StoreReader(store.path).get_message(copy)["duplicate_of"] == first


async def test_a_quarantined_input_is_no_original(store: SQLiteStore) -> None:
    """A file quarantined (say, while a partner was misconfigured) and dropped again is taken."""
    bad = await store.quarantine_raw(raw(1), "no partner takes it")
    [(again, new)] = await store.add_raw([raw(1)])
    assert new and again != bad
    assert StoreReader(store.path).get_message(again)["state"] == MessageState.RECEIVED


async def test_a_bad_envelope_around_a_known_payload_keeps_its_problem(store: SQLiteStore) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    copy = await store.quarantine_raw(raw(1), "bad sedex envelope: no senderId")
    msg = StoreReader(store.path).get_message(copy)
    assert (msg["state"], msg["duplicate_of"]) == (MessageState.DUPLICATE, first)
    assert msg["reason"] == (f"same input as message {first};"
                             " also: bad sedex envelope: no senderId")
    [entry] = [j for j in msg["journal"] if j["event"] == "message.duplicate"]
    assert entry["detail"]["problem"] == "bad sedex envelope: no senderId"


async def test_an_input_quarantined_at_intake_keeps_its_header_ids_but_a_duplicate_none(
        store: SQLiteStore) -> None:
    """Quarantined as it is stored, an input keeps the messageId and senderId read from its
    header; one stored as a duplicate of a known input keeps neither (its original holds
    them), nor does a repeat of an idempotency key change its first input."""
    reader = StoreReader(store.path)
    bad = await store.quarantine_raw(raw(1), "addressed to someone else", message_id="q-1",
                                     sender_id="sedex://T1-1-1")
    assert [reader.get_message(bad)[k] for k in ("state", "message_id", "sender_id")] == [
        MessageState.QUARANTINED, "q-1", "sedex://T1-1-1"]
    [(first, _)] = await store.add_raw([raw(2)])
    copy = await store.quarantine_raw(raw(2), "bad envelope", message_id="q-2", sender_id="s")
    assert [reader.get_message(copy)[k] for k in ("duplicate_of", "message_id", "sender_id")
            ] == [first, None, None]
    keyed = RawInput("push", "p", b"<x/>", {_intake_ops.IDEMPOTENCY_KEY: "k"})
    once = await store.quarantine_raw(keyed, "refused", message_id="q-3")
    assert await store.quarantine_raw(keyed, "refused", message_id="q-4") == once
    assert reader.get_message(once)["message_id"] == "q-3"


async def test_an_answer_is_applied_in_the_transaction_that_stores_it(store: SQLiteStore) -> None:
    """Stored answer and rejection commit together, or neither does: no crash can split them."""
    _mid, did, _ref = await sent(store, "answered")
    [(ans, _)] = await store.add_raw([RawInput("canton", "answer.xml", b"<no/>", {})])
    store.close()
    conn = connect(store.path)
    conn.execute("BEGIN IMMEDIATE")
    _intake_ops.record_processing(conn, [answer(ans, "answered", "8")], time.time())
    inside = conn.execute("SELECT state FROM deliveries WHERE id = ?", (did,)).fetchone()[0]
    conn.execute("ROLLBACK")
    after = conn.execute("SELECT state FROM deliveries WHERE id = ?", (did,)).fetchone()[0]
    stored = conn.execute("SELECT state FROM messages WHERE id = ?", (ans,)).fetchone()[0]
    conn.close()
    assert (inside, after, stored) == (DeliveryState.REJECTED, DeliveryState.SENT,
                                       MessageState.RECEIVED)


async def test_a_positive_answer_acknowledges_and_does_not_reject(store: SQLiteStore) -> None:
    mid, did, _ref = await sent(store, "welcome")
    [(ans, _)] = await store.add_raw([RawInput("canton", "answer.xml", b"<yes/>", {})])
    await store.record_processing([answer(ans, "welcome", "9")])
    d = StoreReader(store.path).get_message(mid)["deliveries"][0]
    assert (d["id"], d["state"], d["reason"]) == (did, DeliveryState.ACKNOWLEDGED, None)


async def test_an_answer_settles_only_the_deliveries_to_the_partner_that_sent_it(
        store: SQLiteStore) -> None:
    [(mid, _)] = await store.add_raw([raw(5)])
    await store.record_processing([routed(mid, "both", ("canton", "archive"))])
    claims = await store.claim_due("n1", 60, 10, ["canton", "archive"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent") for c in claims],
                                lambda p: FAST, {})
    rows = await store.add_raw([RawInput("archive", "a.xml", b"<a/>", {}),
                                RawInput("stranger", "s.xml", b"<s/>", {})])
    (from_archive, _), (from_stranger, _) = rows
    await store.record_processing([answer(from_archive, "both", "8"),
                                   answer(from_stranger, "both", "8")])
    states = {d["partner"]: d["state"]
              for d in StoreReader(store.path).get_message(mid)["deliveries"]}
    assert states == {"archive": DeliveryState.REJECTED, "canton": DeliveryState.SENT}


async def test_a_correction_with_the_quarantined_bytes_corrects_nothing(store: SQLiteStore) -> None:
    """Quarantined inputs are no originals, yet a "correction" must still differ from its own."""
    bad = await store.quarantine_raw(raw(1), "unreadable")
    with pytest.raises(StoreError, match=f"same bytes as message {bad}: nothing was corrected"):
        await store.add_correction(bad, raw(1))
    fixed = await store.add_correction(bad, raw(2))
    assert StoreReader(store.path).get_message(fixed)["state"] == MessageState.RECEIVED


async def test_a_delivery_another_writer_changed_meanwhile_is_not_overwritten(
        store: SQLiteStore) -> None:
    """Each write names the state it expects: a lost race raises, the other writer's state stays."""
    await queued(store)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    store.close()
    conn = connect(store.path)
    # another writer's change, landing between record_outcomes reading the delivery and writing it
    conn.execute("CREATE TEMP TRIGGER meanwhile AFTER UPDATE ON attempts BEGIN"
                 " UPDATE deliveries SET state = 'dead' WHERE id = NEW.delivery; END")
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreConflict, match="sending this attempt"):
        _delivery_ops.record_outcomes(conn, [Outcome(c.delivery, c.attempt_ref, "sent")],
                                      lambda p: FAST, {}, time.time())
    state = conn.execute("SELECT state FROM deliveries WHERE id = ?", (c.delivery,)).fetchone()[0]
    conn.execute("ROLLBACK")
    conn.close()
    assert state == DeliveryState.DEAD


async def test_status_reads_its_counts_in_one_snapshot(store: SQLiteStore) -> None:
    """``status`` reads the deliveries per partner and state, then the totals, in queries of
    their own, while the daemon writes. A commit between them must not make them disagree.

    The interleaving is real, not simulated: the reader's connection runs its queries in a
    thread, and its SQLite trace callback (called as each statement starts to run) waits,
    when the totals' query starts, for the daemon's writer to commit another routed message
    with its delivery. Every figure must then be the one before that commit."""
    await queued(store, "first")
    reader = StoreReader(store.path)
    loop = asyncio.get_running_loop()
    written: list[int] = []

    def meanwhile(statement: str) -> None:
        if statement.startswith("SELECT state, count(*) FROM messages") and not written:
            written.append(asyncio.run_coroutine_threadsafe(queued(store, "second"), loop)
                           .result(10))

    reader.conn.set_trace_callback(meanwhile)
    try:
        counts = await asyncio.to_thread(reader.counts)
    finally:
        reader.close()
    assert written, "the write came between the queries"
    assert counts["unsettled"] == {"canton": {DeliveryState.QUEUED: 1}}
    assert counts["deliveries"] == {DeliveryState.QUEUED: 1}
    assert counts["messages"] == {MessageState.ROUTED: 1}
    assert counts["waiting"] == {"canton": 1}


@pytest.mark.parametrize("read", [lambda r, mid: r.get_message(mid),
                                  lambda r, mid: r.list_messages()[0]],
                         ids=["get_message", "list_messages"])
async def test_a_message_is_read_in_one_snapshot_with_its_deliveries(
        store: SQLiteStore, read: Callable[[StoreReader, int], dict[str, Any]]) -> None:
    """``messages show`` and ``messages list`` read a message, then its deliveries, in
    queries of their own, while the daemon writes. The daemon's writer commits the
    message's processing (routed, a delivery queued) when the deliveries' query starts
    (the interleaving of :func:`test_status_reads_its_counts_in_one_snapshot`): the message
    must be read as it was before, received and without deliveries, not received with
    a delivery."""
    [(mid, _new)] = await store.add_raw([raw(1)])
    reader = StoreReader(store.path)
    loop = asyncio.get_running_loop()
    written: list[list[int]] = []

    def meanwhile(statement: str) -> None:
        if statement.startswith("SELECT id, message, partner, state") and not written:
            written.append(asyncio.run_coroutine_threadsafe(
                store.record_processing([routed(mid)]), loop).result(10))

    reader.conn.set_trace_callback(meanwhile)
    try:
        msg = await asyncio.to_thread(read, reader, mid)
    finally:
        reader.close()
    assert written, "the write came between the queries"
    assert (msg["state"], msg["deliveries"]) == (MessageState.RECEIVED, [])
    with closing(StoreReader(store.path)) as later:
        assert [d["state"] for d in later.get_message(mid)["deliveries"]] == ["queued"]


async def test_the_wal_stays_bounded_while_writes_never_pause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a commit checkpoints once the WAL holds this many pages; the next starts it over
    monkeypatch.setattr(_connection, "WAL_CHECKPOINT_PAGES", 64)  # 512 KiB
    store = SQLiteStore(tmp_path / "g.db")
    store.start()
    wal = tmp_path / "g.db-wal"
    largest = 0
    try:
        for batch in range(40):  # 40 commits of 50 inputs of 20 KB: 40 MB written, no pause
            await store.add_raw([RawInput("registry", f"b{batch}-{n}.xml", os.urandom(20_000))
                                 for n in range(50)])
            largest = max(largest, wal.stat().st_size)
    finally:
        store.close()
    # one commit (a MiB) beyond the threshold at most, not the 40 MB written
    assert largest < 3 << 20, f"the WAL grew to {largest} bytes"
