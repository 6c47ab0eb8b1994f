"""The store contract (:class:`gateway.store.Store`), held against every backend.

Written against the protocol only: what a test sees is what a method returns
and the journal entries each commit announces (``on_commit``), never a
backend's tables. Time is a fake clock handed to the store, so leases,
retries and overdue receipts are tested without sleeping. A backend joins
by adding an opener to :data:`OPENERS` (PostgreSQL later).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.contracts import Attachment, Normalised, RawInput, Route
from gateway.ech0223 import (
    Country,
    CountryInfo,
    MaritalData,
    NationalityData,
    PersonIdentificationLight,
)
from gateway.errors import NodeRunning, StoreConflict, StoreError
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.person_state import PersonChange, PersonState
from gateway.retry import RetryPolicy
from gateway.store import Inbound, MessageState, Outcome, Processed, SQLiteStore, Store
from gateway.store.journal import Entry
from plugins.sedex.status import lookup as sedex_status

#: Retries after 10 s, then 20 s ...; three attempts in all; no jitter.
POLICY = RetryPolicy(max_attempts=3, initial=10.0, maximum=100.0, jitter=0.0)
START = 1_800_000_000.0


class FakeClock:
    """The store's clock in these tests: time moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: How each backend opens a store on the database for ``folder`` (the same one each time).
OPENERS: dict[str, Callable[[Path, Callable[[], float]], Store]] = {
    "sqlite": lambda folder, clock: SQLiteStore(folder / "g.db", group_commit_delay=0.001,
                                                clock=clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(OPENERS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = OPENERS[backend](tmp_path, clock)
    s.start()
    yield s
    s.close()


@pytest.fixture
def journal(store: Store) -> list[Entry]:
    """Every journal entry committed from now on, in journal order."""
    entries: list[Entry] = []
    store.on_commit(entries.extend)
    return entries


def raw(n: int, source: str = "registry") -> RawInput:
    return RawInput(source, f"m{n}.xml", f"<m n='{n}'/>".encode(), {"content_type": "xml"})


def routed(mid: int, message_id: str, partners: Sequence[str] = ("canton",),
           sender: str | None = None) -> Processed:
    n = Normalised("personEventMessage", message_id, f"<c id='{message_id}'/>".encode(),
                   etree.ElementTree(etree.Element("c")), sender_id=sender)
    return Processed(mid, MessageState.ROUTED, normalised=n, raw_is_canonical=False,
                     routes=[Route(p, "test") for p in partners])


def answer(mid: int, answers: str, action: str, message_id: str | None = None) -> Processed:
    """What processing decides about a partner's eventReport (8: negative, 9: positive)."""
    n = Normalised("eventReport", message_id or f"answer-{mid}", b"<r/>",
                   etree.ElementTree(etree.Element("r")),
                   reference_message_id=answers, action=action)
    return Processed(mid, MessageState.NOT_RELEVANT, "an answer", normalised=n)


def events(journal: Sequence[Entry], *, message: int | None = None,
           delivery: int | None = None) -> list[str]:
    return [e.event for e in journal
            if (message is None or e.message == message)
            and (delivery is None or e.delivery == delivery)]


def the(journal: Sequence[Entry], event: str, **match: int) -> Entry:
    """The one entry ``event`` (about ``message``/``delivery`` when given)."""
    [entry] = [e for e in journal if e.event == event
               and all(getattr(e, key) == value for key, value in match.items())]
    return entry


def policy(_partner: str) -> RetryPolicy:
    return POLICY


async def queued(store: Store, n: int, partners: Sequence[str] = ("canton",)
                 ) -> tuple[int, list[int]]:
    """A message routed to ``partners``: (message, its deliveries)."""
    [(mid, new)] = await store.add_raw([raw(n)])
    assert new
    return mid, await store.record_processing([routed(mid, f"id-{n}", partners)])


async def test_a_claim_stops_at_a_byte_budget_but_always_takes_the_first_due(store: Store) -> None:
    """A backlog of large deliveries (scanned documents) is claimed a few at a time; a
    message's attachments count with its payload."""
    scan = Attachment("files/scan.pdf", b"%PDF-" + b"s" * 3000)
    dids = []
    for n in range(5):
        [(mid, _new)] = await store.add_raw([raw(n)])
        big = routed(mid, f"big-{n}")
        assert big.normalised is not None
        big.normalised = big.normalised.replaced(
            xml=b"<c>" + b"x" * 1000 + b"</c>", attachments=(scan,) if n == 2 else ())
        dids += await store.record_processing([big])
    size = 1007
    budget = 2 * size
    first = await store.claim_due("n1", 60, 10, ["canton"], max_bytes=budget)
    assert [(c.delivery, len(c.payload)) for c in first] == [(dids[0], size), (dids[1], size)]
    with_scan = await store.claim_due("n1", 60, 10, ["canton"], max_bytes=budget)
    assert [(c.delivery, c.attachments) for c in with_scan] == [(dids[2], (scan,))]
    assert [c.delivery for c in await store.claim_due("n1", 60, 10, ["canton"], max_bytes=1)
            ] == dids[3:4]
    assert [c.delivery for c in await store.claim_due("n1", 60, 10, ["canton"])] == dids[4:]


async def sent(store: Store, n: int, timeout: float = 3600.0) -> tuple[int, int, str]:
    """A message routed to ``canton`` and sent there: (message, delivery, attempt_ref)."""
    mid, [did] = await queued(store, n)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "sent")], policy, {"canton": timeout})
    return mid, did, c.attempt_ref


# -- intake ---------------------------------------------------------------------


async def test_add_raw_gives_each_input_its_id_as_stored(store: Store, journal: list[Entry]) -> None:
    rows = await store.add_raw([raw(1), raw(2), raw(3)])
    assert [new for _id, new in rows] == [True, True, True]
    ids = [mid for mid, _new in rows]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    for n, mid in enumerate(ids, 1):
        stored = await store.load_input(mid)
        assert (stored.message, stored.source, stored.ref, stored.data, dict(stored.meta)) == (
            mid, "registry", f"m{n}.xml", raw(n).data, {"content_type": "xml"})
    assert [p.message for p in await store.pending(10)] == ids
    assert (await store.count_pending(), len(await store.pending(1))) == (3, 1)
    assert [(e.event, e.message) for e in journal] == [("message.received", mid) for mid in ids]
    assert the(journal, "message.received", message=ids[1]).detail == {
        "source": "registry", "ref": "m2.xml", "bytes": len(raw(2).data)}


async def test_the_same_bytes_from_the_same_source_are_a_duplicate(
        store: Store, journal: list[Entry]) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    [(copy, new)] = await store.add_raw([raw(1)])
    [(other_source, new_elsewhere)] = await store.add_raw([raw(1, source="canton")])
    assert not new and new_elsewhere and len({first, copy, other_source}) == 3
    dup = the(journal, "message.duplicate", message=copy)
    assert dup.detail == {"duplicate_of": first, "reason": f"same input as message {first}",
                          "source": "registry"}
    assert [p.message for p in await store.pending(10)] == [first, other_source]


async def test_pending_stops_at_a_byte_budget_but_always_gives_the_oldest(store: Store) -> None:
    big = [RawInput("registry", f"big{n}.xml", b"<x>" + bytes([65 + n]) * 1000 + b"</x>")
           for n in range(4)]
    ids = [mid for mid, _new in await store.add_raw(big)]
    size = len(big[0].data)
    assert [p.message for p in await store.pending(10, max_bytes=2 * size)] == ids[:2]
    assert [p.message for p in await store.pending(10, max_bytes=2 * size - 1)] == ids[:1]
    assert [p.message for p in await store.pending(10, max_bytes=1)] == ids[:1]
    assert [p.message for p in await store.pending(3, max_bytes=100 * size)] == ids[:3]
    assert [p.message for p in await store.pending(10)] == ids


async def test_a_duplicate_within_one_batch(store: Store, journal: list[Entry]) -> None:
    rows = await store.add_raw([raw(1), raw(2), raw(1)])
    assert [new for _id, new in rows] == [True, True, False]
    assert the(journal, "message.duplicate").message == rows[2][0]
    assert the(journal, "message.duplicate").detail["duplicate_of"] == rows[0][0]


async def test_quarantine_raw_stores_an_input_that_is_nobodys_original(
        store: Store, journal: list[Entry]) -> None:
    bad = await store.quarantine_raw(raw(1), "no partner takes it")
    assert the(journal, "message.quarantined", message=bad).detail == {
        "reason": "no partner takes it", "source": "registry"}
    assert await store.pending(10) == []
    assert (await store.load_input(bad)).data == raw(1).data
    [(again, new)] = await store.add_raw([raw(1)])
    assert new and again != bad
    assert [p.message for p in await store.pending(10)] == [again]


async def test_quarantining_known_bytes_stores_a_duplicate_that_keeps_its_problem(
        store: Store, journal: list[Entry]) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    copy = await store.quarantine_raw(raw(1), "bad envelope")
    assert the(journal, "message.duplicate", message=copy).detail == {
        "duplicate_of": first, "reason": f"same input as message {first}; also: bad envelope",
        "source": "registry", "problem": "bad envelope"}


async def test_an_input_quarantined_in_processing_lets_go_of_its_bytes(store: Store) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    await store.record_processing([Processed(first, MessageState.QUARANTINED, "unreadable")])
    [(again, new)] = await store.add_raw([raw(1)])
    assert new and again != first


async def test_original_of_names_what_the_same_input_would_duplicate_and_stores_nothing(
        store: Store, journal: list[Entry]) -> None:
    [(first, _)] = await store.add_raw([raw(1)])
    assert await store.original_of("registry", raw(1).data) == first
    assert await store.original_of("canton", raw(1).data) is None  # another source
    assert await store.original_of("registry", raw(2).data) is None
    assert events(journal) == ["message.received"]  # the look-ups stored nothing
    await store.record_processing([Processed(first, MessageState.QUARANTINED, "unreadable")])
    assert await store.original_of("registry", raw(1).data) is None  # it let go of its bytes
    [(again, new)] = await store.add_raw([raw(1)])
    assert new and await store.original_of("registry", raw(1).data) == again


