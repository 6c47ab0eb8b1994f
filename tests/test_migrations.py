"""Schema migrations: a database made by an older release is brought up to date, data kept."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

import gateway.store.migrate as migrate_module
from gateway.contracts import Normalised, RawInput, Route
from gateway.dispatcher import Dispatcher, ReceiptRecorder
from gateway.errors import StoreError
from gateway.intake_pause import IntakePause
from gateway.plugins import get_plugin_manager
from gateway.store import Claim, MessageState, Processed, SQLiteStore, StoreReader
from gateway.store.migrate import available, migrate
from tests.stubs import StubIntake
from tests.test_sedex_transport import make_transport, write_receipt


def schema_up_to(path: Path, count: int) -> sqlite3.Connection:
    """A database as the first ``count`` migrations left it; a connection to it (autocommit)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for number, sql in available()[:count]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (number,))
    return conn


def first_schema_db(path: Path) -> None:
    """A database as release 0001 left it, with one received and one converted message."""
    conn = sqlite3.connect(path, isolation_level=None)
    number, sql = available()[0]
    conn.executescript(sql)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (number,))
    conn.executemany(
        "INSERT INTO messages (id, source, ref, raw, digest, received_at, state, canonical,"
        " updated_at) VALUES (?, 'registry', ?, ?, 'd', 0, ?, ?, 0)",
        [(1, "a.xml", b"<raw-a/>", "received", None),
         (2, "b.xml", b"<raw-b/>", "routed", b"<canonical-b/>")])
    conn.close()


def test_every_migration_applies_once_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    assert migrate(conn) == [n for n, _sql in available()]
    assert migrate(conn) == []


def test_migrations_are_numbered_one_after_another() -> None:
    # two helpers' migrations with one number: the second would be skipped where the first ran
    numbers = [n for n, _sql in available()]
    assert numbers == list(range(1, numbers[-1] + 1))


