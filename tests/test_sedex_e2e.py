"""The real thing, in-process: ``init`` configuration, real plugins, sedex folders, simulator.

The gateway runs with the default plugin manager (entry points only, no
stub) on the folders ``write_initial_config`` creates. Either the sedex
simulator (``plugins.sedex.sim``) plays the sedex client, or the test writes
receipt files and inbound pairs itself, as the client would.
"""

from __future__ import annotations

import asyncio
import errno
import io
import random
import re
import uuid
from collections import Counter
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.demo.peers import canton_rejects
from gateway.ech0223 import sample_event_report, write_message
from gateway.fileio import sync_filesystem
from gateway.plugins import get_plugin_manager
from plugins.sedex.envelope import Envelope, build_envelope, build_receipt, parse_envelope
from plugins.sedex.sim import SedexSimulator
from tests.flow import drop, message, running, sedex_partner, states, until

MAX = 1 << 20
_ECH_MESSAGE_ID = re.compile(rb"<eCH-0039:messageId>([^<]+)</eCH-0039:messageId>")
E2E = """\
[gateway]
log_level = "WARNING"
[dispatcher]
idle_poll = "50ms"
receipt_check_interval = "100ms"
[sources.registry]
poll_interval = "50ms"
settle = "50ms"
[partners.canton]
receipt_timeout = "{receipt_timeout}"
[partners.canton.retry]
max_attempts = 30
initial = "20ms"
maximum = "100ms"
jitter = 0
[partners.canton.sedex]
poll_interval = "50ms"
pair_grace = "3s"
settle = "50ms"
"""


def gateway_dir(root: Path, receipt_timeout: str = "30s") -> Path:
    """``init`` into ``root`` plus fast polls and retries in conf.d; returns gateway.toml."""
    config = write_initial_config(root)
    (root / "conf.d" / "10-e2e.toml").write_text(E2E.format(receipt_timeout=receipt_timeout))
    return config


def ech_message_id(payload: bytes) -> str:
    """The eCH-0223 header messageId of a payload."""
    found = _ECH_MESSAGE_ID.search(payload)
    assert found, payload[:200]
    return found[1].decode()


def delivery_of(db: Path, message_id: str) -> tuple[int, str, str | None, int]:
    """(id, state, reason, attempts) of the delivery of eCH-0223 ``message_id``."""
    [row] = states(db, "SELECT d.id, d.state, d.reason, d.attempts FROM deliveries d"
                       " JOIN messages m ON m.id = d.message WHERE m.message_id = ?"
                       " AND m.source = 'registry'", (message_id,))
    return row


def hidden(folder: Path) -> list[str]:
    """Hidden or temporary files in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]


def receipt_for(root: Path, ref: str, code: int, version: int = 2,
                recipient: str | None = None) -> bytes:
    """The sedex receipt ``code`` (eCH-0090 ``version``) for the envelope ``ref``.

    The envelope is in the outbox, or in ``working`` where a sedex client 7+ moves it.
    The receipt names the envelope's recipient, or ``recipient`` when given.
    """
    [envl] = [p for p in (root / "sedex" / f / f"envl_{ref}.xml" for f in ("outbox", "working"))
              if p.exists()]
    env = parse_envelope(envl.read_bytes(), max_bytes=MAX)
    receipt = build_receipt(env, recipient or env.recipient_ids[0], code,
                            f"code {code} from the test", datetime.now().astimezone())
    if version == 1:  # as older tools write them
        receipt = receipt.replace(b"eCH-0090/2", b"eCH-0090/1").replace(b'"2.0"', b'"1.0"')
    return receipt


def answer(root: Path, ref: str, code: int) -> None:
    """Write the sedex receipt ``code`` for the envelope ``ref`` in the outbox."""
    drop(root / "sedex" / "receipts", f"{uuid.uuid4()}.xml", receipt_for(root, ref, code))


async def sent_refs(db: Path, count: int) -> dict[str, str]:
    """Wait until ``count`` deliveries are sent; eCH-0223 messageId -> attempt ref."""
    sql = ("SELECT m.message_id, d.attempt_ref FROM deliveries d JOIN messages m"
           " ON m.id = d.message WHERE d.state = 'sent'")
    await until(lambda: len(states(db, sql)) >= count)
    return dict(states(db, sql))


def cli(*argv: str, code: int = 0) -> str:
    """Run the command line in-process; its stdout (after it exited with ``code``)."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == code
    return out.getvalue()