async def test_load_input_of_no_message_names_it(store: Store) -> None:
    with pytest.raises(StoreError, match="no message 4711"):
        await store.load_input(4711)


# -- processing -----------------------------------------------------------------


async def test_record_processing_queues_one_delivery_per_route(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    mid, deliveries = await queued(store, 1, ("canton", "archive"))
    assert len(set(deliveries)) == 2
    assert await store.pending(10) == []
    assert events(journal, message=mid) == ["message.received", "message.normalised",
                                            "delivery.queued", "delivery.queued"]
    assert [(e.delivery, e.detail) for e in journal if e.event == "delivery.queued"] == [
        (deliveries[0], {"partner": "canton", "reason": "test"}),
        (deliveries[1], {"partner": "archive", "reason": "test"})]
    assert await store.next_due(["canton", "archive"]) == clock.now
    claims = await store.claim_due("n1", 60, 10, ["canton", "archive"])
    assert sorted((c.delivery, c.partner, c.message) for c in claims) == sorted(
        [(deliveries[0], "canton", mid), (deliveries[1], "archive", mid)])
    assert {c.payload for c in claims} == {b"<c id='id-1'/>"}


async def test_an_outcome_for_a_message_recorded_meanwhile_is_dropped(
        store: Store, journal: list[Entry]) -> None:
    """Two writers processed the same input: the second outcome never writes over the first."""
    mid, deliveries = await queued(store, 1, ("canton",))
    assert await store.record_processing([routed(mid, "id-again", ("canton", "archive"))]) == []
    assert events(journal, message=mid) == ["message.received", "message.normalised",
                                            "delivery.queued"]
    claims = await store.claim_due("n1", 60, 10, ["canton", "archive"])
    assert [(c.delivery, c.partner) for c in claims] == [(deliveries[0], "canton")]


async def test_not_relevant_and_quarantined_create_no_delivery(
        store: Store, journal: list[Entry]) -> None:
    rows = await store.add_raw([raw(1), raw(2)])
    (skip, _), (bad, _) = rows
    created = await store.record_processing([
        Processed(skip, MessageState.NOT_RELEVANT, "nobody wants it"),
        Processed(bad, MessageState.QUARANTINED, "unreadable")])
    assert created == []
    assert the(journal, "message.not_relevant", message=skip).detail == {"reason": "nobody wants it"}
    assert the(journal, "message.quarantined", message=bad).detail == {"reason": "unreadable"}
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []


async def test_a_message_id_routed_before_makes_a_duplicate(
        store: Store, journal: list[Entry]) -> None:
    first, [did] = await queued(store, 1)
    rows = await store.add_raw([raw(2), raw(3)])
    created = await store.record_processing([routed(mid, "id-1") for mid, _new in rows])
    assert created == []
    for mid, _new in rows:
        assert the(journal, "message.duplicate", message=mid).detail == {
            "reason": f"messageId id-1 was already routed as message {first}",
            "duplicate_of": first}
    assert [c.delivery for c in await store.claim_due("n1", 60, 10, ["canton"])] == [did]


async def test_the_same_message_id_twice_in_one_batch(store: Store, journal: list[Entry]) -> None:
    rows = await store.add_raw([raw(1), raw(2)])
    (first, _), (second, _) = rows
    created = await store.record_processing([routed(first, "twin"), routed(second, "twin")])
    assert len(created) == 1
    assert the(journal, "message.duplicate", message=second).detail["duplicate_of"] == first


async def test_a_message_id_is_a_duplicate_only_from_the_same_sender(
        store: Store, journal: list[Entry]) -> None:
    """sedex: the pair (senderId, messageId) is unique, not the messageId alone."""
    rows = await store.add_raw([raw(1), raw(2), raw(3)])
    (of_a, _), (of_b, _), (again_a, _) = rows
    created = await store.record_processing([routed(of_a, "7", sender="1-230-1"),
                                             routed(of_b, "7", sender="1-261-1")])
    assert len(created) == 2
    assert await store.record_processing([routed(again_a, "7", sender="1-230-1")]) == []
    assert the(journal, "message.duplicate", message=again_a).detail == {
        "reason": f"messageId 7 from sender 1-230-1 was already routed as message {of_a}",
        "duplicate_of": of_a}


async def _two_senders_sent(store: Store) -> dict[str, int]:
    """Messages ``7`` from senders ``A`` and ``B``, each sent to canton: sender -> delivery."""
    rows = await store.add_raw([raw(1), raw(2)])
    await store.record_processing([routed(mid, "7", sender=sender)
                                   for (mid, _new), sender in zip(rows, "AB", strict=True)])
    claims = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent") for c in claims],
                                policy, {})
    by_message = {c.message: c.delivery for c in claims}
    return {sender: by_message[mid] for (mid, _new), sender in zip(rows, "AB", strict=True)}


def _answer_to(mid: int, recipients: tuple[str, ...]) -> Processed:
    """The canton's negative eventReport answering ``7``, addressed to ``recipients``."""
    p = answer(mid, "7", "8")
    p.inbound = Inbound("canton", reference_message_id="7", recipients=recipients)
    return p


