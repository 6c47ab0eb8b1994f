"""``messages show`` of real cases: a partner down for a day (many attempts), receipts of
one attempt, and sedex pairs the inbox refused."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.cli._render import iso
from gateway.config import write_initial_config
from gateway.contracts import Normalised, RawInput, Route
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.plugins import get_plugin_manager
from gateway.retry import RetryPolicy
from gateway.store import MessageState, Outcome, Processed, SQLiteStore
from tests.flow import drop, message, running, states, until
from tests.test_cli import cli
from tests.test_sedex_inbound import FAST
from tests.test_sedex_transport import PAYLOAD, envelope_bytes

#: Retries at once: a day's attempts are made in a moment.
AT_ONCE = RetryPolicy(initial=0, maximum=0, jitter=0)


async def _routed(db: Path, partner: str = "canton") -> int:
    """A registry message routed to ``partner``; its id."""
    store = SQLiteStore(db)
    store.start()
    try:
        [(mid, _new)] = await store.add_raw([RawInput("registry", "m.xml", message("show-1"), {})])
        tree = etree.ElementTree(etree.Element("x"))
        await store.record_processing([Processed(
            mid, MessageState.ROUTED,
            normalised=Normalised("personEventMessage", "show-1", b"<x/>", tree),
            routes=[Route(partner, "test")])])
        return mid
    finally:
        store.close()


async def _attempts(db: Path, kinds: list[str], *, receipt: ReceiptOutcome | None = None,
                    code: str = "300") -> list[str]:
    """One attempt of each outcome kind at the first due delivery to canton, each answered
    by a receipt of ``receipt`` (if given); their attempt refs."""
    store = SQLiteStore(db)
    store.start()
    try:
        refs = []
        for kind in kinds:
            [c] = await store.claim_due("n1", 60, 1, ["canton"])
            await store.record_outcomes(
                [Outcome(c.delivery, c.attempt_ref, kind,
                         "" if kind == "sent" else "HTTP 503 Service Unavailable")],
                lambda _partner: AT_ONCE, {"canton": 3600.0})
            if receipt is not None:
                await store.record_receipts(
                    [Receipt(c.attempt_ref, receipt, code, "partner not reachable",
                             datetime.now(UTC))], lambda _partner: AT_ONCE)
            refs.append(c.attempt_ref)
        return refs
    finally:
        store.close()


async def _receipts(db: Path, receipts: list[Receipt]) -> None:
    store = SQLiteStore(db)
    store.start()
    try:
        await store.record_receipts(receipts, lambda _partner: AT_ONCE)
    finally:
        store.close()


def _show(capsys: pytest.CaptureFixture[str], config: Path, mid: int, *more: str) -> str:
    code, out, err = cli(capsys, "--config", str(config), "messages", "show", str(mid), *more)
    assert (code, err) == (0, "")
    return out


def _lines(out: str, start: str) -> list[str]:
    """The lines of ``out`` that start with ``start`` (indentation aside)."""
    return [line.strip() for line in out.splitlines() if line.strip().startswith(start)]


def _history(out: str) -> list[str]:
    return [line.strip() for line in out.split("  history:\n", 1)[1].splitlines()]


def test_a_day_of_failed_attempts_is_summed_up_unless_all_are_asked_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A partner down for a day: the first 2 and the last 3 attempts, and their history
    lines; a line says how many more there are. ``--all`` and ``--json`` have them all."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    mid = asyncio.run(_routed(db))
    refs = asyncio.run(_attempts(db, ["transient"] * 40))
    out = _show(capsys, config, mid)
    attempts = _lines(out, "attempt ")
    assert [line.split()[1:3] for line in attempts] == [
        [str(n), refs[n - 1]] for n in (1, 2, 38, 39, 40)]
    assert "... 35 more attempts (--all to show them)" in out
    assert out.index(refs[1]) < out.index("... 35 more attempts") < out.index(refs[37])
    history = _history(out)
    events = [line.split()[1] for line in history if not line.startswith("...")]
    assert events == ["message.received", "message.normalised", "delivery.queued",
                      *["delivery.sending", "delivery.retry"] * 5]
    assert history[7] == "... 70 more lines of attempts 3 to 37 (--all to show them)"
    assert len(out.splitlines()) < 30

    every = _show(capsys, config, mid, "--all")
    assert [line.split()[2] for line in _lines(every, "attempt ")] == refs
    assert [line.split()[1] for line in _history(every)][3:] == [
        "delivery.sending", "delivery.retry"] * 40
    assert "..." not in every
    data = json.loads(_show(capsys, config, mid, "--json"))
    [delivery] = data["deliveries"]
    assert [a["ref"] for a in delivery["attempt_log"]] == refs
    assert len(data["journal"]) == 3 + 80


def test_a_few_attempts_are_all_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Six attempts: the one between the first and the last few is shown, not summed up."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    mid = asyncio.run(_routed(db))
    refs = asyncio.run(_attempts(db, ["transient"] * 6))
    out = _show(capsys, config, mid)
    assert [line.split()[2] for line in _lines(out, "attempt ")] == refs
    assert "..." not in out
    assert out == _show(capsys, config, mid, "--all")


def test_receipts_of_the_attempts_not_shown_are_summed_up_with_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each attempt sent, then failed by its receipt: four history lines per attempt."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    mid = asyncio.run(_routed(db))
    refs = asyncio.run(_attempts(db, ["sent"] * 10, receipt=ReceiptOutcome.FAILED_TRANSIENT))
    out = _show(capsys, config, mid)
    receipts = _lines(out, "receipt ")
    assert [line.split(" for ")[1].split(":")[0] for line in receipts] == [
        refs[n] for n in (0, 1, 7, 8, 9)]
    assert "... 5 more attempts (--all to show them)" in out
    assert "... 5 more receipts for attempts 3 to 7 (--all to show them)" in out
    assert "... 20 more lines of attempts 3 to 7 (--all to show them)" in _history(out)
    assert len(_lines(_show(capsys, config, mid, "--all"), "receipt ")) == 10


def test_each_receipt_says_its_time_and_an_empty_code_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two identical receipts for one attempt (the second is late) differ by their time;
    a receipt without a statusCode says so, and one without info ends with its attempt."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    mid = asyncio.run(_routed(db))
    [ref] = asyncio.run(_attempts(db, ["sent"]))
    first = datetime(2026, 12, 3, 5, 15, 2, 125000, tzinfo=UTC)
    again, empty = first + timedelta(hours=2), first + timedelta(hours=3)
    asyncio.run(_receipts(db, [Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", first)]))
    asyncio.run(_receipts(db, [Receipt(ref, ReceiptOutcome.DELIVERED, "100", "ok", again)]))
    asyncio.run(_receipts(db, [Receipt(ref, ReceiptOutcome.NEEDS_REVIEW, "", "", empty)]))
    out = _show(capsys, config, mid)
    assert _lines(out, "receipt ") == [
        f"receipt 100 {iso(first.timestamp())} delivered for {ref}: ok",
        f"receipt 100 {iso(again.timestamp())} delivered for {ref}: ok",
        f"receipt (no code) {iso(empty.timestamp())} needs_review for {ref}"]
    assert [line.split()[1] for line in _history(out)][-2:] == ["receipt.late", "receipt.late"]


#: Pairs dropped into the sedex inbox, by key: (envelope, payload).
PAIRS = {
    # not an eCH-0090 envelope at all: refused, nobody's
    "broken": (b"<envelope>not sedex</envelope>", PAYLOAD),
    # canton's, but written to a participant id that is not ours: refused
    "elsewhere": (envelope_bytes("in-2", sender_id="T2-2-1", recipient_ids=("T9-9-9",)),
                  PAYLOAD),
    # from a sender that is no partner's: stored, and its eCH-0223 message quarantined
    "stranger": (envelope_bytes("in-3", sender_id="T7-7-7", recipient_ids=("T1-2511-1",)),
                 message("show-stranger")),
}


def inbox_run(root: Path, pairs: dict[str, tuple[bytes, bytes]]) -> tuple[Path, dict[str, int]]:
    """A gateway folder in ``root`` whose run took ``pairs`` (envelope and payload by the key
    of their file names) into its sedex inbox and quarantined each; its configuration and
    the pairs' message ids by key."""
    config = write_initial_config(root)
    (root / "conf.d" / "10-fast.toml").write_text(FAST)
    db = root / "gateway.db"

    async def run() -> None:
        async with running(config, get_plugin_manager()):
            for key, (envelope, payload) in pairs.items():
                drop(root / "sedex" / "inbox", f"data_{key}.xml", payload)
                drop(root / "sedex" / "inbox", f"envl_{key}.xml", envelope)
            await until(lambda: len(states(db, "SELECT id FROM messages WHERE state = ?",
                                           ("quarantined",))) == len(pairs))

    asyncio.run(run())
    return config, {ref: mid for mid, ref in states(db, "SELECT id, ref FROM messages")}


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A gateway folder whose run took :data:`PAIRS`; their message ids by key."""
    return inbox_run(tmp_path_factory.mktemp("refused"), PAIRS)


def test_a_refused_sedex_pair_says_where_its_files_are(
        refused: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]) -> None:
    config, ids = refused
    sedex = (config.parent / "sedex").resolve()
    for key, folder in (("broken", sedex / "processed" / "rejected"),
                        ("elsewhere", sedex / "processed" / "rejected"),
                        ("stranger", sedex / "processed")):
        out = _show(capsys, config, ids[key])
        assert _lines(out, "files:") == [
            f"files:     envl_{key}.xml and data_{key}.xml, moved to {folder}"]
        assert {f"envl_{key}.xml", f"data_{key}.xml"} <= {p.name for p in folder.iterdir()}


def test_a_quarantined_message_says_its_reason_once(
        refused: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]) -> None:
    """Once on the ``reason:`` line: not in the header, not again on the ``sender:`` line,
    which says what the reason does not (or nothing)."""
    config, ids = refused
    said = {}
    for key, mid in ids.items():
        out = _show(capsys, config, mid)
        head = out.split("  history:\n", 1)[0]
        [reason] = _lines(head, "reason:")
        reason = reason.removeprefix("reason:").strip()
        assert head.count(reason) == 1, head
        assert head.splitlines()[0] == f"message {mid}  quarantined"
        said[key] = (reason, _lines(head, "sender:"))
    reason, sender = said["broken"]
    assert reason.startswith("bad sedex envelope: ")
    assert sender == ["sender:    not partner canton: its sender is not known"]
    reason, sender = said["elsewhere"]
    assert reason == ("sedex pair from senderId T2-2-1 addressed to recipientId T9-9-9, none of"
                      " our participant ids (T1-2511-1)")
    assert sender == ["sender:    not partner canton"]
    reason, sender = said["stranger"]
    assert reason.startswith("eCH-0223 not from partner 'canton': sedex senderId T7-7-7 is")
    assert sender == []


def test_a_resubmitted_correction_is_not_said_to_be_the_refused_files(
        refused: tuple[Path, dict[str, int]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The corrected file was given on the command line: the refused pair's file names and
    folder are facts of the pair, not of the correction."""
    root = tmp_path / "gw"
    shutil.copytree(refused[0].parent, root)
    config, mid = root / "gateway.toml", refused[1]["broken"]
    fixed = tmp_path / "fixed.xml"
    fixed.write_bytes(message("show-fixed"))
    _code, out, _ = cli(capsys, "--config", str(config), "messages", "resubmit", str(mid),
                       str(fixed))
    assert out.startswith("message ") and f" corrects message {mid} (now handled)" in out
    new = int(out.split()[1])
    out = _show(capsys, config, new)
    assert _lines(out, "input:")[0].startswith("input:     canton / fixed.xml, ")
    assert _lines(out, "files:") == []
    meta = json.loads(_show(capsys, config, new, "--json"))["meta"]
    assert not {"envelope_name", "payload_name", "moved_to"} & set(meta)
