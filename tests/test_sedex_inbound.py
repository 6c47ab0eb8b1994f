"""The sedex inbox and receipts folders with files as sedex clients really write them.

Written in place (chunks, pauses), with names that are not UTF-8, with
symbolic links and FIFOs among them, and with a payload of 200 MB.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from gateway.config import write_initial_config
from gateway.ech0223 import sample_event_report, write_message
from gateway.plugins import get_plugin_manager
from plugins.sedex.envelope import build_receipt, parse_envelope
from tests.flow import drop, message, running, states, until
from tests.stubs import StubIntake, StubReceiptSink
from tests.test_crash_safety import Daemon
from tests.test_sedex_transport import (
    CANTON,
    PAYLOAD,
    envelope_bytes,
    make_transport,
    names,
    write_receipt,
)

WRITER = Path(__file__).parent / "writer.py"
FAST = """\
[gateway]
log_level = "WARNING"
[dispatcher]
idle_poll = "50ms"
[sources.registry]
poll_interval = "50ms"
settle = "50ms"
[partners.canton.sedex]
poll_interval = "50ms"
settle = "100ms"
"""


def gateway_dir(root: Path) -> Path:
    config = write_initial_config(root)
    (root / "conf.d" / "10-fast.toml").write_text(FAST)
    return config


def create(folder: Path, name: bytes, data: bytes) -> None:
    """Create ``folder/name`` with a name given as bytes (it need not be UTF-8)."""
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------
# in-process, real folders
# ---------------------------------------------------------------------------


async def test_names_that_are_not_utf8_are_stored_escaped_and_the_others_flow(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    inbox, receipts = tmp_path / "sedex" / "inbox", tmp_path / "sedex" / "receipts"
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        create(inbox, b"data_Z\xfcrich.xml", PAYLOAD)
        create(inbox, b"envl_Z\xfcrich.xml", envelope_bytes("latin-1", **CANTON))
        create(receipts, b"receipt_\xe9.xml", b"<receipt>broken</receipt>")
        await until(lambda: len(states(db, "SELECT id FROM messages")) == 2)
        # later files of both folders are still taken
        drop(inbox, "data_after.xml", PAYLOAD.replace(b"eventReport", b"eventReport "))
        drop(inbox, "envl_after.xml", envelope_bytes("after-1", **CANTON))
        write_receipt(receipts, "later.xml", "unknown-ref")
        await until(lambda: len(states(db, "SELECT id FROM messages")) == 3)
        await until(lambda: (tmp_path / "sedex" / "receipts-done" / "unmatched" / "later.xml")
                    .exists())
    rows = {ref: (state, orjson.loads(meta)) for ref, state, meta
            in states(db, "SELECT ref, state, meta FROM messages")}
    assert rows["Z\\xfcrich"][1]["payload_name"] == "data_Z\\xfcrich.xml"
    assert rows["Z\\xfcrich"][1]["sedex_message_id"] == "latin-1"
    assert rows["receipt_\\xe9.xml"][0] == "quarantined"
    assert "after" in rows
    processed = os.listdir(os.fsencode(tmp_path / "sedex" / "processed"))
    assert {b"data_Z\xfcrich.xml", b"envl_Z\xfcrich.xml"} <= set(processed)


async def test_symlinks_and_fifos_in_inbox_and_receipts_are_set_aside_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = make_transport(tmp_path)
    inbox, receipts = tmp_path / "inbox", tmp_path / "receipts"
    (tmp_path / "outside.xml").write_bytes(PAYLOAD)
    (inbox / "data_L.xml").symlink_to(tmp_path / "outside.xml")
    (inbox / "envl_L.xml").write_bytes(envelope_bytes())
    os.mkfifo(receipts / "r.xml")
    intake = StubIntake()
    for _ in range(3):
        await t.scan_inbox(intake)
        await t.scan_receipts(StubReceiptSink(), intake)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warnings if "set aside" in w] == [
        f"sedex inbox: {inbox}/data_L.xml is a symbolic link, not a regular file: not taken,"
        f" set aside as {inbox}/set-aside/data_L.xml",
        f"{receipts}/r.xml is a named pipe (FIFO), not a regular file: not taken,"
        f" set aside as {receipts}/set-aside/r.xml",
    ]
    assert names(inbox) == {"envl_L.xml", "set-aside"}, "the envelope waits for a real payload"
    assert intake.submitted == []


async def test_an_unfinished_receipt_waits_for_grace_then_is_quarantined(tmp_path: Path) -> None:
    t = make_transport(tmp_path, grace="150ms")
    receipts = tmp_path / "receipts"
    (receipts / "r.xml").write_bytes(b'<?xml version="1.0"?>\n<eCH-0090:receipt xmlns:eCH-00')
    intake, sink = StubIntake(), StubReceiptSink()
    assert await t.scan_receipts(sink, intake) == 0
    assert await t.scan_receipts(sink, intake) == 0
    assert intake.quarantined == []
    await asyncio.sleep(0.2)
    assert await t.scan_receipts(sink, intake) == 1
    ((raw, reason),) = intake.quarantined
    assert reason.startswith(f"unreadable sedex receipt: unfinished file {receipts}/r.xml:"
                             " XML that ends inside its root element's start tag")
    assert names(tmp_path / "receipts-done" / "rejected") == {"r.xml"}
    assert raw.meta["moved_to"] == str(tmp_path / "receipts-done" / "rejected")


async def test_an_empty_receipt_is_not_taken_until_it_is_written(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    receipts = tmp_path / "receipts"
    (receipts / "r.xml").write_bytes(b"")
    intake, sink = StubIntake(), StubReceiptSink()
    assert await t.scan_receipts(sink, intake) == 0
    write_receipt(receipts, "r.xml", "ref-r")
    assert await t.scan_receipts(sink, intake) == 1
    assert intake.quarantined == [] and [r.attempt_ref for r in sink.receipts] == ["ref-r"]


async def test_one_inbox_scan_gathers_a_bounded_number_of_bytes(tmp_path: Path) -> None:
    t = make_transport(tmp_path)
    t.inbox_scanner.batch_bytes = 2 * len(PAYLOAD)
    for n in range(5):
        (tmp_path / "inbox" / f"data_B{n}.xml").write_bytes(PAYLOAD)
        (tmp_path / "inbox" / f"envl_B{n}.xml").write_bytes(envelope_bytes(f"b-{n}"))
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 5
    assert [len(call) for call in intake.submit_calls] == [2, 2, 1]
    assert len(names(tmp_path / "processed")) == 10


@pytest.mark.parametrize("bad", ["../../etc/x", "x" * 37])
async def test_a_pair_whose_messageid_is_no_safe_name_is_quarantined_and_nothing_leaves(
        tmp_path: Path, bad: str) -> None:
    """An envelope's messageId is a partner's text: one that climbs out of a folder (or is
    longer than sedex allows) quarantines the pair, with the payload, naming the field."""
    root = tmp_path / "gw" / "sedex"  # the gateway's folders, two levels down: ../../ stays in tmp
    t = make_transport(root)
    inbox = root / "inbox"
    before = set(tmp_path.rglob("*"))
    (inbox / "data_T.xml").write_bytes(PAYLOAD)
    (inbox / "envl_T.xml").write_bytes(envelope_bytes("in-1").replace(
        b">in-1<", f">{bad}<".encode()))
    intake = StubIntake()
    assert await t.scan_inbox(intake) == 1
    ((raw, reason),) = intake.quarantined
    assert reason == (
        "bad sedex envelope: invalid eCH-0090 v1 envelope: line 3: Element"
        " '{http://www.ech.ch/xmlns/eCH-0090/1}messageId': [facet 'pattern']"
        f" The value '{bad}' is not accepted by the pattern '[A-Za-z0-9\\-]{{1,36}}'.")
    assert (raw.ref, raw.data) == ("T", PAYLOAD)  # the payload is kept with the reason
    assert "sedex_message_id" not in raw.meta and intake.submitted == []
    rejected = root / "processed" / "rejected"
    assert names(rejected) == {"data_T.xml", "envl_T.xml"} and names(inbox) == set()
    # nothing written anywhere but the two files moved into processed/rejected
    assert set(tmp_path.rglob("*")) - before == {
        rejected, rejected / "data_T.xml", rejected / "envl_T.xml"}


# ---------------------------------------------------------------------------
# the real daemon, real writers
# ---------------------------------------------------------------------------


async def test_200_receipts_written_in_place_are_all_applied(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    db, sedex = tmp_path / "gateway.db", tmp_path / "sedex"
    count = 200
    sent_sql = "SELECT d.attempt_ref FROM deliveries d WHERE d.state = 'sent'"
    async with running(config, get_plugin_manager()):
        for n in range(count):
            drop(tmp_path / "registry" / "outbox", f"m{n}.xml", message(f"in-place-{n}"))
        await until(lambda: len(states(db, sent_sql)) == count, timeout=60)
        staged = tmp_path / "staged"
        staged.mkdir()
        args = []
        for (ref,) in states(db, sent_sql):
            env = parse_envelope((sedex / "outbox" / f"envl_{ref}.xml").read_bytes(),
                                 max_bytes=1 << 20)
            receipt = build_receipt(env, env.recipient_ids[0], 100, "Message correct transmitted",
                                    datetime.now().astimezone())
            (staged / f"{ref}.xml").write_bytes(receipt)
            args.append(f"{sedex / 'receipts' / f'receipt__ID_{ref}.xml'}={staged / f'{ref}.xml'}")
        writer = await asyncio.create_subprocess_exec(sys.executable, str(WRITER), "0.15", "3",
                                                      *args)
        assert await writer.wait() == 0
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                    == [(count,)], timeout=30)
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'quarantined'") == [(0,)]
    assert list((sedex / "receipts").glob("*.xml")) == []


def vm_hwm_mib(pid: int) -> float:
    """The peak resident memory of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_200_mb_payload_is_quarantined_with_evidence_in_bounded_memory(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    inbox, db = tmp_path / "sedex" / "inbox", tmp_path / "gateway.db"
    size = 200 * 1000 * 1000
    daemon = Daemon(config, tmp_path)
    try:
        daemon.start()
        daemon.wait_ready()
        assert daemon.proc is not None
        drop(inbox, "data_small.xml", PAYLOAD)
        drop(inbox, "envl_small.xml", envelope_bytes("small-1", **CANTON))
        deadline = time.monotonic() + 20
        while not states(db, "SELECT id FROM messages") and time.monotonic() < deadline:
            time.sleep(0.05)
        before = vm_hwm_mib(daemon.proc.pid)
        head = b'<?xml version="1.0"?>\n<delivery>' + os.urandom(1000).hex().encode()
        with (inbox / ".data_big.tmp").open("wb") as f:  # sparse: quick to make, all of it read
            f.write(head)
            f.truncate(size - 11)
            f.seek(0, os.SEEK_END)
            f.write(b"</delivery>")
        os.replace(inbox / ".data_big.tmp", inbox / "data_big.xml")
        drop(inbox, "envl_big.xml", envelope_bytes("big-1", **CANTON))
        # (the small one is quarantined too: an empty eventReport is not valid eCH-0223)
        sql = ("SELECT id, reason, meta FROM messages WHERE state = 'quarantined'"
               " AND reason LIKE 'payload of %'")
        deadline = time.monotonic() + 60
        while not states(db, sql) and time.monotonic() < deadline:
            time.sleep(0.1)
        grown = vm_hwm_mib(daemon.proc.pid) - before
        assert daemon.stop() == 0
    finally:
        daemon.ensure_stopped()
    [(mid, reason, meta)] = states(db, sql)
    evidence = orjson.loads(meta)
    digest = hashlib.sha256((tmp_path / "sedex" / "processed" / "rejected" / "data_big.xml")
                            .read_bytes()).hexdigest()
    assert (evidence["size"], evidence["sha256"]) == (str(size), digest)
    assert reason.startswith(f"payload of {size} bytes is larger than 134217728 bytes")
    [(kept,)] = states(db, "SELECT length(raw) FROM payloads WHERE message = ?", (mid,))
    assert kept == int(evidence["kept_bytes"]) == 32 * 1024 * 1024
    # bounded by the limits, not by the file: the 32 MiB kept, and the store's copies of them
    # (it grew by 945 MB when the payload was read whole)
    assert grown < 4 * 32, f"peak RSS grew by {grown:.0f} MiB"



def sloppy_envelope(ref: str, *, sender: str, recipient: str, message_type: int,
                    answers: str) -> bytes:
    """An envelope as third parties write them: another prefix, no time zone, dates swapped."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ns2:envelope xmlns:ns2="http://www.ech.ch/xmlns/eCH-0090/1" version="1.0">
<ns2:messageId>{ref}</ns2:messageId>
<ns2:messageType>{message_type}</ns2:messageType>
<ns2:messageClass>1</ns2:messageClass>
<ns2:referenceMessageId>{answers}</ns2:referenceMessageId>
<ns2:senderId>{sender}</ns2:senderId>
<ns2:recipientId>{recipient}</ns2:recipientId>
<ns2:eventDate>2031-05-02T09:15:00</ns2:eventDate>
<ns2:messageDate>2024-03-01T08:00:00.25</ns2:messageDate>
</ns2:envelope>
""".encode()


async def test_answers_written_in_place_with_sloppy_envelopes_are_all_taken_whole(
        tmp_path: Path) -> None:
    """Payload and envelope grow together, with pauses longer than ``settle``."""
    config = gateway_dir(tmp_path)
    db, inbox = tmp_path / "gateway.db", tmp_path / "sedex" / "inbox"
    staged = tmp_path / "staged"
    staged.mkdir()
    ids = [f"sloppy-{n}" for n in range(5)]
    sent_sql = "SELECT count(*) FROM deliveries WHERE state = 'sent'"
    async with running(config, get_plugin_manager()) as gateway:
        sedex = gateway.settings.partners["canton"].parsed
        for mid in ids:
            drop(tmp_path / "registry" / "outbox", f"{mid}.xml", message(mid))
        await until(lambda: states(db, sent_sql) == [(len(ids),)])
        args, payloads = [], {}
        for n, mid in enumerate(ids):
            payloads[mid] = write_message(sample_event_report(random.Random(n),
                                                              reference_message_id=mid))
            (staged / f"d{n}").write_bytes(payloads[mid])
            (staged / f"e{n}").write_bytes(sloppy_envelope(
                f"answer-{n}", sender=sedex.recipient_id, recipient=sedex.sender_id,
                message_type=sedex.message_type, answers=mid))
            args += [f"{inbox / f'data_A{n}.xml'}={staged / f'd{n}'}",
                     f"{inbox / f'envl_A{n}.xml'}={staged / f'e{n}'}"]
        writer = await asyncio.create_subprocess_exec(sys.executable, str(WRITER), "0.25", "4",
                                                      *args)
        assert await writer.wait() == 0
        await until(lambda: states(db, "SELECT DISTINCT state FROM deliveries") == [("rejected",)],
                    timeout=30)
    rows = states(db, "SELECT m.state, m.reference_message_id, m.meta, p.raw FROM messages m"
                      " JOIN payloads p ON p.message = m.id WHERE m.source = 'canton'")
    assert sorted(r[1] for r in rows) == ids
    for state, answers, meta, raw in rows:
        assert state != "quarantined" and bytes(raw) == payloads[answers]
        assert orjson.loads(meta)["sedex_message_id"].startswith("answer-")
    assert sorted(p.name for p in (tmp_path / "sedex" / "processed").iterdir()) == sorted(
        [f"data_A{n}.xml" for n in range(5)] + [f"envl_A{n}.xml" for n in range(5)])