async def test_an_answer_settles_the_message_of_the_sender_it_is_addressed_to(
        store: Store, journal: list[Entry]) -> None:
    delivery = await _two_senders_sent(store)
    [(no, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([_answer_to(no, ("B",))])
    assert the(journal, "message.answer", message=no).detail["deliveries"] == [delivery["B"]]
    assert [e.delivery for e in journal if e.event == "delivery.rejected"] == [delivery["B"]]


async def test_an_answer_that_does_not_tell_which_sender_settles_none(
        store: Store, journal: list[Entry]) -> None:
    """Addressed to neither sender: it lands on nobody's message, and says why."""
    delivery = await _two_senders_sent(store)
    [(no, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([_answer_to(no, ("C",))])
    detail = the(journal, "message.answer", message=no).detail
    assert detail["deliveries"] == []
    assert detail["reason"].startswith("referenceMessageId 7 names 2 messages sent to canton")
    assert "taken as referring to none of them" in detail["reason"]
    for did in delivery.values():  # nothing settled: each delivery as it was
        assert events(journal, delivery=did)[-1] == "delivery.sent"


async def test_an_answer_settles_the_deliveries_of_the_answering_partner_only(
        store: Store, journal: list[Entry]) -> None:
    mid, deliveries = await queued(store, 1, ("canton", "archive"))
    claims = await store.claim_due("n1", 60, 10, ["canton", "archive"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent") for c in claims],
                                policy, {})
    by_partner = {c.partner: c.delivery for c in claims}
    rows = await store.add_raw([RawInput("archive", "a.xml", b"<a/>", {}),
                                RawInput("stranger", "s.xml", b"<s/>", {})])
    (from_archive, _), (from_stranger, _) = rows
    await store.record_processing([answer(from_archive, "id-1", "8"),
                                   answer(from_stranger, "id-1", "8")])
    rejected = the(journal, "delivery.rejected")
    assert (rejected.message, rejected.delivery) == (mid, by_partner["archive"])
    assert the(journal, "message.answer", message=from_archive).detail["deliveries"] == [
        by_partner["archive"]]
    assert the(journal, "message.answer", message=from_stranger).detail["deliveries"] == []
    # a positive answer from canton acknowledges canton's delivery
    [(yes, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([answer(yes, "id-1", "9")])
    assert the(journal, "delivery.acknowledged").delivery == by_partner["canton"]
    assert sorted(deliveries) == sorted(by_partner.values())


async def test_an_answer_faster_than_the_record_of_the_send_settles_the_delivery(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """The partner answered while the round that sent the message was still recording:
    its verdict stands, the send is only noted, and nothing is sent again."""
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    [(no, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([answer(no, "id-1", "8")])
    assert the(journal, "message.answer", message=no).detail["deliveries"] == [did]
    assert the(journal, "delivery.rejected").delivery == did
    await store.record_outcomes([Outcome(did, c.attempt_ref, "delivered")], policy, {})
    assert "delivery.delivered" not in events(journal, delivery=did)
    clock.advance(3600)  # the lease long gone: the attempt is not taken again
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    assert await store.replay_delivery(did) != did  # rejected, so it may be replayed


async def test_an_answer_processed_again_settles_its_deliveries_once(
        store: Store, journal: list[Entry]) -> None:
    """An operator sends the answer through processing again (``messages assign`` after
    review, ``messages replay``), and the partner sends the same report once more."""
    _mid, did, _ref = await sent(store, 1)
    [(yes, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([answer(yes, "id-1", "9")])
    await store.requeue_message(yes)
    await store.record_processing([answer(yes, "id-1", "9")])
    [(copy, _)] = await store.add_raw([RawInput("canton", "c2.xml", b"<c again/>", {})])
    await store.record_processing([answer(copy, "id-1", "9", message_id=f"answer-{yes}")])
    assert events(journal, delivery=did) == ["delivery.queued", "delivery.sending",
                                             "delivery.sent", "delivery.acknowledged"]
    assert [e.message for e in journal if e.event == "message.answer"] == [yes]
    assert [(e.message, e.detail) for e in journal if e.event == "message.answer_repeated"] == [
        (m, {"answers": "id-1", "partner": "canton", "applied_by": yes}) for m in (yes, copy)]
    # another partner's report with the same messageId is an answer of its own
    [(other, _)] = await store.add_raw([RawInput("archive", "a.xml", b"<a/>", {})])
    await store.record_processing([answer(other, "id-1", "8", message_id=f"answer-{yes}")])
    assert the(journal, "message.answer", message=other).detail == {
        "answers": "id-1", "partner": "archive", "positive": False, "deliveries": [],
        "reason": "referenceMessageId id-1 names no message sent to archive: this eventReport"
                  " settles no delivery"}


async def test_a_rejection_processed_again_leaves_the_replayed_delivery_be(
        store: Store, journal: list[Entry]) -> None:
    """The partner rejected the message, an operator replayed the delivery, and the new one
    is on its way: the old rejection, processed again, is not the partner's word on it."""
    _mid, did, _ref = await sent(store, 1)
    [(no, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([answer(no, "id-1", "8")])
    assert the(journal, "delivery.rejected").delivery == did
    new = await store.replay_delivery(did)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(new, c.attempt_ref, "sent")], policy, {})
    await store.requeue_message(no)
    await store.record_processing([answer(no, "id-1", "8")])
    assert events(journal, delivery=new) == ["delivery.sending", "delivery.sent"]
    assert events(journal, message=no).count("message.answer") == 1
    assert events(journal, message=no)[-1] == "message.answer_repeated"
    await store.record_receipts([Receipt(c.attempt_ref, ReceiptOutcome.DELIVERED, "100", "ok",
                                         datetime.now(UTC))], policy)
    assert events(journal, delivery=new)[-1] == "delivery.delivered"


#: Gives up 5 s after the first attempt: an unsure attempt is dead at its first outcome.
SHORT_LIVED = RetryPolicy(max_attempts=3, max_age=5.0, initial=10.0, maximum=100.0, jitter=0.0)


async def stuck(store: Store, n: int, state: str) -> int:
    """A message routed to ``canton`` whose delivery an attempt left in ``state``."""
    did, _ref = await stuck_at(store, n, state)
    return did


async def stuck_at(store: Store, n: int, state: str) -> tuple[int, str]:
    """:func:`stuck`: (the delivery, the attempt_ref of the attempt that left it there)."""
    if state == "dead":  # unsure, and max_age reached: "it may have reached the partner"
        _mid, [did] = await queued(store, n)
        [c] = await store.claim_due("n1", 60, 10, ["canton"])
        await store.record_outcomes([Outcome(did, c.attempt_ref, "unsure", "flush failed")],
                                    lambda _p: SHORT_LIVED, {})
        return did, c.attempt_ref
    # a sedex 401 receipt (a new attempt is scheduled in 10 s), or an odd receipt
    _mid, did, ref = await sent(store, n)
    outcome = (ReceiptOutcome.FAILED_TRANSIENT if state == "retry_wait"
               else ReceiptOutcome.NEEDS_REVIEW)
    await store.record_receipts([Receipt(ref, outcome, "401", "hub", datetime.now(UTC))], policy)
    return did, ref


@pytest.mark.parametrize("action", ["9", "8"])
@pytest.mark.parametrize(("state", "event"), [("retry_wait", "delivery.retry"),
                                              ("needs_review", "delivery.needs_review"),
                                              ("dead", "delivery.dead")])
async def test_an_answer_settles_a_delivery_an_attempt_left_waiting_or_failed(
        store: Store, journal: list[Entry], clock: FakeClock,
        state: str, event: str, action: str) -> None:
    """The partner's answer proves it has the message: a retry would send a second copy,
    a dead letter or review item would invite a replay (another copy)."""
    did = await stuck(store, 1, state)
    assert events(journal, delivery=did)[-1] == event
    [(reply, _)] = await store.add_raw([RawInput("canton", "c.xml", b"<c/>", {})])
    await store.record_processing([answer(reply, "id-1", action)])
    settled = "delivery.acknowledged" if action == "9" else "delivery.rejected"
    assert events(journal, delivery=did)[-1] == settled
    assert the(journal, "message.answer", message=reply).detail == {
        "answers": "id-1", "partner": "canton", "positive": action == "9", "deliveries": [did]}
    assert await store.next_due(["canton"]) is None
    clock.advance(3600)  # long after its retry time: nothing is sent again
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    if action == "9":  # the partner has it: no copy to replay
        with pytest.raises(StoreConflict):
            await store.replay_delivery(did)
    else:  # rejected, as any rejection: the operator may replay the corrected message
        assert await store.replay_delivery(did) != did


async def test_an_answer_leaves_a_delivery_never_sent_and_a_replayed_one_be(
        store: Store, journal: list[Entry]) -> None:
    """Queued: never sent, so the answer is not about it; replayed: its copy is the
    delivery now, and it is queued."""
    dead = await stuck(store, 2, "dead")
    _mid, [never] = await queued(store, 1)
    copy = await store.replay_delivery(dead)
    rows = await store.add_raw([RawInput("canton", "c1.xml", b"<c1/>", {}),
                                RawInput("canton", "c2.xml", b"<c2/>", {})])
    (yes, _), (no, _) = rows
    await store.record_processing([answer(yes, "id-1", "9"), answer(no, "id-2", "8")])
    assert the(journal, "message.answer", message=yes).detail["deliveries"] == []
    assert the(journal, "message.answer", message=no).detail["deliveries"] == []
    assert not {"delivery.acknowledged", "delivery.rejected"} & set(events(journal))
    claims = await store.claim_due("n1", 60, 10, ["canton"])
    assert sorted(c.delivery for c in claims) == sorted([never, copy])


async def test_each_partner_gets_its_own_payload_where_it_has_one(store: Store) -> None:
    [(mid, _)] = await store.add_raw([raw(1)])
    p = routed(mid, "id-1", ("canton", "archive"))
    p.payloads = {"archive": b"<c version='1.3'/>"}
    await store.record_processing([p])
    claims = {c.partner: c.payload for c in await store.claim_due("n1", 60, 10,
                                                                   ["canton", "archive"])}
    assert claims == {"canton": b"<c id='id-1'/>", "archive": b"<c version='1.3'/>"}


def person(vn: int, **parts: Any) -> PersonState:
    return PersonState(identification=PersonIdentificationLight(
        vn=vn, official_name="Muster", first_name="Anna"), **parts)


async def test_person_states_are_merged_and_found_by_their_keys(
        store: Store, journal: list[Entry]) -> None:
    rows = await store.add_raw([raw(1), raw(2)])
    (first, _), (second, _) = rows
    germany = Country(country_id=8207, country_id_iso2="DE", country_name_short="Deutschland")
    german = NationalityData(nationality_status="2", country_info=[CountryInfo(country=germany)])
    await store.record_processing([Processed(first, MessageState.NOT_RELEVANT, "seed",
                                             persons=(person(7561234567897,
                                                             nationality_data=german),))])
    married = MaritalData(marital_status="2")
    await store.record_processing([Processed(second, MessageState.NOT_RELEVANT, "event",
                                             persons=(person(7561234567897,
                                                             marital_data=married),))])
    found = await store.load_persons(["vn:7561234567897", "vn:7560000000002"])
    assert list(found) == ["vn:7561234567897"]
    state = found["vn:7561234567897"]
    assert (state.nationality_data, state.marital_data) == (german, married)
    assert [(e.event, e.message) for e in journal if e.event.startswith("person.")] == [
        ("person.created", first), ("person.updated", second)]


async def test_an_outcome_recorded_meanwhile_by_another_writer_is_kept_and_the_rest_recorded(
        store: Store, journal: list[Entry]) -> None:
    (first, _), (second, _) = await store.add_raw([raw(1), raw(2)])
    await store.record_processing([Processed(first, MessageState.NOT_RELEVANT, "theirs")])
    await store.record_processing([routed(first, "id-1"), routed(second, "id-2")])
    assert [(e.event, e.message) for e in journal if e.event != "message.received"] == [
        ("message.not_relevant", first), ("message.normalised", second),
        ("delivery.queued", second)]


async def test_a_change_worked_out_from_the_stored_state_is_stored_as_it_is(
        store: Store, journal: list[Entry]) -> None:
    (first, _), (second, _) = await store.add_raw([raw(1), raw(2)])
    married = MaritalData(marital_status="2")
    await store.record_processing([Processed(first, MessageState.NOT_RELEVANT, "seed",
                                             persons=(person(7561234567897),))])
    stored = (await store.stored_persons(["vn:7561234567897"]))["vn:7561234567897"]
    update = person(7561234567897, marital_data=married)
    change = PersonChange.of(update, stored)
    await store.record_processing([Processed(second, MessageState.NOT_RELEVANT, "event",
                                             persons=(change,))])
    now = await store.stored_persons(["vn:7561234567897"])
    assert now["vn:7561234567897"].text == change.merged
    assert now["vn:7561234567897"].pid == stored.pid
    assert the(journal, "person.updated", message=second).detail == {"person": stored.pid}


async def test_a_change_worked_out_from_a_state_since_changed_is_merged_into_the_new_one(
        store: Store) -> None:
    """Another writer changed the person after the change was worked out: nothing it
    wrote is lost, and the change still adds what it says."""
    rows = await store.add_raw([raw(1), raw(2), raw(3)])
    (first, _), (second, _), (third, _) = rows
    germany = Country(country_id=8207, country_id_iso2="DE", country_name_short="Deutschland")
    german = NationalityData(nationality_status="2", country_info=[CountryInfo(country=germany)])
    await store.record_processing([Processed(first, MessageState.NOT_RELEVANT, "seed",
                                             persons=(person(7561234567897),))])
    stale = (await store.stored_persons(["vn:7561234567897"]))["vn:7561234567897"]
    await store.record_processing([Processed(second, MessageState.NOT_RELEVANT, "other writer",
                                             persons=(person(7561234567897,
                                                             nationality_data=german),))])
    married = MaritalData(marital_status="2")
    change = PersonChange.of(person(7561234567897, marital_data=married), stale)
    await store.record_processing([Processed(third, MessageState.NOT_RELEVANT, "event",
                                             persons=(change,))])
    state = (await store.load_persons(["vn:7561234567897"]))["vn:7561234567897"]
    assert (state.nationality_data, state.marital_data) == (german, married)


async def test_a_change_for_a_person_created_meanwhile_is_merged_into_them(
        store: Store, journal: list[Entry]) -> None:
    (first, _), (second, _) = await store.add_raw([raw(1), raw(2)])
    germany = Country(country_id=8207, country_id_iso2="DE", country_name_short="Deutschland")
    german = NationalityData(nationality_status="2", country_info=[CountryInfo(country=germany)])
    married = MaritalData(marital_status="2")
    change = PersonChange.of(person(7561234567897, marital_data=married))  # unknown when worked out
    await store.record_processing([Processed(first, MessageState.NOT_RELEVANT, "other writer",
                                             persons=(person(7561234567897,
                                                             nationality_data=german),))])
    await store.record_processing([Processed(second, MessageState.NOT_RELEVANT, "event",
                                             persons=(change,))])
    state = (await store.load_persons(["vn:7561234567897"]))["vn:7561234567897"]
    assert (state.nationality_data, state.marital_data) == (german, married)
    assert [e.event for e in journal if e.event.startswith("person.")] == [
        "person.created", "person.updated"]


async def test_the_parts_of_a_split_input_wait_as_inputs_of_their_own(
        store: Store, journal: list[Entry]) -> None:
    [(export, _)] = await store.add_raw([raw(1)])
    n = Normalised("export", None, b"", None, parts=(raw(11), raw(12)),
                   rejected_parts=((raw(13), "row 3: no VN"),))
    await store.record_processing([Processed(export, MessageState.SPLIT, "2 rows",
                                             normalised=n)])
    parts = await store.parts_of([export])
    assert [(p.ref, p.data) for p in parts] == [("m11.xml", raw(11).data),
                                                 ("m12.xml", raw(12).data)]
    assert the(journal, "message.quarantined").detail == {"reason": "row 3: no VN",
                                                         "source": "registry"}
    await store.record_processing([Processed(parts[0].message, MessageState.NOT_RELEVANT, "x")])
    assert [p.message for p in await store.parts_of([export])] == [parts[1].message]


# -- operators: requeue, handle, correct ------------------------------------------


async def test_requeue_sends_a_quarantined_message_through_processing_again(
        store: Store, journal: list[Entry]) -> None:
    [(mid, _)] = await store.add_raw([raw(1)])
    await store.record_processing([Processed(mid, MessageState.QUARANTINED, "no route")])
    await store.requeue_message(mid)
    assert [p.message for p in await store.pending(10)] == [mid]
    assert events(journal, message=mid)[-1] == "message.replayed"
    # it holds its bytes again: the same input once more is its duplicate
    [(copy, new)] = await store.add_raw([raw(1)])
    assert not new and the(journal, "message.duplicate", message=copy).detail[
        "duplicate_of"] == mid


async def test_requeue_refuses_a_routed_message_and_names_a_missing_one(store: Store) -> None:
    mid, _ = await queued(store, 1)
    with pytest.raises(StoreConflict, match=f"message {mid} is routed"):
        await store.requeue_message(mid)
    with pytest.raises(StoreError, match="no message 4711"):
        await store.requeue_message(4711)


async def test_mark_handled_once_and_only_when_quarantined(
        store: Store, journal: list[Entry]) -> None:
    bad = await store.quarantine_raw(raw(1), "unreadable")
    await store.mark_handled(bad, "called the registry")
    assert the(journal, "message.handled", message=bad).detail == {
        "note": "called the registry", "correction": None}
    with pytest.raises(StoreConflict, match="handled already"):
        await store.mark_handled(bad, "again")
    [(fine, _)] = await store.add_raw([raw(2)])
    with pytest.raises(StoreConflict, match="not quarantined"):
        await store.mark_handled(fine, "nothing to handle")


async def test_a_correction_is_a_new_input_and_handles_the_quarantined_one(
        store: Store, journal: list[Entry]) -> None:
    bad = await store.quarantine_raw(raw(1), "unreadable")
    with pytest.raises(StoreError, match="same bytes"):
        await store.add_correction(bad, raw(1))
    fixed = await store.add_correction(bad, raw(2))
    assert [p.message for p in await store.pending(10)] == [fixed]
    assert the(journal, "message.correction", message=fixed).detail == {"of": bad}
    assert the(journal, "message.handled", message=bad).detail["correction"] == fixed
    with pytest.raises(StoreConflict, match="handled already"):
        await store.add_correction(bad, raw(3))


# -- delivery: claims, leases, outcomes -------------------------------------------


async def test_a_claim_is_leased_and_taken_over_only_when_the_lease_expired(
        store: Store, clock: FakeClock) -> None:
    mid, [did] = await queued(store, 1)
    [first] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (first.delivery, first.message, first.attempt, first.resumed) == (did, mid, 1, False)
    clock.advance(59)
    assert await store.claim_due("n2", 60, 10, ["canton"]) == []
    clock.advance(2)
    [again] = await store.claim_due("n2", 60, 10, ["canton"])
    assert (again.delivery, again.attempt_ref, again.attempt, again.resumed) == (
        did, first.attempt_ref, 1, True)


async def test_claims_keep_to_the_partners_and_the_limit_in_due_order(
        store: Store, clock: FakeClock) -> None:
    _a, [to_archive] = await queued(store, 1, ("archive",))
    ids = []
    for n in range(2, 5):
        clock.advance(1)
        ids += (await queued(store, n))[1]
    assert [c.delivery for c in await store.claim_due("n1", 60, 2, ["canton"])] == ids[:2]
    assert [c.delivery for c in await store.claim_due("n1", 60, 10, ["canton"])] == ids[2:]
    assert [c.delivery for c in await store.claim_due("n1", 60, 10, ["archive"])] == [to_archive]


async def test_release_leases_frees_only_this_nodes_claims(store: Store) -> None:
    await queued(store, 1)
    await queued(store, 2)
    [mine] = await store.claim_due("n1", 600, 1, ["canton"])
    [theirs] = await store.claim_due("n2", 600, 1, ["canton"])
    assert await store.release_leases("n1") == 1
    [again] = await store.claim_due("n3", 600, 10, ["canton"])
    assert (again.delivery, again.attempt_ref, again.resumed) == (mine.delivery, mine.attempt_ref,
                                                                  True)
    assert theirs.delivery != mine.delivery


async def test_settled_deliveries_are_never_taken_again_after_a_crash(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """A lease that ran out, or a start that releases leases, re-marks nothing settled."""
    _m1, [delivered] = await queued(store, 1)
    _m2, [sent_one] = await queued(store, 2)
    claims = {c.delivery: c for c in await store.claim_due("n1", 60, 10, ["canton"])}
    await store.record_outcomes([Outcome(delivered, claims[delivered].attempt_ref, "delivered"),
                                 Outcome(sent_one, claims[sent_one].attempt_ref, "sent")],
                                policy, {"canton": 3600.0})
    before = list(journal)
    clock.advance(600)  # every lease long expired
    assert await store.release_leases("n1") == 0
    assert await store.claim_due("n2", 60, 10, ["canton"]) == []
    assert journal == before


async def test_sent_then_overdue_once(store: Store, journal: list[Entry], clock: FakeClock) -> None:
    mid, did, ref = await sent(store, 1, timeout=300)
    assert the(journal, "delivery.sent", delivery=did).detail == {"partner": "canton", "ref": ref}
    clock.advance(299)
    assert await store.flag_overdue() == []
    clock.advance(2)
    assert await store.flag_overdue() == [(mid, did)]
    assert await store.flag_overdue() == []
    assert the(journal, "receipt.overdue", delivery=did).detail == {"partner": "canton",
                                                                    "ref": ref}


async def test_a_new_attempt_after_an_overdue_one_waits_for_its_own_receipt_timeout(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """The overdue flag belonged to the first attempt: the next one is overdue on its own."""
    mid, did, ref = await sent(store, 1, timeout=300)
    clock.advance(301)
    assert await store.flag_overdue() == [(mid, did)]
    await store.record_receipts(
        [Receipt(ref, ReceiptOutcome.FAILED_TRANSIENT, "401", "hub", datetime.now(UTC))], policy)
    clock.advance(10)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "sent")], policy, {"canton": 300})
    clock.advance(299)
    assert await store.flag_overdue() == []
    clock.advance(2)
    assert await store.flag_overdue() == [(mid, did)], "the second attempt's receipt is overdue"
    assert [e.detail for e in journal if e.event == "receipt.overdue"] == [
        {"partner": "canton", "ref": ref}, {"partner": "canton", "ref": c.attempt_ref}]


async def test_a_transient_failure_waits_then_is_a_new_attempt_until_none_is_left(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    _mid, [did] = await queued(store, 1)
    refs = []
    for attempt, delay in ((1, 10.0), (2, 20.0), (3, None)):
        [c] = await store.claim_due("n1", 60, 10, ["canton"])
        assert (c.attempt, c.resumed) == (attempt, False)
        refs.append(c.attempt_ref)
        await store.record_outcomes([Outcome(did, c.attempt_ref, "transient", "down")], policy, {})
        if delay is None:
            break
        assert await store.next_due(["canton"]) == clock.now + delay
        assert await store.claim_due("n1", 60, 10, ["canton"]) == []
        clock.advance(delay)
    assert len(set(refs)) == 3
    dead = the(journal, "delivery.dead", delivery=did)
    assert dead.detail is not None and dead.detail["why"] == "retries exhausted after 3 attempts"
    assert await store.next_due(["canton"]) is None
    assert events(journal, delivery=did).count("delivery.retry") == 2


async def test_failures_at_once_retry_spread_out_on_a_schedule_a_restart_keeps(
        backend: str, tmp_path: Path, clock: FakeClock) -> None:
    jittery = RetryPolicy(max_attempts=5, initial=10.0, maximum=100.0, jitter=5.0)
    store = OPENERS[backend](tmp_path, clock)
    store.start()
    entries: list[Entry] = []
    store.on_commit(entries.extend)
    for n in range(20):
        await queued(store, n)
    claims = await store.claim_due("n1", 60, 100, ["canton"])
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "down")
                                 for c in claims], lambda _p: jittery, {})
    due = [e.detail["next_attempt_at"] for e in entries
           if e.event == "delivery.retry" and e.detail is not None]
    assert len(due) == 20 and all(START + 10 <= at <= START + 15 for at in due)
    assert len(set(due)) == 20, "the same moment for all: a thundering herd"
    store.close()
    store = OPENERS[backend](tmp_path, clock)  # a restart
    store.start()
    try:
        assert await store.next_due(["canton"]) == min(due)
        clock.advance(min(due) - START - 0.001)
        assert await store.claim_due("n1", 60, 100, ["canton"]) == []
        clock.advance(max(due) - min(due) + 0.002)
        again = await store.claim_due("n1", 60, 100, ["canton"])
        assert sorted(c.delivery for c in again) == sorted(c.delivery for c in claims)
        assert all(c.attempt == 2 for c in again)
    finally:
        store.close()


async def test_replay_takes_only_the_failed_destination_and_can_be_repeated(
        store: Store, journal: list[Entry]) -> None:
    mid, [to_canton, to_archive] = await queued(store, 1, ("canton", "archive"))
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(to_canton, c.attempt_ref, "delivered")], policy, {})
    dead = to_archive
    replays = []
    for _ in range(3):  # it fails again, and again it is replayed
        [a] = await store.claim_due("n1", 60, 10, ["archive"])
        assert a.delivery == dead and a.message == mid
        await store.record_outcomes([Outcome(dead, a.attempt_ref, "permanent", "refused")],
                                    policy, {})
        new = await store.replay_delivery(dead)
        replays.append(the(journal, "delivery.replayed", delivery=dead).detail)
        assert await store.claim_due("n1", 60, 10, ["canton"]) == [], "canton got it already"
        dead = new
    assert [r is not None and r["partner"] for r in replays] == ["archive"] * 3
    assert len({r["new_delivery"] for r in replays if r is not None}) == 3
    assert events(journal, delivery=to_canton).count("delivery.replayed") == 0


async def test_a_replayed_delivery_carries_the_payload_in_its_partners_version(
        store: Store) -> None:
    [(mid, _)] = await store.add_raw([raw(1)])
    p = routed(mid, "id-1", ("archive",))
    p.payloads = {"archive": b"<c version='1.0'/>"}
    [did] = await store.record_processing([p])
    [c] = await store.claim_due("n1", 60, 10, ["archive"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "permanent", "refused")], policy, {})
    await store.replay_delivery(did)
    [again] = await store.claim_due("n1", 60, 10, ["archive"])
    assert again.payload == b"<c version='1.0'/>", "not the canonical 1.5 text"


async def test_a_permanent_failure_is_dead_at_once(store: Store, journal: list[Entry]) -> None:
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "permanent", "refused")], policy, {})
    dead = the(journal, "delivery.dead", delivery=did)
    assert dead.detail == {"partner": "canton", "attempt": 1, "error": "refused",
                           "why": "permanent error"}
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []


async def test_an_unsure_attempt_is_repeated_as_the_same_attempt_after_its_delay(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "unsure", "flush failed")], policy,
                                {})
    assert the(journal, "delivery.unsure", delivery=did).detail == {
        "partner": "canton", "attempt": 1, "ref": c.attempt_ref, "error": "flush failed",
        "resume_at": clock.now + 10}
    clock.advance(9)
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    clock.advance(2)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (again.attempt_ref, again.attempt, again.resumed) == (c.attempt_ref, 1, True)


async def test_a_restart_keeps_an_unsure_attempt_waiting_for_its_delay(
        store: Store, clock: FakeClock) -> None:
    """Nothing of an unsure attempt is in flight: a start that releases leases leaves it be."""
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "unsure", "flush failed")], policy,
                                {})
    assert await store.release_leases("n1") == 0
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    clock.advance(11)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (again.attempt_ref, again.attempt, again.resumed) == (c.attempt_ref, 1, True)