async def test_transient_failures_are_retried_as_new_sedex_messages(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    sedex, canton = tmp_path / "sedex", tmp_path / "canton" / "inbox"
    sim = SedexSimulator(sedex / "outbox", sedex / "receipts", sedex / "processed", canton,
                         seed=11, failure_rate=0.5, poll_interval=0.05)
    ids = [f"e2e-{n:02d}" for n in range(12)]
    sim_stop = asyncio.Event()
    async with running(config, get_plugin_manager()):
        sim_task = asyncio.create_task(sim.run(sim_stop))
        for mid in ids:
            drop(tmp_path / "registry" / "outbox", f"{mid}.xml", message(mid))
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                    == [(len(ids),)], timeout=30)
        await until(lambda: not list((sedex / "receipts").iterdir()))
        sim_stop.set()
        await sim_task
    assert states(db, "SELECT DISTINCT state FROM deliveries") == [("delivered",)]
    # retried deliveries: one new envelope messageId per attempt, the same eCH-0223 messageId
    retried = states(db, "SELECT d.id, d.attempts, m.message_id FROM deliveries d"
                         " JOIN messages m ON m.id = d.message WHERE d.attempts > 1")
    assert retried, "failure_rate 0.5 should have made some transfers fail"
    for did, attempts, message_id in retried:
        refs = [r for (r,) in states(db, "SELECT ref FROM attempts WHERE delivery = ?", (did,))]
        assert len(set(refs)) == attempts
        for ref in refs:
            env = parse_envelope((sedex / "processed" / f"envl_{ref}.xml").read_bytes(),
                                 max_bytes=MAX)
            assert env.message_id == ref
            assert ech_message_id((sedex / "processed" / f"data_{ref}.xml").read_bytes()) == message_id
        codes = states(db, "SELECT code FROM receipts WHERE delivery = ? ORDER BY id", (did,))
        assert [c for (c,) in codes][-1] == "100"
        assert all(c in ("400", "401") for (c,) in codes[:-1])
    # the canton got exactly one copy of each message
    copies = Counter(ech_message_id(p.read_bytes()) for p in canton.glob("data_*.xml"))
    assert copies == Counter(ids)
    assert len(list(canton.glob("envl_*.xml"))) == len(ids)
    # every receipt was recorded and moved away; nothing half-written is left
    assert list((sedex / "receipts").iterdir()) == []
    assert len(list((sedex / "receipts-done").glob("*.xml"))) == len(
        states(db, "SELECT id FROM receipts"))
    assert [p.name for p in (sedex / "outbox").iterdir()] == [".ech-gateway-tmp"]
    assert list((sedex / "outbox" / ".ech-gateway-tmp").iterdir()) == []
    assert hidden(sedex / "processed") == [] and hidden(canton) == []


