"""The REST push source: a real gateway, real HTTP requests, outcomes read from the store."""

from __future__ import annotations

import asyncio
import io
import random
import time
import zipfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import orjson
import pytest
from lxml import etree

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.contracts import RawInput
from gateway.errors import KeyReuseRejected
from gateway.hookspecs import hookimpl
from gateway.plugin_types import GatewayEvent
from gateway.plugins import get_plugin_manager
from gateway.store import SQLiteStore
from gateway.testing import sample_message
from tests.flow import message, running, states, until
from tests.mounts import fill, run_isolated, tmpfs
from tests.pushing import TOKEN, post, push_gateway, url


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _outbox_has(root: Path, message_id: str) -> bool:
    outbox = root / "sedex" / "outbox"
    return any(message_id.encode() in p.read_bytes()
               for p in outbox.glob("data_*") if p.is_file())


def _processed(db: Path) -> int:
    return int(states(db, "SELECT count(*) FROM messages WHERE state != 'received'")[0][0])


def _count(db: Path) -> int:
    return int(states(db, "SELECT count(*) FROM messages")[0][0])


async def test_a_pushed_message_is_stored_then_delivered_to_the_sedex_outbox(tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        status, answer = await post(session, gw, message("pushed-1"))
        assert status == 202
        # the answer names the stored input: its bytes are committed already
        [(source, raw)] = states(db, "SELECT m.source, p.raw FROM messages m JOIN payloads p"
                                     " ON p.message = m.id WHERE m.id = ?", (answer["id"],))
        assert (source, bytes(raw)) == ("push", message("pushed-1"))
        await until(lambda: _outbox_has(tmp_path, "pushed-1"), timeout=15)
    [(state, mid)] = states(db, "SELECT state, message_id FROM messages WHERE id = ?",
                            (answer["id"],))
    assert (state, mid) == ("routed", "pushed-1")


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
async def test_without_the_right_token_nothing_is_stored(tmp_path: Path, token: str | None) -> None:
    config = push_gateway(tmp_path)
    async with running(config) as gw, aiohttp.ClientSession() as session:
        status, answer = await post(session, gw, message(), token=token)
        assert status == 401
        assert "token" in answer["error"]
        async with session.post(f"http://127.0.0.1:{gw.http.port}/sources/push/messages",  # type: ignore[union-attr]
                                data=message(), headers={"Authorization": "Basic eDp5"}) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert _count(tmp_path / "gateway.db") == 0


async def test_a_token_from_a_file_is_taken(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    config = push_gateway(tmp_path, push='token_files = ["../token"]')
    async with running(config) as gw, aiohttp.ClientSession() as session:
        assert (await post(session, gw, message(), token="from-a-file"))[0] == 202
        assert (await post(session, gw, message(), token="from-a-fil"))[0] == 401


@pytest.mark.parametrize("keys", ["", "tokens_sha256 = []\ntoken_files = []\n"])
def test_check_config_refuses_a_push_source_without_any_token(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: str) -> None:
    """A push source nobody may push to is a mistake, not a closed door: the configuration is
    refused, naming the source, the keys that are missing and why."""
    config = write_initial_config(tmp_path)
    conf = tmp_path / "conf.d" / "10-push.toml"
    conf.write_text(f'[http]\nlisten = "127.0.0.1:0"\n[sources.x]\ntype = "http"\n{keys}')
    assert main(["--config", str(config), "check-config"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{conf}: sources.x: no token: set tokens_sha256 or token_files (else nobody may push)"]


async def test_a_body_over_the_limit_is_413_and_the_refusal_kept_as_evidence(tmp_path: Path) -> None:
    config = push_gateway(tmp_path, push='max_bytes = "4KiB"')
    big = b"<r>" + b"x" * 8192 + b"</r>"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit stops the reading
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    db = tmp_path / "gateway.db"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        declared = await post(session, gw, big)
        streamed = await post(session, gw, chunked())
        assert (await post(session, gw, message()))[0] == 202
    for (status, answer), kept, size in ((declared, b"", "8199 bytes declared"),
                                         (streamed, big[:4096], "more sent, without a declared length")):
        assert status == 413 and answer["error"] == "body over 4096 bytes ([sources.push] max_bytes)"
        [(state, reason, raw)] = states(db, "SELECT state, reason, raw FROM messages JOIN payloads"
                                            " ON message = id WHERE id = ?", (answer["id"],))
        assert (state, bytes(raw)) == ("quarantined", kept)
        assert f"{size}; answered 413, the first {len(kept)} bytes kept here" in reason
    assert _count(db) == 3


async def test_the_start_of_a_body_over_the_limit_is_evidence_and_keeps_no_message_id(
        tmp_path: Path) -> None:
    """What is kept of a body over the limit is evidence, not the document: marked so
    (``kept_bytes``), it is never read as one, nor its header, even when the bytes kept are
    a well-formed eCH-0223 message (here: a message, then blank lines past the limit)."""
    config = push_gateway(tmp_path, push='max_bytes = "4KiB"')
    big = message("big-1") + b"\n" * 8192

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: 4096 bytes are read
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    async with running(config) as gw, aiohttp.ClientSession() as session:
        status, answer = await post(session, gw, chunked())
    assert status == 413
    [(message_id, meta, raw)] = states(
        tmp_path / "gateway.db", "SELECT message_id, meta, raw FROM messages JOIN payloads"
                                 " ON message = id WHERE id = ?", (answer["id"],))
    assert etree.fromstring(bytes(raw)).findtext("{*}header/{*}messageId") == "big-1"
    assert message_id is None
    assert orjson.loads(meta)["kept_bytes"] == "4096"


HOSTILE: dict[str, tuple[bytes, str]] = {
    "malformed": (b"<a><b></a>", "malformed XML"),
    "empty": (b"", "empty"),
    "dtd": (b'<?xml version="1.0"?>\n<!DOCTYPE personEventMessage>\n<personEventMessage/>', "DOCTYPE"),
    "entities": (b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;&b;</r>',
                 "DOCTYPE"),
    "external": (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "DOCTYPE"),
    "zip bomb": (_zip({"m.xml": b"<r/>", "files/zeros.bin": b"\0" * (5 << 20)}), "ratio"),
    "zip escape": (_zip({"m.xml": b"<r/>", "../../evil.txt": b"x"}), "escap"),
    "zip with bad xml": (_zip({"m.xml": b"<!DOCTYPE r><r/>"}), "m.xml"),
    # well-formed to a parser that builds no tree, refused by the one that builds it
    "undeclared prefix": (b"<eCH-0223:personEventMessage/>", "prefix eCH-0223"),
    "zip, undeclared prefix": (_zip({"m.xml": b"<r a:b='1'/>"}), "prefix a"),
    # its central directory says its entry needs zip 6.4, which Python's zipfile refuses
    "zip of an unknown version": (_zip({"m.xml": b"<r/>"}).replace(
        b"PK\x01\x02\x14\x03\x14\x00", b"PK\x01\x02\x14\x03\x40\x00"), "zip file version 6.4"),
}


async def test_hostile_bodies_are_400_with_the_reason_and_kept_in_quarantine(tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        answers = {name: await post(session, gw, data) for name, (data, _why) in HOSTILE.items()}
        # the daemon still takes good input
        assert (await post(session, gw, message("after-hostile")))[0] == 202
        await until(lambda: _outbox_has(tmp_path, "after-hostile"), timeout=15)
    for name, (data, why) in HOSTILE.items():
        status, answer = answers[name]
        assert status == 400, name
        assert why in answer["error"], f"{name}: {answer}"
        [(state, reason, raw)] = states(db, "SELECT state, reason, raw FROM messages JOIN payloads"
                                            " ON message = id WHERE id = ?", (answer["id"],))
        assert (state, reason, bytes(raw)) == ("quarantined", answer["error"], data), name
    assert not list((tmp_path / "sedex" / "outbox").glob("data_*m.xml"))


class _Gate:
    """A registry look-up that waits until opened: processing stalls, the event loop does not."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.asked = 0

    @hookimpl
    def gateway_person_lookup(self, keys: Sequence[str], settings: object) -> object:
        self.asked += 1

        async def wait() -> None:
            await self.open.wait()
        return wait()


async def test_the_answer_never_waits_behind_the_processing_backlog(tmp_path: Path) -> None:
    config = push_gateway(tmp_path, workers=0)
    db = tmp_path / "gateway.db"
    gate = _Gate()
    pm = get_plugin_manager()
    pm.register(gate)
    count = 150  # more than the pipeline's queue holds (64 submits)
    async with running(config, pm) as gw, aiohttp.ClientSession() as session:
        first = await post(session, gw, sample_message("stuck", seed=999))
        await until(lambda: gate.asked == 1)  # processing waits for the registry from now on
        answers = [first, *await asyncio.wait_for(asyncio.gather(
            *(post(session, gw, sample_message(f"backlog-{i}", seed=i)) for i in range(count - 1))),
            timeout=20)]
        assert {status for status, _ in answers} == {202}
        assert gw.pipeline.admission._feeder is not None, "the queue is full: the rest waits in the backlog"
        assert states(db, "SELECT count(*) FROM messages WHERE state = 'received'")[0][0] == count
        gate.open.set()
        await until(lambda: _processed(db) == count, timeout=30)
    ids = sorted(answer["id"] for _, answer in answers)
    assert len(set(ids)) == count


async def test_a_burst_is_answered_first_and_processed_once_the_senders_stop(
        tmp_path: Path) -> None:
    # answers_first far longer than the test: only the senders' quiet lets processing go on
    config = push_gateway(tmp_path)
    (tmp_path / "conf.d" / "20-answers.toml").write_text('[gateway]\nanswers_first = "60s"\n')
    db = tmp_path / "gateway.db"
    count = 80
    async with running(config) as gw, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(post(session, gw, sample_message(f"burst-{i}", seed=i))
                                         for i in range(count)))
        assert {status for status, _ in answers} == {202}
        await until(lambda: _processed(db) == count, timeout=20)


async def test_a_steady_stream_of_pushes_does_not_hold_the_backlog_back(tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    (tmp_path / "conf.d" / "20-answers.toml").write_text('[gateway]\nanswers_first = "200ms"\n')
    db = tmp_path / "gateway.db"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        n = 0
        while _processed(db) < 5:  # one sender, never quiet: each push follows the answer
            status, _answer = await post(session, gw, sample_message(f"stream-{n}", seed=n))
            assert status == 202
            n += 1
            assert n < 2000, "nothing was processed while the pushes went on"
    assert _processed(db) >= 5


async def test_a_backlog_left_at_stop_is_processed_at_the_next_start(tmp_path: Path) -> None:
    config = push_gateway(tmp_path, workers=0, drain="500ms")
    db = tmp_path / "gateway.db"
    gate = _Gate()
    pm = get_plugin_manager()
    pm.register(gate)
    async with running(config, pm) as gw, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(post(session, gw, sample_message(f"left-{i}", seed=i))
                                         for i in range(100)))
        assert {status for status, _ in answers} == {202}
    # stopped with the gate shut: the drain was cut short, nothing was processed
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'received'")[0][0] == 100
    gate.open.set()
    async with running(config, pm):
        await until(lambda: _processed(db) == 100, timeout=30)


async def test_a_repeated_idempotency_key_gets_the_first_answer_also_after_a_restart(
        tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    db = tmp_path / "gateway.db"
    good, bad = message("idem-1"), b"<not-closed>"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        first = await post(session, gw, good, key="order-1")
        rejected = await post(session, gw, bad, key="order-2")
        assert (first[0], rejected[0]) == (202, 400)
        assert await post(session, gw, good, key="order-1") == first
        assert await post(session, gw, bad, key="order-2") == rejected
        await until(lambda: _outbox_has(tmp_path, "idem-1"), timeout=15)
    async with running(config) as gw, aiohttp.ClientSession() as session:
        assert await post(session, gw, good, key="order-1") == first
        assert await post(session, gw, bad, key="order-2") == rejected
        # without a key the same bytes are a new input (a duplicate of the first)
        status, again = await post(session, gw, good)
        assert status == 202 and again["id"] != first[1]["id"]
    assert states(db, "SELECT id, state FROM messages ORDER BY id") == [
        (first[1]["id"], "routed"), (rejected[1]["id"], "quarantined"), (again["id"], "duplicate")]
    assert len(list((tmp_path / "sedex" / "outbox").glob("data_*"))) == 1


async def test_an_idempotency_key_reused_for_other_bytes_is_422_and_nothing_is_stored(
        tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config) as gw, aiohttp.ClientSession() as session:
        status, first = await post(session, gw, message("idem-a"), key="k-1")
        assert status == 202
        status, answer = await post(session, gw, message("idem-b"), key="k-1")
        assert status == 422
        assert answer == {"first": first["id"], "error": (
            f"idempotency key 'k-1' of source push was used for other bytes (message"
            f" {first['id']}); a new message needs a new key")}
        assert (await post(session, gw, b"<bad", key="k-1"))[0] == 422  # quarantine refuses too
        status, answer = await post(session, gw, message(), key="a key with spaces")
        assert status == 400 and "Idempotency-Key" in answer["error"]
        assert (await post(session, gw, message("idem-b"), key="k-2"))[0] == 202
    assert [mid for (mid,) in states(db, "SELECT message_id FROM messages ORDER BY id")] == [
        "idem-a", "idem-b"]


async def test_the_store_keeps_one_input_per_source_and_key(store: SQLiteStore) -> None:
    def raw(source: str, key: str, data: bytes) -> RawInput:
        return RawInput(source, "ref", data, {"idempotency_key": key})

    rows = await store.add_raw([raw("a", "k", b"<x/>"), raw("a", "k", b"<x/>"), raw("b", "k", b"<x/>"),
                                RawInput("a", "ref", b"<y/>", {})])
    (first, new1), (repeat, new2), (other, new3), (_, new4) = rows
    assert (repeat, new1, new2, new3, new4) == (first, True, False, True, True)
    assert other != first
    assert await store.add_raw([raw("a", "k", b"<x/>")]) == [(first, False)]
    assert await store.quarantine_raw(raw("a", "k", b"<x/>"), "why") == first
    with pytest.raises(KeyReuseRejected) as refused:
        await store.add_raw([raw("a", "k", b"<other/>")])
    assert refused.value.first == first
    with pytest.raises(KeyReuseRejected):
        await store.add_raw([raw("a", "n", b"<1/>"), raw("a", "n", b"<2/>")])
    [(mid, new)] = await store.add_raw([raw("a", "n", b"<2/>")])  # the refused batch left no trace
    assert new and mid not in (first, other)


async def pushes_while_the_disk_is_full(root_text: str) -> None:
    """(In a private mount namespace.) The database's disk fills up: each push is answered
    503 with Retry-After at once, and nothing of it is stored; once there is room, 202."""
    root = Path(root_text)
    config = push_gateway(root)
    tmpfs(root / "data", "6m")
    (root / "conf.d" / "20-db.toml").write_text(f'[store]\npath = "{root}/data/gateway.db"\n')
    events = _Events()
    pm = get_plugin_manager()
    pm.register(events)
    answered: dict[str, int] = {}
    async with running(config, pm) as gw, aiohttp.ClientSession() as session:
        assert (await post(session, gw, message("before")))[0] == 202
        filler = fill(root / "data")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for n in range(300):  # the WAL has some room left: until a write needs more
            started = time.monotonic()
            async with session.post(url(gw), data=message(f"full-{n}"), headers=headers) as response:
                answered[f"full-{n}"] = response.status
                took = time.monotonic() - started
                if response.status == 503:
                    assert response.headers["Retry-After"] == "30"
                    assert "disk is full" in (await response.json())["error"]
                    break
        assert answered[f"full-{n}"] == 503 and took < 3, (answered, took)  # not held until room
        async with session.post(url(gw), data=b"<broken", headers=headers) as response:
            assert response.status == 503  # not even the quarantine can be stored
        filler.unlink()
        assert (await post(session, gw, message("after")))[0] == 202
    stored = {mid for (mid,) in states(root / "data" / "gateway.db",
                                       "SELECT message_id FROM messages WHERE source = 'push'")}
    refused = {m for m, status in answered.items() if status == 503}
    assert "before" in stored and "after" in stored and not refused & stored
    assert events.kinds[:1] == ["intake.paused"] and "intake.resumed" in events.kinds


class _Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        if event.kind.startswith("intake."):
            self.kinds.append(event.kind)


def test_pushes_while_the_disk_is_full_are_503_at_once_and_store_nothing(tmp_path: Path) -> None:
    run_isolated("tests.test_http_push:pushes_while_the_disk_is_full", str(tmp_path))


async def test_a_zip_whose_message_is_over_the_document_limit_is_400(tmp_path: Path) -> None:
    """The message at the root of a zip is held to ``max_document_bytes``, as the normaliser
    holds it; a body the push answered 202 for would be quarantined later, unbeknown to the
    sender."""
    config = push_gateway(tmp_path, extra="[limits]\nmax_document_bytes = 4096\n")
    digits = "".join(random.Random(7).choice("0123456789") for _ in range(8000))
    body = _zip({"m.xml": f"<r>{digits}</r>".encode()})
    assert len(body) < 4096
    async with running(config) as gw, aiohttp.ClientSession() as session:
        status, answer = await post(session, gw, body)
    assert status == 400
    assert answer["error"] == ("input is 8007 bytes, more than [limits] max_document_bytes"
                               " (4096) (at m.xml)")