async def test_the_repeats_of_an_unsure_attempt_back_off_on_a_schedule_a_restart_keeps(
        backend: str, tmp_path: Path, clock: FakeClock) -> None:
    """A flush that keeps failing: each repeat of the one attempt waits twice as long as the
    one before, up to the policy's maximum (100 s), and a restart continues the schedule."""
    store = OPENERS[backend](tmp_path, clock)
    store.start()
    entries: list[Entry] = []
    store.on_commit(entries.extend)
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    waits = []
    try:
        for expected in (10, 20, 40, 80, 100, 100):
            await store.record_outcomes(
                [Outcome(did, c.attempt_ref, "unsure", "flush failed")], policy, {})
            resume_at = entries[-1].detail["resume_at"] if entries[-1].detail else None
            waits.append(resume_at - clock.now if resume_at is not None else None)
            if expected == 40:  # a restart while the repeat waits
                store.close()
                store = OPENERS[backend](tmp_path, clock)
                store.start()
                store.on_commit(entries.extend)
                assert await store.release_leases("n1") == 0
            clock.advance(expected - 0.001)
            assert await store.claim_due("n1", 60, 10, ["canton"]) == [], f"before {expected} s"
            clock.advance(0.002)
            [again] = await store.claim_due("n1", 60, 10, ["canton"])
            assert (again.attempt_ref, again.attempt, again.resumed) == (c.attempt_ref, 1, True)
        assert waits == [10, 20, 40, 80, 100, 100]
        assert events(entries, delivery=did).count("delivery.unsure") == 6
        assert "delivery.retry" not in events(entries, delivery=did)
    finally:
        store.close()