async def test_receipt_codes_and_answers_from_the_canton(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox, processed = tmp_path / "sedex" / "inbox", tmp_path / "sedex" / "processed"
    codes = {"e2e-310": 310, "e2e-999": 999, "e2e-ok-a": 100, "e2e-ok-b": 100}
    async with running(config, get_plugin_manager()) as gateway:
        for mid in codes:
            drop(tmp_path / "registry" / "outbox", f"{mid}.xml", message(mid))
        refs = await sent_refs(db, len(codes))
        for mid, code in codes.items():
            answer(tmp_path, refs[mid], code)
        await until(lambda: sorted(states(db, "SELECT state FROM deliveries")) == [
            ("dead",), ("delivered",), ("delivered",), ("needs_review",)])
        assert (delivery_of(db, "e2e-310")[2] or "").startswith("permanent error: receipt 310")
        assert "999" in (delivery_of(db, "e2e-999")[2] or "")

        # the canton rejects ok-a (data file first, then the envelope) ...
        sedex = gateway.settings.partners["canton"].parsed
        canton_rejects(inbox, message("e2e-ok-a"), sender=sedex.recipient_id, recipient=sedex.sender_id,
                       message_type=sedex.message_type, seed=1)
        # ... and ok-b (the envelope first, the data file a little later)
        ref = str(uuid.uuid4())
        now = datetime.now(UTC)
        drop(inbox, f"envl_{ref}.xml", build_envelope(Envelope(
            ref, sedex.message_type, 1, sedex.recipient_id, (sedex.sender_id,), now, now,
            reference_message_id="e2e-ok-b")))
        await asyncio.sleep(0.4)
        assert (inbox / f"envl_{ref}.xml").exists(), "a lone envelope waits for its data file"
        drop(inbox, f"data_{ref}.xml", write_message(
            sample_event_report(random.Random(2), reference_message_id="e2e-ok-b")))
        await until(lambda: [s for (_i, s, _r, _a) in
                             (delivery_of(db, "e2e-ok-a"), delivery_of(db, "e2e-ok-b"))]
                    == ["rejected", "rejected"])
        await until(lambda: not list(inbox.iterdir()))
        await asyncio.sleep(0.3)  # a pair taken twice would show up by now
        assert delivery_of(db, "e2e-999")[1] == "needs_review", "an unknown code is never success"
    inbound = states(db, "SELECT state, kind, reference_message_id FROM messages"
                         " WHERE source = 'canton' ORDER BY reference_message_id")
    assert [(k, r) for _s, k, r in inbound] == [("eventReport", "e2e-ok-a"),
                                                ("eventReport", "e2e-ok-b")]
    assert "duplicate" not in {s for s, _k, _r in inbound}
    assert "quarantined" not in {s for s, _k, _r in inbound}
    assert len(list(processed.glob("envl_*.xml"))) == 2
    assert len(list(processed.glob("data_*.xml"))) == 2
    assert (processed / f"envl_{ref}.xml").exists() and (processed / f"data_{ref}.xml").exists()
    assert "negative eventReport" in (delivery_of(db, "e2e-ok-b")[2] or "")
    assert list((tmp_path / "sedex" / "receipts").iterdir()) == []


async def test_a_missing_receipt_is_flagged_overdue(tmp_path: Path) -> None:
    """The message leaves outbox for working (sedex client 7+): still no receipt, no re-send."""
    config = gateway_dir(tmp_path, receipt_timeout="200ms")
    db, sedex = tmp_path / "gateway.db", tmp_path / "sedex"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "late.xml", message("e2e-late"))
        refs = await sent_refs(db, 1)
        (sedex / "working").mkdir()
        for name in (f"data_{refs['e2e-late']}.xml", f"envl_{refs['e2e-late']}.xml"):
            (sedex / "outbox" / name).rename(sedex / "working" / name)
        await until(lambda: states(db, "SELECT overdue FROM deliveries") == [(1,)])
        await asyncio.sleep(1.0)  # ten receipt checks and many retry delays later
        assert delivery_of(db, "e2e-late")[1:] == ("sent", None, 1)
        assert list((sedex / "outbox").glob("*_*.xml")) == [], "sent again by itself"
        assert states(db, "SELECT count(*) FROM attempts") == [(1,)]
        assert "receipts overdue: canton 1" in cli("--config", str(config), "status", code=1)
        assert '"canton": 1' in cli("--config", str(config), "status", "--json", code=1)
        assert "RECEIPT OVERDUE" in cli("--config", str(config), "messages", "show", "e2e-late")
        assert states(db, "SELECT count(*) FROM journal WHERE event = 'receipt.overdue'") == [(1,)]
        answer(tmp_path, refs["e2e-late"], 100)  # late, but it comes
        await until(lambda: delivery_of(db, "e2e-late")[1] == "delivered")
    assert "overdue" not in cli("--config", str(config), "status")