def test_a_reader_refuses_a_database_that_lacks_migrations(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    first_schema_db(db)
    later = [n for n, _sql in available()][1:]
    with pytest.raises(StoreError, match=re.escape(f"lacks schema migrations {later}: start the gateway")):
        StoreReader(db)


def test_payloads_move_out_of_messages_with_their_bytes(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    first_schema_db(db)
    store = SQLiteStore(db)
    store.start()  # applies the later migrations
    store.close()
    conn = sqlite3.connect(db)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    assert not {"raw", "canonical"} & columns
    assert conn.execute("SELECT message, raw, canonical FROM payloads ORDER BY message").fetchall() == [
        (1, b"<raw-a/>", None), (2, b"<raw-b/>", b"<canonical-b/>")]
    conn.close()
    reader = StoreReader(db)
    try:
        assert reader.raw(2) == b"<raw-b/>"
        message = reader.get_message(1)
        assert message is not None and message["raw_bytes"] == len(b"<raw-a/>")
    finally:
        reader.close()


def test_originals_and_routed_message_ids_start_from_what_was_stored(tmp_path: Path) -> None:
    """0007: the keys that decide duplicates hold what the lookups before them found."""
    db = tmp_path / "g.db"
    conn = schema_up_to(db, 6)
    first, other, routed_bytes, copy_bytes = b"<first/>", b"<other/>", b"<routed/>", b"<copy/>"
    rows = [  # id, bytes, state, messageId, duplicate_of
        (1, first, "quarantined", None, None),  # quarantined: nobody's original
        (2, first, "routed", "m-2", None),      # taken when sent again: the original
        (3, first, "duplicate", None, 2),
        (4, routed_bytes, "routed", "m-4", None),
        (5, copy_bytes, "duplicate", "m-4", 4),  # same messageId: holds its own bytes still
        (6, other, "quarantined", None, None)]
    for mid, data, state, message_id, duplicate_of in rows:
        conn.execute("INSERT INTO messages (id, source, ref, digest, received_at, state, message_id,"
                     " duplicate_of, updated_at) VALUES (?, 'registry', 'f.xml', ?, 0, ?, ?, ?, 0)",
                     (mid, hashlib.sha256(data).hexdigest(), state, message_id, duplicate_of))
        conn.execute("INSERT INTO payloads (message, raw) VALUES (?, ?)", (mid, data))
    conn.close()

    async def later() -> list[tuple[int, bool]]:
        store = SQLiteStore(db)
        store.start()  # applies 0007
        try:
            rows = await store.add_raw([RawInput("registry", "again.xml", data, {})
                                        for data in (first, copy_bytes, other)])
            await store.record_processing([Processed(
                rows[2][0], MessageState.ROUTED, normalised=Normalised(
                    "personEventMessage", "m-4", b"<x/>", None), routes=[Route("canton", "t")])])
            return rows
        finally:
            store.close()

    (again, new_again), (copy, new_copy), (other_again, new_other) = asyncio.run(later())
    assert (new_again, new_copy, new_other) == (False, False, True)
    reader = StoreReader(db)
    try:
        assert reader.get_message(again)["duplicate_of"] == 2
        assert reader.get_message(copy)["duplicate_of"] == 5
        routed_again = reader.get_message(other_again)
        assert (routed_again["state"], routed_again["duplicate_of"]) == ("duplicate", 4)
    finally:
        reader.close()


async def _claimed(store: SQLiteStore) -> tuple[int, Claim]:
    """A message ``m-1`` routed to ``canton``, its delivery claimed: (message, claim)."""
    [(mid, _new)] = await store.add_raw([RawInput("registry", "m.xml", b"<m/>", {})])
    await store.record_processing([Processed(
        mid, MessageState.ROUTED, normalised=Normalised("personEventMessage", "m-1", b"<x/>",
                                                        None), routes=[Route("canton", "t")])])
    [claim] = await store.claim_due("n1", 60, 10, ["canton"])
    return mid, claim


async def test_an_attempt_sent_before_recipients_were_recorded_is_matched_by_its_ref(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0011: an attempt the older release sent has no recipient; its sedex receipt settles it."""
    db = tmp_path / "g.db"
    shipped = available()
    # the schema without 0011 (the later ones the code that makes the attempt needs)
    monkeypatch.setattr(migrate_module, "available", lambda: [m for m in shipped if m[0] != 11])
    store = SQLiteStore(db, group_commit_delay=0.001)
    store.start()
    try:
        mid, claim = await _claimed(store)
    finally:
        store.close()
    conn = sqlite3.connect(db, isolation_level=None)  # recorded as sent, as that release did
    conn.execute("UPDATE attempts SET outcome = 'sent', detail = 'in the outbox' WHERE ref = ?",
                 (claim.attempt_ref,))
    conn.execute("UPDATE deliveries SET state = 'sent', lease_owner = NULL, lease_until = NULL,"
                 " sent_at = 0, receipt_due_at = 1e12 WHERE id = ?", (claim.delivery,))
    conn.close()
    monkeypatch.setattr(migrate_module, "available", lambda: shipped)

    transport = make_transport(tmp_path)
    write_receipt(tmp_path / "receipts", "receipt__ID_old.xml", claim.attempt_ref, 100)
    store = SQLiteStore(db, group_commit_delay=0.001)
    store.start()  # applies 0011
    try:
        dispatcher = Dispatcher(store, {}, {}, {}, node="t", lease=60, batch_size=10,
                                idle_poll=1.0)
        recorder = ReceiptRecorder(store, dispatcher, IntakePause(get_plugin_manager()))
        assert await transport.scan_receipts(recorder, StubIntake()) == 1
    finally:
        store.close()
    assert (tmp_path / "receipts-done" / "receipt__ID_old.xml").exists()
    reader = StoreReader(db)
    try:
        [delivery] = reader.get_message(mid)["deliveries"]
    finally:
        reader.close()
    assert delivery["state"] == "delivered"
    assert [(a["ref"], a["recipient"]) for a in delivery["attempt_log"]] == [
        (claim.attempt_ref, None)]
    assert [(r["code"], r["recipient"]) for r in delivery["receipts"]] == [("100", "T3-CH-1")]


async def test_an_answer_applied_before_0014_is_not_applied_again(tmp_path: Path) -> None:
    """0014: the answers the journal says were applied count as applied."""
    db = tmp_path / "g.db"

    def report(mid: int) -> Processed:
        return Processed(mid, MessageState.NOT_RELEVANT, "an answer", normalised=Normalised(
            "eventReport", "answer-1", b"<r/>", None, reference_message_id="m-1", action="9"))

    store = SQLiteStore(db, group_commit_delay=0.001)
    store.start()
    try:
        _mid, claim = await _claimed(store)
        [(yes, _new)] = await store.add_raw([RawInput("canton", "r.xml", b"<r/>", {})])
        await store.record_processing([report(yes)])
    finally:
        store.close()
    conn = sqlite3.connect(db, isolation_level=None)  # as a release before 0014 left it
    conn.execute("DROP TABLE applied_answers")
    conn.execute("DELETE FROM schema_migrations WHERE version = 14")
    conn.close()
    store = SQLiteStore(db, group_commit_delay=0.001)
    store.start()  # applies 0014
    try:
        await store.requeue_message(yes)
        await store.record_processing([report(yes)])
    finally:
        store.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT event FROM journal WHERE delivery = ? ORDER BY seq",
                            (claim.delivery,)).fetchall() == [
            ("delivery.queued",), ("delivery.sending",), ("delivery.acknowledged",)]
        assert conn.execute("SELECT event FROM journal WHERE message = ? AND event LIKE"
                            " 'message.answer%' ORDER BY seq", (yes,)).fetchall() == [
            ("message.answer",), ("message.answer_repeated",)]
    finally:
        conn.close()


async def test_message_ids_routed_before_0016_are_of_an_unknown_sender(tmp_path: Path) -> None:
    """0016: a messageId routed before senders were known keeps it for messages of an unknown
    sender only; a known sender's message with that messageId is sent."""
    db = tmp_path / "g.db"
    conn = schema_up_to(db, 15)
    conn.execute("INSERT INTO messages (id, source, ref, digest, received_at, state, message_id,"
                 " updated_at) VALUES (1, 'registry', 'old.xml', 'd', 0, 'routed', '7', 0)")
    conn.execute("INSERT INTO payloads (message, raw) VALUES (1, x'00')")
    conn.execute("INSERT INTO routed_message_ids (message_id, message) VALUES ('7', 1)")
    conn.close()

    def routed(mid: int, sender: str | None) -> Processed:
        return Processed(mid, MessageState.ROUTED, normalised=Normalised(
            "personEventMessage", "7", b"<x/>", None, sender_id=sender),
            routes=[Route("canton", "t")])

    store = SQLiteStore(db, group_commit_delay=0.001)
    store.start()  # applies 0016
    try:
        rows = await store.add_raw([RawInput("registry", f"{n}.xml", f"<m{n}/>".encode(), {})
                                    for n in range(3)])
        (known, _), (unknown, _), (known_again, _) = rows
        await store.record_processing([routed(known, "1-261-1"), routed(unknown, None)])
        await store.record_processing([routed(known_again, "1-261-1")])
    finally:
        store.close()
    reader = StoreReader(db)
    try:
        assert reader.get_message(1)["sender_id"] is None
        sent = reader.get_message(known)
        assert (sent["state"], sent["sender_id"], len(sent["deliveries"])) == (
            "routed", "1-261-1", 1)
        assert [(m["state"], m["duplicate_of"], m["reason"])
                for m in map(reader.get_message, (unknown, known_again))] == [
            ("duplicate", 1, "messageId 7 was already routed as message 1"),
            ("duplicate", known, f"messageId 7 from sender 1-261-1 was already routed as"
                                 f" message {known}")]
    finally:
        reader.close()