async def test_a_local_fault_keeps_the_attempt_uncounted_for_later(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "local", "outbox read-only")], policy,
                                {})
    assert the(journal, "delivery.paused", delivery=did).detail == {
        "partner": "canton", "ref": c.attempt_ref, "error": "outbox read-only"}
    clock.advance(1)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (again.attempt_ref, again.attempt, again.resumed) == (c.attempt_ref, 1, True)


async def test_an_outcome_for_a_delivery_no_longer_sending_changes_nothing(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "transient", "down")], policy, {})
    before = list(journal)
    due = await store.next_due(["canton"])
    # the same attempt reported again, failed for good: it is retry_wait now, not sending
    await store.record_outcomes([Outcome(did, c.attempt_ref, "permanent", "late report")], policy,
                                {})
    assert journal == before, "no state change, nothing journaled"
    assert await store.next_due(["canton"]) == due
    # the next attempt is sending: a late report of the first one does not settle it
    clock.advance(10)
    [retry] = await store.claim_due("n1", 60, 10, ["canton"])
    claimed = list(journal)
    await store.record_outcomes([Outcome(did, c.attempt_ref, "sent")], policy, {})
    assert journal == claimed
    await store.record_outcomes([Outcome(did, retry.attempt_ref, "sent")], policy, {})
    assert journal[len(claimed):] == [Entry("delivery.sent", mid, did, {
        "partner": "canton", "ref": retry.attempt_ref})]


# -- receipts -------------------------------------------------------------------------


async def test_receipts_settle_the_attempt_they_answer(store: Store, journal: list[Entry]) -> None:
    _mid, did, ref = await sent(store, 1)
    at = datetime.now(UTC)
    matched = await store.record_receipts([
        Receipt(ref, ReceiptOutcome.WAIT, "601", "waiting", at),
        Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", at),
        Receipt(ref, ReceiptOutcome.FAILED_PERMANENT, "303", "too late", at),
        Receipt("nobody", ReceiptOutcome.DELIVERED, "100", "ok", at)], policy)
    assert matched == [True, True, True, False]
    assert [e.event for e in journal][-4:] == ["receipt.wait", "delivery.delivered",
                                               "receipt.late", "receipt.unmatched"]
    assert the(journal, "delivery.delivered", delivery=did).detail is not None


async def test_a_failed_receipt_retries_with_a_new_attempt(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    _mid, did, ref = await sent(store, 1)
    await store.record_receipts(
        [Receipt(ref, ReceiptOutcome.FAILED_TRANSIENT, "401", "hub", datetime.now(UTC))], policy)
    assert events(journal, delivery=did)[-2:] == ["receipt.failed", "delivery.retry"]
    clock.advance(10)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (c.delivery, c.attempt, c.resumed) == (did, 2, False) and c.attempt_ref != ref


async def sent_to(store: Store, n: int, recipients: dict[str, str | None]
                  ) -> tuple[int, dict[str, tuple[int, str]]]:
    """A message sent to each partner of ``recipients``, its attempt addressed to the
    recipient the transport reported: (message, partner -> (delivery, attempt_ref))."""
    mid, _dids = await queued(store, n, list(recipients))
    claims = await store.claim_due("n1", 60, 10, list(recipients))
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "sent",
                                         recipient=recipients[c.partner]) for c in claims],
                                policy, {})
    return mid, {c.partner: (c.delivery, c.attempt_ref) for c in claims}


async def test_a_receipt_for_our_ref_but_another_recipient_settles_nothing(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    mid, sent_by = await sent_to(store, 1, {"canton": "T2-2-1"})
    did, ref = sent_by["canton"]
    at = datetime.now(UTC)
    foreign = [Receipt(ref, outcome, code, "for someone else", at, recipient="T2-9-9")
               for outcome, code in ((ReceiptOutcome.WAIT, "601"),
                                     (ReceiptOutcome.FAILED_PERMANENT, "303"),
                                     (ReceiptOutcome.NEEDS_REVIEW, "999"),
                                     (ReceiptOutcome.DELIVERED, "100"))]
    assert await store.record_receipts(foreign, policy) == [False] * 4
    assert events(journal, delivery=did)[-4:] == ["receipt.unmatched"] * 4
    unmatched = journal[-1]
    assert (unmatched.message, unmatched.delivery) == (mid, did)
    assert unmatched.detail is not None
    assert {k: unmatched.detail[k] for k in ("ref", "code", "partner", "recipient", "addressed")} \
        == {"ref": ref, "code": "100", "partner": "canton", "recipient": "T2-9-9",
            "addressed": "T2-2-1"}
    assert "T2-9-9" in unmatched.detail["reason"] and "T2-2-1" in unmatched.detail["reason"]
    # the delivery is still sent, awaiting its own receipt: it becomes overdue, which settles it
    clock.advance(3601)
    assert await store.flag_overdue() == [(mid, did)]
    assert await store.record_receipts(
        [Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", at, recipient="T2-2-1")],
        policy) == [True]
    assert events(journal, delivery=did)[-1] == "delivery.delivered"


async def test_receipts_of_partners_sharing_one_folder_settle_each_its_own_delivery(
        store: Store, journal: list[Entry]) -> None:
    """One sedex client, two recipients: each receipt goes by ref and recipient together."""
    _mid, sent_by = await sent_to(store, 1, {"canton": "T2-2-1", "canton-b": "T2-3-1"})
    (did_a, ref_a), (did_b, ref_b) = sent_by["canton"], sent_by["canton-b"]
    at = datetime.now(UTC)
    matched = await store.record_receipts([
        Receipt(ref_a, ReceiptOutcome.DELIVERED, "100", "a ok", at, recipient="T2-3-1"),
        Receipt(ref_b, ReceiptOutcome.FAILED_PERMANENT, "303", "b late", at, recipient="T2-2-1"),
        Receipt(ref_b, ReceiptOutcome.DELIVERED, "100", "b ok", at, recipient="T2-3-1"),
        Receipt(ref_a, ReceiptOutcome.FAILED_PERMANENT, "303", "a late", at, recipient="T2-2-1"),
    ], policy)
    assert matched == [False, False, True, True]
    assert events(journal, delivery=did_a)[-3:] == [
        "receipt.unmatched", "receipt.failed", "delivery.dead"]
    assert events(journal, delivery=did_b)[-2:] == ["receipt.unmatched", "delivery.delivered"]


def sedex(ref: str, code: int) -> Receipt:
    """A sedex receipt with ``code``, its outcome as the sedex transport reads it."""
    return Receipt(ref, sedex_status(str(code)).outcome, str(code), f"sedex {code}",
                   datetime.now(UTC))


async def repeated(store: Store, n: int, clock: FakeClock) -> tuple[int, str]:
    """A delivery whose attempt was unsure, then repeated as the same attempt and sent."""
    _mid, [did] = await queued(store, n)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "unsure", "flush failed")],
                                policy, {})
    clock.advance(11)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert again.resumed and again.attempt_ref == c.attempt_ref
    await store.record_outcomes([Outcome(did, c.attempt_ref, "sent")], policy, {})
    return did, c.attempt_ref