@pytest.mark.parametrize("code", [310, 999])
async def test_final_receipt_codes_are_never_delivered(tmp_path: Path, code: int) -> None:
    """A 310 or an unknown code stays final even if a 100 for the same attempt follows."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "m.xml", message("e2e-final"))
        ref = (await sent_refs(db, 1))["e2e-final"]
        answer(tmp_path, ref, code)
        final = "dead" if code == 310 else "needs_review"
        await until(lambda: delivery_of(db, "e2e-final")[1] == final)
        answer(tmp_path, ref, 100)
        await until(lambda: states(db, "SELECT count(*) FROM receipts") == [(2,)])
        await until(lambda: not list((tmp_path / "sedex" / "receipts").iterdir()))
        assert delivery_of(db, "e2e-final")[1] == final
        assert delivery_of(db, "e2e-final")[3] == 1  # and no new attempt was made


async def test_an_outbox_that_cannot_be_synced_gets_no_second_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    outbox = tmp_path / "sedex" / "outbox"
    real_sync = sync_filesystem
    failures = []

    def sync_failing_once(folder: Path) -> None:
        if folder == outbox and not failures:
            failures.append(folder)
            raise OSError(errno.EIO, "Input/output error")
        real_sync(folder)

    monkeypatch.setattr("plugins.sedex.transport.sync_filesystem", sync_failing_once)
    ids = [f"eio-{n}" for n in range(5)]
    async with running(config, get_plugin_manager()):
        for mid in ids:
            drop(tmp_path / "registry" / "outbox", f"{mid}.xml", message(mid))
        refs = await sent_refs(db, len(ids))
        assert failures, "the first sync of the outbox should have failed"
        unsure = states(db, "SELECT count(*) FROM journal WHERE event = 'delivery.unsure'")
        assert unsure[0][0] >= 1
        # the files written before the failed sync stay; repeating the attempt added none
        assert sorted(p.name for p in outbox.glob("envl_*.xml")) == sorted(
            f"envl_{ref}.xml" for ref in refs.values())
        assert len(list(outbox.glob("data_*.xml"))) == len(ids)
        assert states(db, "SELECT DISTINCT attempts FROM deliveries") == [(1,)]
        for ref in refs.values():
            answer(tmp_path, ref, 100)
        await until(lambda: states(db, "SELECT DISTINCT state FROM deliveries") == [("delivered",)])


async def test_a_701_receipt_waits_and_alerts_the_operator(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "m.xml", message("e2e-701"))
        ref = (await sent_refs(db, 1))["e2e-701"]
        answer(tmp_path, ref, 701)
        await until(lambda: states(db, "SELECT code FROM receipts") == [("701",)])
        assert delivery_of(db, "e2e-701")[1] == "sent", "701 waits for the final receipt"
        answer(tmp_path, ref, 100)
        await until(lambda: delivery_of(db, "e2e-701")[1] == "delivered")
    alerts = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts"]
    assert [a for a in alerts if "701" in a] == [
        f"receipt for attempt {ref}: 701 not yet collected, expires soon: code 701 from the test"
        " (recipient T2-2-1)"], alerts


async def test_receipts_are_matched_by_content_whatever_their_names_and_versions(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """File names as hygeia and MessageHandler see them; v1 receipts; the documented example."""
    config = gateway_dir(tmp_path)
    db, receipts = tmp_path / "gateway.db", tmp_path / "sedex" / "receipts"
    recorded = "SELECT count(*) FROM receipts"
    async with running(config, get_plugin_manager()):
        for mid in ("named", "misnamed", "documented", "old-tool"):
            drop(tmp_path / "registry" / "outbox", f"{mid}.xml", message(f"e2e-{mid}"))
        refs = await sent_refs(db, 4)
        named, misnamed = refs["e2e-named"], refs["e2e-misnamed"]
        # written in place, under the names real sedex clients give them
        (receipts / f"receipt__ID_{named}.xml").write_bytes(receipt_for(tmp_path, named, 601))
        await until(lambda: states(db, recorded) == [(1,)])
        (receipts / f"receipt__ID_{named}_1.xml").write_bytes(receipt_for(tmp_path, named, 100))
        await until(lambda: delivery_of(db, "e2e-named")[1] == "delivered")
        # a name that speaks of one message, a content that answers another
        (receipts / f"receipt__ID_{named}_2.xml").write_bytes(
            receipt_for(tmp_path, misnamed, 310))
        # the sedex documentation's example: its senderId misses the v2 pattern
        documented = receipt_for(tmp_path, refs["e2e-documented"], 100)
        documented = re.sub(rb"<eCH-0090:senderId>[^<]*<", b"<eCH-0090:senderId>1-1234<",
                            documented)
        (receipts / f"receipt__ID_{refs['e2e-documented']}.xml").write_bytes(documented)
        # a v1 receipt with the v2-only code 601, then the final v1 100
        old = refs["e2e-old-tool"]
        (receipts / f"{old}.xml").write_bytes(receipt_for(tmp_path, old, 601, version=1))
        await until(lambda: states(db, recorded) == [(5,)])
        (receipts / f"{old}_1.xml").write_bytes(receipt_for(tmp_path, old, 100, version=1))
        await until(lambda: sorted(states(db, "SELECT state FROM deliveries")) == [
            ("dead",), ("delivered",), ("delivered",), ("delivered",)])
        await until(lambda: not list(receipts.glob("*.xml")))
    assert delivery_of(db, "e2e-named")[1:] == ("delivered", None, 1)
    assert delivery_of(db, "e2e-misnamed")[1] == "dead"
    assert (delivery_of(db, "e2e-misnamed")[2] or "").startswith("permanent error: receipt 310")
    assert delivery_of(db, "e2e-documented")[1] == "delivered"
    assert delivery_of(db, "e2e-old-tool")[1] == "delivered"
    codes = states(db, "SELECT r.attempt_ref, r.code, r.info FROM receipts r ORDER BY r.id")
    assert sorted((ref, code) for ref, code, _info in codes) == sorted([
        (named, "601"), (named, "100"), (misnamed, "310"), (refs["e2e-documented"], "100"),
        (old, "601"), (old, "100")])
    warned = {(ref, code): info for ref, code, info in codes if "schema warning" in info}
    assert set(warned) == {(refs["e2e-documented"], "100"), (old, "601")}
    assert "senderId" in warned[refs["e2e-documented"], "100"]
    assert "'601' is not an element" in warned[old, "601"]
    logged = [r.getMessage() for r in caplog.records if "despite a schema warning" in r.getMessage()]
    assert len(logged) == 2 and sum("'1-1234'" in line for line in logged) == 1, logged
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'quarantined'") == [(0,)]
    assert states(db, "SELECT count(*) FROM journal WHERE event = 'receipt.unmatched'") == [(0,)]


#: A second partner on the same sedex client (``{sedex}``: its folders): its outbox,
#: receipts and processed folders are the canton's; only its recipientId (and its inbox,
#: here) differ. Messages go to both.
BOTH = """
[[rules]]
name = "both"
then = { route_to = ["canton", "canton-b"] }
"""


def second_partner(sedex: Path, inbox: str) -> str:
    """A second canton on the same sedex client (its inbox: ``inbox``), and a rule to send to both."""
    return sedex_partner(sedex, "canton-b", "T2-3-1", inbox=inbox) + BOTH


async def sent_by_partner(db: Path, count: int) -> dict[str, str]:
    """Wait until ``count`` deliveries are sent; partner -> attempt ref."""
    sql = "SELECT partner, attempt_ref FROM deliveries WHERE state = 'sent'"
    await until(lambda: len(states(db, sql)) >= count)
    return dict(states(db, sql))


async def test_a_shared_receipts_folder_settles_each_partners_delivery(tmp_path: Path) -> None:
    """One sedex client, two recipients: each receipt answers by messageId and recipientId."""
    config = gateway_dir(tmp_path)
    (tmp_path / "conf.d" / "20-second.toml").write_text(
        second_partner(tmp_path / "sedex", "inbox-b"))
    (tmp_path / "sedex" / "inbox-b").mkdir()
    db, receipts = tmp_path / "gateway.db", tmp_path / "sedex" / "receipts"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "m.xml", message("e2e-both"))
        refs = await sent_by_partner(db, 2)
        # receipts as the sedex client writes them, both into the one folder
        (receipts / f"receipt__ID_{refs['canton']}.xml").write_bytes(
            receipt_for(tmp_path, refs["canton"], 100))
        (receipts / f"receipt__ID_{refs['canton-b']}.xml").write_bytes(
            receipt_for(tmp_path, refs["canton-b"], 310))
        await until(lambda: sorted(states(db, "SELECT partner, state FROM deliveries")) == [
            ("canton", "delivered"), ("canton-b", "dead")])
        await until(lambda: not list(receipts.iterdir()))
    settled = states(db, "SELECT r.attempt_ref, d.partner, r.recipient, r.code FROM receipts r"
                         " JOIN deliveries d ON d.id = r.delivery ORDER BY r.code")
    assert settled == [(refs["canton"], "canton", "T2-2-1", "100"),
                       (refs["canton-b"], "canton-b", "T2-3-1", "310")]
    assert states(db, "SELECT ref, recipient FROM attempts ORDER BY recipient") == [
        (refs["canton"], "T2-2-1"), (refs["canton-b"], "T2-3-1")]
    assert sorted(p.name for p in (tmp_path / "sedex" / "receipts-done").iterdir()) == sorted(
        f"receipt__ID_{ref}.xml" for ref in refs.values())
    shown = cli("--config", str(config), "messages", "show", "e2e-both")
    assert f"attempt 1 {refs['canton']} to T2-2-1 " in shown, shown
    assert f"attempt 1 {refs['canton-b']} to T2-3-1 " in shown, shown


async def test_a_shared_inbox_credits_each_pair_to_the_partner_that_sent_it(
        tmp_path: Path) -> None:
    """One sedex client, two partners, one inbox: each answer is its senderId's partner's, on
    the way back too; one from a senderId of neither is kept and quarantined, naming it."""
    config = gateway_dir(tmp_path)
    (tmp_path / "conf.d" / "20-second.toml").write_text(
        second_partner(tmp_path / "sedex", "inbox"))
    db, inbox = tmp_path / "gateway.db", tmp_path / "sedex" / "inbox"
    sent = message("e2e-shared")
    deliveries = "SELECT partner, state FROM deliveries ORDER BY partner"
    answers = "SELECT source, state FROM messages WHERE source != 'registry' ORDER BY id"
    async with running(config, get_plugin_manager()) as gateway:
        drop(tmp_path / "registry" / "outbox", "m.xml", sent)
        await sent_by_partner(db, 2)
        ids = {name: gateway.settings.partners[name].parsed for name in ("canton", "canton-b")}

        def rejects(sender: str, seed: int) -> None:
            canton_rejects(inbox, sent, sender=sender, recipient="T1-2511-1",
                           message_type=1900223, seed=seed)

        rejects("T2-9-1", 1)  # neither partner's senderId
        await until(lambda: states(db, answers) == [("canton", "quarantined")])
        rejects(ids["canton-b"].recipient_id, 2)
        await until(lambda: states(db, deliveries) == [("canton", "sent"),
                                                       ("canton-b", "rejected")])
        rejects(ids["canton"].recipient_id, 3)
        await until(lambda: states(db, deliveries) == [("canton", "rejected"),
                                                       ("canton-b", "rejected")])
        await until(lambda: not list(inbox.iterdir()))
        await asyncio.sleep(0.3)  # a pair taken twice would show by now
    rows = states(db, "SELECT source, state, reason, meta FROM messages WHERE source != 'registry'"
                      " ORDER BY id")
    assert [(source, state) for source, state, _r, _m in rows] == [
        ("canton", "quarantined"), ("canton-b", "needs_review"), ("canton", "needs_review")]
    assert [orjson.loads(meta)["sender_id"] for *_x, meta in rows] == ["T2-9-1", "T2-3-1", "T2-2-1"]
    assert rows[0][2] == ("eCH-0223 not from partner 'canton': sedex senderId T2-9-1 is the"
                          " recipient_id of no partner reading this inbox (canton T2-2-1,"
                          " canton-b T2-3-1)")
    reviewed = states(db, "SELECT m.source, j.detail FROM journal j JOIN messages m"
                          " ON m.id = j.message WHERE j.event = 'message.needs_review'"
                          " ORDER BY m.id")
    assert [(source, orjson.loads(detail)["partner"]) for source, detail in reviewed] == [
        ("canton-b", "canton-b"), ("canton", "canton")]
    assert len(list((tmp_path / "sedex" / "processed").glob("*_*.xml"))) == 6  # the 3 pairs
    # The operator, having checked with the canton, resubmits the stranger's answer as the
    # partner's: the envelope's verdict was about the quarantined pair, not the corrected file.
    [(stranger, data)] = states(db, "SELECT m.id, p.raw FROM messages m JOIN payloads p"
                                    " ON p.message = m.id WHERE m.state = 'quarantined'")
    (tmp_path / "checked.xml").write_bytes(data + b"\n")  # (saved again by the operator's editor)
    out = await asyncio.to_thread(cli, "--config", str(config), "messages", "resubmit",
                                  str(stranger), str(tmp_path / "checked.xml"))
    assert out.startswith(f"message {stranger + 3} corrects message {stranger} (now handled): "), out
    assert "quarantined" not in out, out
    [(meta,)] = states(db, f"SELECT meta FROM messages WHERE id = {stranger + 3}")
    assert "not_from_partner" not in orjson.loads(meta)


async def test_a_receipt_for_our_message_id_but_another_recipient_settles_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = gateway_dir(tmp_path)
    db, receipts = tmp_path / "gateway.db", tmp_path / "sedex" / "receipts"
    unmatched = tmp_path / "sedex" / "receipts-done" / "unmatched"
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "m.xml", message("e2e-foreign"))
        ref = (await sent_refs(db, 1))["e2e-foreign"]
        (receipts / f"receipt__ID_{ref}.xml").write_bytes(
            receipt_for(tmp_path, ref, 100, recipient="T2-9-9"))
        await until(lambda: (unmatched / f"receipt__ID_{ref}.xml").exists())
        await asyncio.sleep(0.3)  # a delivery it settled would show by now
        assert delivery_of(db, "e2e-foreign")[1:] == ("sent", None, 1)
        shown = cli("--config", str(config), "messages", "show", "e2e-foreign")
        assert "receipt.unmatched" in shown and "T2-9-9" in shown, shown
        # its own receipt, under the same name, settles it
        (receipts / f"receipt__ID_{ref}.xml").write_bytes(receipt_for(tmp_path, ref, 100))
        await until(lambda: delivery_of(db, "e2e-foreign")[1] == "delivered")
    assert states(db, "SELECT attempt_ref, delivery IS NULL, recipient FROM receipts ORDER BY id") \
        == [(ref, 1, "T2-9-9"), (ref, 0, "T2-2-1")]
    [(message_id, did, detail)] = states(
        db, "SELECT m.message_id, j.delivery, j.detail FROM journal j JOIN messages m"
            " ON m.id = j.message WHERE j.event = 'receipt.unmatched'")
    assert (message_id, did) == ("e2e-foreign", delivery_of(db, "e2e-foreign")[0])
    said = orjson.loads(detail)
    assert (said["recipient"], said["addressed"], said["partner"]) == ("T2-9-9", "T2-2-1", "canton")
    alerts = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts"]
    assert [a for a in alerts if "none of ours" in a] == [
        f"receipt 100 for attempt {ref}, which is none of ours (it is for recipient T2-9-9,"
        f" the attempt was addressed to T2-2-1): 100 delivered to the recipient: code 100 from"
        f" the test"
        f" (recipient T2-9-9)"], alerts
    assert (tmp_path / "sedex" / "receipts-done" / f"receipt__ID_{ref}.xml").exists()

async def test_files_listed_again_after_a_restart_are_duplicates_the_operator_sees(
        tmp_path: Path) -> None:
    """A crash after storing, before moving: the next start finds the same files again."""
    config = gateway_dir(tmp_path)
    db, registry, sedex = tmp_path / "gateway.db", tmp_path / "registry", tmp_path / "sedex"
    async with running(config, get_plugin_manager()) as gateway:
        drop(registry / "outbox", "m.xml", message("e2e-twice"))
        ref = (await sent_refs(db, 1))["e2e-twice"]
        answer(tmp_path, ref, 100)
        await until(lambda: delivery_of(db, "e2e-twice")[1] == "delivered")
        partner = gateway.settings.partners["canton"].parsed
        now = datetime.now(UTC)
        drop(sedex / "inbox", "data_R.xml", write_message(
            sample_event_report(random.Random(3), reference_message_id="e2e-twice")))
        drop(sedex / "inbox", "envl_R.xml", build_envelope(Envelope(
            "answer-r", partner.message_type, 1, partner.recipient_id, (partner.sender_id,),
            now, now, reference_message_id="e2e-twice")))
        await until(lambda: delivery_of(db, "e2e-twice")[1] == "rejected")
        await until(lambda: (sedex / "processed" / "envl_R.xml").exists())
    # as if the moves had not happened before the crash
    for done, back in ((registry / "done" / "m.xml", registry / "outbox" / "m.xml"),
                       (sedex / "processed" / "data_R.xml", sedex / "inbox" / "data_R.xml"),
                       (sedex / "processed" / "envl_R.xml", sedex / "inbox" / "envl_R.xml")):
        done.rename(back)
    async with running(config, get_plugin_manager()):
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state = 'duplicate'")
                    == [(2,)])
        await until(lambda: not list((sedex / "inbox").iterdir())
                    and not list((registry / "outbox").glob("*.xml")))
        await asyncio.sleep(0.3)  # a second delivery or answer would show by now
    # (by source: which of the two sources stores first after the start is not fixed)
    dups = states(db, "SELECT source, reason FROM messages WHERE state = 'duplicate'"
                      " ORDER BY source")
    assert [(s, r.startswith("same input as message ")) for s, r in dups] == [
        ("canton", True), ("registry", True)]
    assert states(db, "SELECT count(*) FROM deliveries") == [(1,)]
    _id, state, _reason, attempts = delivery_of(db, "e2e-twice")
    assert (state, attempts) == ("rejected", 1)
    assert states(db, "SELECT count(*) FROM attempts") == [(1,)]
    status = cli("--config", str(config), "status", code=1)  # the canton rejected it
    assert "duplicate 2" in status, status
    listed = cli("--config", str(config), "messages", "list", "--state", "duplicate")
    assert listed.count("duplicate") >= 2, listed