async def assert_settled(store: Store, did: int, clock: FakeClock) -> None:
    """The partner has it: nothing is sent again, and there is nothing to replay."""
    assert await store.next_due(["canton"]) is None
    clock.advance(3600)
    assert await store.claim_due("n1", 60, 10, ["canton"]) == []
    with pytest.raises(StoreConflict):
        await store.replay_delivery(did)


@pytest.mark.parametrize("first", [201, 100])
async def test_a_201_for_a_repeated_unsure_attempt_proves_its_first_copy_arrived(
        store: Store, journal: list[Entry], clock: FakeClock, first: int) -> None:
    """sedex knows the envelope id because our first copy reached it: the repeat's 201 is
    proof of delivery, whichever of it and the first copy's 100 comes first."""
    did, ref = await repeated(store, 1, clock)
    second = 100 if first == 201 else 201
    assert await store.record_receipts([sedex(ref, first)], policy) == [True]
    assert await store.record_receipts([sedex(ref, second)], policy) == [True]
    assert events(journal, delivery=did)[-2:] == ["delivery.delivered", "receipt.late"]
    assert "delivery.dead" not in events(journal, delivery=did)
    assert the(journal, "delivery.delivered", delivery=did).detail["code"] == str(first)
    await assert_settled(store, did, clock)


@pytest.mark.parametrize("batch", [False, True])
async def test_a_201_for_an_attempt_never_repeated_is_its_verdict_a_later_100_too(
        store: Store, journal: list[Entry], batch: bool) -> None:
    """A 201 for an attempt sent once is a final error (eCH-0090: every receipt ends its
    message); a 100 after it, in the same batch or a later one, does not overturn it."""
    _mid, did, ref = await sent(store, 1)
    if batch:
        await store.record_receipts([sedex(ref, 201), sedex(ref, 100)], policy)
    else:
        await store.record_receipts([sedex(ref, 201)], policy)
        await store.record_receipts([sedex(ref, 100)], policy)
    assert events(journal, delivery=did)[-3:] == [
        "receipt.failed", "delivery.dead", "receipt.late"]
    assert await store.replay_delivery(did) != did, "a dead letter, the operator's to replay"


async def test_a_100_for_an_unsure_attempt_left_dead_at_max_age_settles_it_delivered(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """Dead at max_age after an unsure attempt: "it may have reached the partner", and no
    receipt said otherwise; the 100 for that attempt proves it did."""
    did, ref = await stuck_at(store, 1, "dead")
    assert await store.record_receipts([sedex(ref, 100)], policy) == [True]
    delivered = the(journal, "delivery.delivered", delivery=did).detail
    assert delivered is not None and delivered["was"] == "dead"
    await assert_settled(store, did, clock)


@pytest.mark.parametrize("state", ["needs_review", "retry_wait"])
async def test_a_100_after_a_receipts_verdict_on_the_attempt_is_late(
        store: Store, journal: list[Entry], state: str) -> None:
    """A receipt that sent the attempt to review or to a retry was its verdict; a 100 for
    the same attempt after it changes nothing (eCH-0090: every receipt ends its message)."""
    did, ref = await stuck_at(store, 1, state)
    assert await store.record_receipts([sedex(ref, 100)], policy) == [True]
    assert events(journal, delivery=did)[-1] == "receipt.late"
    assert "delivery.delivered" not in events(journal, delivery=did)


async def test_a_proof_of_delivery_for_an_earlier_attempt_or_a_replayed_delivery_is_late(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """Only the delivery's current attempt settles it; a replayed delivery's copy is the
    delivery now."""
    _mid, did, first = await sent(store, 1)
    await store.record_receipts([sedex(first, 401)], policy)
    clock.advance(10)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "permanent", "refused")], policy, {})
    assert await store.record_receipts([sedex(first, 100)], policy) == [True]
    assert events(journal, delivery=did)[-1] == "receipt.late"
    assert "delivery.delivered" not in events(journal, delivery=did)
    copy = await store.replay_delivery(did)  # still dead: replayable
    assert await store.record_receipts([sedex(c.attempt_ref, 100)], policy) == [True]
    assert events(journal, delivery=did)[-1] == "receipt.late"
    assert "delivery.delivered" not in events(journal)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert again.delivery == copy


async def test_an_attempt_or_a_receipt_without_a_recipient_is_matched_by_its_ref(
        store: Store, journal: list[Entry]) -> None:
    """A transport that does not say whom it addressed, or a receipt that names nobody."""
    _mid, sent_by = await sent_to(store, 1, {"canton": None, "canton-b": "T2-3-1"})
    (did_a, ref_a), (did_b, ref_b) = sent_by["canton"], sent_by["canton-b"]
    at = datetime.now(UTC)
    assert await store.record_receipts([
        Receipt(ref_a, ReceiptOutcome.DELIVERED, "100", "ok", at, recipient="T2-9-9"),
        Receipt(ref_b, ReceiptOutcome.DELIVERED, "100", "ok", at)], policy) == [True, True]
    assert events(journal, delivery=did_a)[-1] == "delivery.delivered"
    assert events(journal, delivery=did_b)[-1] == "delivery.delivered"


async def test_the_recipient_an_attempt_was_addressed_to_is_kept_by_later_outcomes(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """An unsure send says nobody; the repeat that gets through names the recipient."""
    _mid, [did] = await queued(store, 1)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "unsure", "flush failed")],
                                policy, {})
    clock.advance(3600)
    [again] = await store.claim_due("n1", 60, 10, ["canton"])
    assert again.resumed and again.attempt_ref == c.attempt_ref
    await store.record_outcomes([Outcome(did, c.attempt_ref, "sent", recipient="T2-2-1")],
                                policy, {})
    # a second writer's outcome for the same attempt, which names nobody
    await store.record_outcomes([Outcome(did, c.attempt_ref, "transient", "outbox gone")],
                                policy, {})
    at = datetime.now(UTC)
    assert await store.record_receipts([
        Receipt(c.attempt_ref, ReceiptOutcome.DELIVERED, "100", "ok", at, recipient="T2-9-9"),
        Receipt(c.attempt_ref, ReceiptOutcome.DELIVERED, "100", "ok", at, recipient="T2-2-1"),
    ], policy) == [False, True]
    assert events(journal, delivery=did)[-2:] == ["receipt.unmatched", "delivery.delivered"]


# -- retention -------------------------------------------------------------------------

DAY = 86400.0


async def delivered(store: Store, n: int) -> int:
    """A message routed to ``canton`` and delivered there; its id."""
    mid, [did] = await queued(store, n)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "delivered")], policy, {})
    return mid


async def test_prune_takes_the_bodies_of_settled_messages_only(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    done = await delivered(store, 1)
    [(irrelevant, _)] = await store.add_raw([raw(2)])
    await store.record_processing([Processed(irrelevant, MessageState.NOT_RELEVANT, "swiss")])
    handled = await store.quarantine_raw(raw(3), "unreadable")
    await store.mark_handled(handled, "called the registry")
    open_quarantine = await store.quarantine_raw(raw(4), "unreadable")
    waiting, _dids = await queued(store, 5, ("archive",))    # never sent
    on_its_way, _did, _ref = await sent(store, 6)          # no receipt yet
    dead, [dead_delivery] = await queued(store, 7)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(dead_delivery, c.attempt_ref, "permanent", "refused")],
                                policy, {})
    [(unprocessed, _)] = await store.add_raw([raw(8)])
    clock.advance(91 * DAY)
    recent = await delivered(store, 9)                      # settled, but only just
    assert await store.prune(clock.now - 90 * DAY, 100) == 3
    assert the(journal, "store.pruned").detail == {
        "messages": 3, "first": done, "last": handled, "unchanged_since": clock.now - 90 * DAY}
    for mid in (done, irrelevant, handled):
        with pytest.raises(StoreError, match=f"message {mid} was pruned at .*cannot be read"):
            await store.load_input(mid)
    for mid in (open_quarantine, waiting, on_its_way, dead, unprocessed, recent):
        assert (await store.load_input(mid)).data, f"message {mid} keeps its input"
    assert await store.prune(clock.now - 90 * DAY, 100) == 0, "nothing twice"
    assert events(journal).count("store.pruned") == 1


async def test_prune_goes_oldest_first_a_batch_at_a_time(store: Store, clock: FakeClock) -> None:
    first = await delivered(store, 1)
    clock.advance(1)
    second = await delivered(store, 2)
    third = await delivered(store, 3)
    clock.advance(DAY)
    assert await store.prune(clock.now - DAY / 2, 2) == 2
    await store.load_input(third)
    with pytest.raises(StoreError, match="pruned"):
        await store.load_input(second)
    with pytest.raises(StoreError, match="pruned"):
        await store.load_input(first)
    assert await store.prune(clock.now - DAY / 2, 2) == 1


async def test_a_message_that_changed_lately_is_kept(store: Store, clock: FakeClock) -> None:
    mid, _did, ref = await sent(store, 1)
    clock.advance(30 * DAY)  # the receipt comes late: the message changed just now
    receipt = Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", datetime.now(UTC), b"<r/>")
    assert await store.record_receipts([receipt], policy) == [True]
    assert await store.prune(clock.now - DAY, 10) == 0
    clock.advance(2 * DAY)
    assert await store.prune(clock.now - DAY, 10) == 1
    with pytest.raises(StoreError, match=f"message {mid} was pruned"):
        await store.load_input(mid)


async def told(store: Store, n: int, vn: int, event: str | None, *,
               routed_to: Sequence[str] = ()) -> int:
    """A registry's message with personEvent ``event`` (``None``: a base delivery) about the
    person of ``vn``, not relevant or routed to ``routed_to`` (delivered, unless the
    partner is ``archive``: never sent); its id."""
    [(mid, _new)] = await store.add_raw([raw(n)])
    facts = {} if event is None else {"person_event": event}
    message = Normalised("personEventMessage", f"id-{n}", b"<c/>", None, facts=facts,
                    subject=(f"vn:{vn}",))
    p = Processed(mid, MessageState.NOT_RELEVANT, "test", normalised=message,
                  persons=(person(vn),))
    if routed_to:
        p.state, p.reason, p.routes = MessageState.ROUTED, None, [Route(r, "t") for r in routed_to]
    dids = await store.record_processing([p])
    for c in await store.claim_due("n1", 60, 10, ["canton"]):
        await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "delivered")], policy, {})
    assert len(dids) == len(routed_to)
    return mid


async def test_persons_who_left_the_register_go_after_keep_and_residents_stay(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """Departed: moveOut, death, deletedinRegister; a later event but a correction means
    they are back; only once every message about them is pruned."""
    left, died, deleted, resident, back, corrected, open_case, recent = (
        7560000000019, 7560000000026, 7560000000033, 7560000000040, 7560000000057,
        7560000000064, 7560000000071, 7560000000088)
    for n, vn in enumerate((left, died, deleted, resident, back, corrected, open_case)):
        await told(store, n, vn, None)  # a base delivery: all residents
    await told(store, 10, left, "moveOut", routed_to=("canton",))
    await told(store, 11, died, "death")
    await told(store, 12, deleted, "deletedinRegister")
    await told(store, 13, resident, "marriage")
    await told(store, 14, back, "moveOut")
    await told(store, 15, back, "moveIn")
    await told(store, 16, corrected, "moveOut")
    await told(store, 17, corrected, "correctReporting")
    await told(store, 18, open_case, "moveOut", routed_to=("archive",))  # never delivered
    clock.advance(91 * DAY)
    await told(store, 19, recent, "death")
    before = clock.now - 90 * DAY
    assert await store.prune_persons(before, 100) == 0, "their messages still have bodies"
    assert await store.prune(before, 100) == 15, "all but the one never delivered"
    assert await store.prune_persons(before, 100) == 4
    entry = the(journal, "store.persons_pruned")
    assert entry.detail["persons"] == 4 and entry.detail["departed_before"] == before
    assert len(entry.detail["ids"]) == 4
    gone = [f"vn:{vn}" for vn in (left, died, deleted, corrected)]
    assert await store.load_persons(gone) == {}, "the correction kept the moveOut's mark"
    kept = [f"vn:{vn}" for vn in (resident, back, open_case, recent)]
    assert sorted(await store.load_persons(kept)) == sorted(kept)
    assert await store.prune_persons(before, 100) == 0, "nothing twice"
    assert await store.prune_persons(clock.now + 1, 100) == 0, "the recent death's message is whole"
    # a person deleted is a stranger to the next event: it starts a state of its own
    await told(store, 20, left, "moveIn")
    assert list(await store.load_persons([f"vn:{left}"])) == [f"vn:{left}"]


async def test_unmatched_receipts_lose_their_bytes_after_keep_a_batch_at_a_time(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """A receipt that matched no delivery (another application's, or our ref for another
    recipient) belongs to no message: its bytes go once it was recorded ``keep`` ago. A
    recent one keeps them, and so does a matched one, whose message is still on its way."""
    _mid, sent_by = await sent_to(store, 1, {"canton": "T2-2-1"})
    [(_did, ref)] = sent_by.values()
    at = datetime.now(UTC)
    assert await store.record_receipts([
        Receipt("other-app-1", ReceiptOutcome.DELIVERED, "100", "ok", at, b"<r n='1'/>"),
        Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", at, b"<r n='2'/>",
                recipient="T2-9-9"),
        Receipt(ref, ReceiptOutcome.WAIT, "601", "waiting", at, b"<r n='3'/>",
                recipient="T2-2-1")], policy) == [False, False, True]
    clock.advance(2 * DAY)
    assert await store.record_receipts(
        [Receipt("other-app-2", ReceiptOutcome.DELIVERED, "100", "ok", at, b"<r n='4'/>")],
        policy) == [False]
    before = clock.now - DAY
    assert [await store.prune_receipts(before, 1) for _ in range(3)] == [1, 1, 0]
    assert [e.detail for e in journal if e.event == "store.receipts_pruned"] == [
        {"receipts": 1, "recorded_before": before}] * 2
    clock.advance(2 * DAY)
    assert await store.prune_receipts(clock.now - DAY, 10) == 1, "the recent one, old now"
    assert await store.prune_receipts(clock.now + 1, 10) == 0, "the matched one: its message's"
    assert events(journal).count("store.receipts_pruned") == 3


async def test_a_departed_person_in_a_case_leaves_the_case_without_them(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    vn = 7560000000019

    async def from_canton(n: int) -> int:
        [(mid, _new)] = await store.add_raw([raw(n, source="canton")])
        request = Normalised("personEventMessage", f"from-canton-{n}", b"<c/>", None,
                             subject=(f"vn:{vn}",))
        await store.record_processing([Processed(
            mid, MessageState.ROUTED, normalised=request, routes=[Route("registry", "back")],
            inbound=Inbound("canton", business_process_id="bp-1"))])
        for c in await store.claim_due("n1", 60, 10, ["registry"]):
            await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "delivered")],
                                        policy, {})
        return mid

    await told(store, 1, vn, "moveOut")
    first = await from_canton(2)
    case = the(journal, "message.case", message=first).detail
    assert case["person"] is not None
    clock.advance(2 * DAY)
    assert await store.prune(clock.now - DAY, 10) == 2
    assert await store.prune_persons(clock.now - DAY, 10) == 1
    assert await store.load_persons([f"vn:{vn}"]) == {}
    # the case stays: the canton's next message of the business process continues it
    later = await from_canton(3)
    again = the(journal, "message.case", message=later).detail
    assert (again["case"], again["by"]) == (case["case"], "businessProcessId")
    assert "person" not in again


async def test_an_export_is_pruned_after_all_its_rows(store: Store, clock: FakeClock) -> None:
    [(export, _)] = await store.add_raw([raw(1)])
    n = Normalised("export", None, b"", None, parts=(raw(11), raw(12)))
    await store.record_processing([Processed(export, MessageState.SPLIT, "2 rows",
                                             normalised=n)])
    rows = [p.message for p in await store.parts_of([export])]
    await store.record_processing([Processed(rows[0], MessageState.NOT_RELEVANT, "swiss")])
    clock.advance(DAY)
    assert await store.prune(clock.now - 1, 10) == 1, "the one row settled; the file waits"
    await store.load_input(export)
    await store.record_processing([Processed(rows[1], MessageState.NOT_RELEVANT, "swiss")])
    clock.advance(DAY)
    assert await store.prune(clock.now - 1, 10) == 2, "the last row, then its file"
    with pytest.raises(StoreError, match=f"message {export} was pruned"):
        await store.load_input(export)


async def test_a_pruned_message_cannot_be_replayed_or_its_delivery_sent_again(
        store: Store, clock: FakeClock) -> None:
    quarantined = await store.quarantine_raw(raw(1), "unreadable")
    await store.mark_handled(quarantined, "called the registry")
    mid, [did] = await queued(store, 2)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "delivered")], policy, {})
    clock.advance(DAY)
    assert await store.prune(clock.now - 1, 10) == 2
    with pytest.raises(StoreError, match=f"message {quarantined} was pruned.*processed again"):
        await store.requeue_message(quarantined)
    with pytest.raises(StoreError, match=f"message {mid} was pruned.*sent again"):
        await store.replay_delivery(did)


# -- replay, note, clock ---------------------------------------------------------------


async def test_replay_replaces_a_dead_delivery_and_only_such(
        store: Store, journal: list[Entry]) -> None:
    mid, [did] = await queued(store, 1)
    with pytest.raises(StoreConflict, match=f"delivery {did} is queued"):
        await store.replay_delivery(did)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    await store.record_outcomes([Outcome(did, c.attempt_ref, "permanent", "refused")], policy, {})
    new = await store.replay_delivery(did)
    assert new != did
    assert the(journal, "delivery.replayed", delivery=did).detail == {"partner": "canton",
                                                                      "new_delivery": new}
    [fresh] = await store.claim_due("n1", 60, 10, ["canton"])
    assert (fresh.delivery, fresh.message, fresh.attempt) == (new, mid, 1)
    with pytest.raises(StoreConflict, match=f"delivery {did} is replayed"):
        await store.replay_delivery(did)
    with pytest.raises(StoreError, match="no delivery 4711"):
        await store.replay_delivery(4711)


async def test_a_refused_operation_changes_nothing(store: Store, journal: list[Entry]) -> None:
    _mid, [did] = await queued(store, 1)
    before = list(journal)
    with pytest.raises(StoreConflict):
        await store.replay_delivery(did)
    assert journal == before
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    assert c.delivery == did


async def test_note_journals_an_event_about_no_message(store: Store, journal: list[Entry]) -> None:
    await store.note("partner.paused", {"partner": "canton", "error": "outbox full"})
    assert journal == [Entry("partner.paused", None, None,
                             {"partner": "canton", "error": "outbox full"})]


async def test_a_pause_does_not_count_toward_max_age(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    # two days of trying; the outbox was gone for three (a weekend), from an hour in
    two_days = RetryPolicy(max_attempts=100, max_age=2 * 86400, initial=10.0, maximum=10.0,
                           jitter=0.0)
    _mid, [paused] = await queued(store, 1)
    _mid, [other] = await queued(store, 2, ("archive",))
    claims = await store.claim_due("n1", 60, 10, ["canton", "archive"])
    clock.advance(3600)
    since = await store.pause_partner("n1", "canton", "outbox missing")
    assert since == clock.now
    clock.advance(3 * 86400)
    assert await store.resume_partner("n1", "canton", since, "outbox missing") == 1
    resumed = the(journal, "partner.resumed")
    assert resumed.detail == {"partner": "canton", "node": "n1", "paused_for": 3 * 86400.0,
                              "error": "outbox missing", "deliveries": 1}
    # the next failure waits for another try: the delivery has tried for an hour, not 3 days
    await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "transient", "down")
                                 for c in claims], lambda _p: two_days, {})
    assert the(journal, "delivery.retry", delivery=paused).detail is not None
    # another partner's delivery was not paused: its age counts in full
    assert the(journal, "delivery.dead", delivery=other).detail["why"].startswith(  # type: ignore[index]
        "maximum age of 172800s reached")
    again = await store.pause_partner("n1", "canton", "outbox missing")
    assert await store.resume_partner("n1", "canton", again, "outbox missing") == 1


async def test_a_pause_is_kept_until_resumed_and_a_second_pause_changes_nothing(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    assert await store.paused_partners() == {}
    since = await store.pause_partner("n1", "canton", "outbox full")
    assert since == START
    assert journal == [Entry("partner.paused", None, None,
                             {"partner": "canton", "node": "n1", "error": "outbox full"})]
    clock.advance(60)
    # another round of the node meets the fault: the pause stays as it began, journaled once
    assert await store.pause_partner("n1", "canton", "outbox missing") == since
    assert await store.pause_partner("n1", "archive", "outbox read-only") == START + 60
    assert await store.paused_partners() == {("n1", "canton"): (since, "outbox full"),
                                             ("n1", "archive"): (START + 60, "outbox read-only")}
    assert events(journal) == ["partner.paused", "partner.paused"]
    clock.advance(60)
    assert await store.resume_partner("n1", "canton", since, "outbox full") == 0
    assert the(journal, "partner.resumed").detail == {
        "partner": "canton", "node": "n1", "paused_for": 120.0, "error": "outbox full",
        "deliveries": 0}
    assert await store.paused_partners() == {("n1", "archive"): (START + 60, "outbox read-only")}
    # a pause once resumed is not resumed again, nor one never begun: nothing changes
    before = list(journal)
    with pytest.raises(StoreConflict, match="the pause of partner canton on node n1"):
        await store.resume_partner("n1", "canton", since, "outbox full")
    with pytest.raises(StoreConflict, match="the pause of partner nobody on node n1"):
        await store.resume_partner("n1", "nobody", since, "outbox full")
    with pytest.raises(StoreConflict, match="the pause of partner archive on node n1"):
        await store.resume_partner("n1", "archive", since, "outbox read-only")  # not this pause
    with pytest.raises(StoreConflict, match="the pause of partner archive on node n2"):
        await store.resume_partner("n2", "archive", START + 60, "outbox read-only")  # not its node
    assert journal == before
    assert await store.paused_partners() == {("n1", "archive"): (START + 60, "outbox read-only")}
    # a new fault is a new pause
    assert await store.pause_partner("n1", "canton", "disk full") == START + 120
    assert events(journal)[-1] == "partner.paused"


async def test_each_node_pauses_a_partner_for_itself(
        store: Store, journal: list[Entry], clock: FakeClock) -> None:
    """A fault is one machine's: two nodes' pauses of one partner are two, each begun and
    ended by its node; either's resumption moves the partner's deliveries, whoever claimed
    them."""
    _mid, [did] = await queued(store, 1)
    await store.claim_due("n2", 30, 10, ["canton"])  # (its lease over when n1 claims it)
    clock.advance(10)
    on_a = await store.pause_partner("vm-a", "canton", "outbox missing")
    clock.advance(10)
    on_b = await store.pause_partner("vm-b", "canton", "disk full")
    assert (on_a, on_b) == (START + 10, START + 20)
    assert await store.paused_partners() == {("vm-a", "canton"): (on_a, "outbox missing"),
                                             ("vm-b", "canton"): (on_b, "disk full")}
    assert [e.detail for e in journal if e.event == "partner.paused"] == [
        {"partner": "canton", "node": "vm-a", "error": "outbox missing"},
        {"partner": "canton", "node": "vm-b", "error": "disk full"}]
    clock.advance(30)
    # node A's probe gets through: its pause ends, node B's stays as it was
    assert await store.resume_partner("vm-a", "canton", on_a, "outbox missing") == 1
    assert the(journal, "partner.resumed").detail == {
        "partner": "canton", "node": "vm-a", "paused_for": 40.0, "error": "outbox missing",
        "deliveries": 1}
    assert await store.paused_partners() == {("vm-b", "canton"): (on_b, "disk full")}
    # node A's pause of the partner once over, node A is paused anew by its next fault
    assert await store.pause_partner("vm-a", "canton", "outbox read-only") == START + 50
    assert await store.paused_partners() == {("vm-a", "canton"): (START + 50, "outbox read-only"),
                                             ("vm-b", "canton"): (on_b, "disk full")}
    clock.advance(10)
    assert await store.resume_partner("vm-b", "canton", on_b, "disk full") == 1
    assert await store.paused_partners() == {("vm-a", "canton"): (START + 50, "outbox read-only")}
    # each resumption moved the delivery's first attempt past its pause: 1 s old, not 61
    # (21 with node B's alone)
    [c] = await store.claim_due("n1", 60, 10, ["canton"])
    clock.advance(1)
    five_s = RetryPolicy(max_attempts=100, max_age=5, initial=1.0, jitter=0.0)
    await store.record_outcomes([Outcome(did, c.attempt_ref, "transient", "down")],
                                lambda _p: five_s, {})
    assert events(journal)[-1] == "delivery.retry"


async def test_a_pause_outlasts_the_store_and_two_writers_of_a_node_share_it(
        backend: str, tmp_path: Path, clock: FakeClock) -> None:
    """A daemon restarted while paused finds the pause; two writers of one node meeting one
    fault share it, and its resumption moves their deliveries once."""
    first = OPENERS[backend](tmp_path, clock)
    first.start()
    _mid, [did] = await queued(first, 1)
    await first.claim_due("n1", 60, 10, ["canton"])
    clock.advance(10)
    since = await first.pause_partner("n1", "canton", "outbox missing")
    first.close()
    clock.advance(3600)  # (stopped for an hour)
    a, b = OPENERS[backend](tmp_path, clock), OPENERS[backend](tmp_path, clock)
    a.start()
    b.start()
    try:
        seen: list[Entry] = []
        a.on_commit(seen.extend)
        b.on_commit(seen.extend)
        assert await a.paused_partners() == {("n1", "canton"): (since, "outbox missing")}
        assert await b.pause_partner("n1", "canton", "outbox full") == since
        clock.advance(50)
        assert await a.resume_partner("n1", "canton", since, "outbox missing") == 1
        with pytest.raises(StoreConflict):
            await b.resume_partner("n1", "canton", since, "outbox missing")
        assert events(seen) == ["partner.resumed"]
        assert seen[0].detail == {"partner": "canton", "node": "n1", "paused_for": 3650.0,
                                  "error": "outbox missing", "deliveries": 1}
        assert await b.paused_partners() == {}
        # the delivery has tried for 10 s, not for an hour: retried, not dead at max_age
        [c] = await a.claim_due("n1", 60, 10, ["canton"])
        an_hour = RetryPolicy(max_attempts=100, max_age=3600, initial=1.0, jitter=0.0)
        await a.record_outcomes([Outcome(did, c.attempt_ref, "transient", "down")],
                                lambda _p: an_hour, {})
        assert events(seen)[-1] == "delivery.retry"
    finally:
        a.close()
        b.close()


async def test_next_due_is_none_without_waiting_deliveries(store: Store, clock: FakeClock) -> None:
    assert await store.next_due(["canton"]) is None
    await queued(store, 1)
    assert await store.next_due(["canton"]) == clock.now
    assert await store.next_due(["archive"]) is None


def test_the_store_tells_the_time_of_its_clock(store: Store, clock: FakeClock) -> None:
    assert store.now() == START
    clock.advance(5)
    assert store.now() == START + 5


# -- several writers ---------------------------------------------------------------------


def test_two_writers_storing_the_same_inputs_at_once_store_one_original_each(
        backend: str, tmp_path: Path, clock: FakeClock) -> None:
    """Two stores on one database, each in its own thread, store the same 30 inputs."""
    inputs = [raw(n) for n in range(30)]
    results: dict[str, list[tuple[int, bool]]] = {}
    go = threading.Barrier(2)

    async def write(store: Store, name: str) -> None:
        results[name] = [row for raw_input in inputs for row in await store.add_raw([raw_input])]

    def writer(name: str) -> None:
        store = OPENERS[backend](tmp_path, clock)
        store.start()
        try:
            go.wait(timeout=30)
            asyncio.run(write(store, name))
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(results) == {"a", "b"}
    for n in range(30):
        pair = [results["a"][n], results["b"][n]]
        assert sorted(new for _id, new in pair) == [False, True], f"input {n}: {pair}"
    originals = sorted(mid for rows in results.values() for mid, new in rows if new)
    store = OPENERS[backend](tmp_path, clock)
    store.start()
    try:
        assert [p.message for p in asyncio.run(store.pending(100))] == originals
    finally:
        store.close()


def test_a_node_is_held_by_one_store_until_it_closes(backend: str, tmp_path: Path,
                                                     clock: FakeClock) -> None:
    """A second process of one node would expire the first's leases at its start."""
    first, second, other = (OPENERS[backend](tmp_path, clock) for _ in range(3))
    first.hold_node("gw-1")
    with pytest.raises(NodeRunning, match=f"node 'gw-1' already runs on .* \\(process {os.getpid()}\\)"):
        second.hold_node("gw-1")
    other.hold_node("gw-2")  # another node beside it
    first.start()
    first.close()
    second.hold_node("gw-1")
    second.start()
    second.close()
    other.close()
