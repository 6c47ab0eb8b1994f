"""The SOAP polling source against a real SOAP service: messages land in the store, the cursor
survives a restart, acknowledgements follow the commit, faults are waited out.

The gateway runs in-process with its real plugins (tests/flow.py); the service
is :mod:`tests.soap_service` (TLS with client certificates, on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.api import CursorFile, NormaliseContext, PluginContext, RawInput, parse_untrusted, value_at
from gateway.assembly import load_config
from gateway.ech0223 import sample_event_report, write_message
from gateway.errors import ConfigError, StoreUnavailable
from gateway.pipeline import Pipeline
from plugins.soap import cursor
from plugins.soap.options import SoapSourceOptions
from plugins.soap.source import SoapSource, as_bytes
from tests.flow import StubTransport, message, plugin_manager, running, states, until, write_config
from tests.mounts import require_fuse, run_isolated, unanswering
from tests.polling import messages_of, run_until
from tests.soap_service import WSDL, Certs, SoapService, make_certs, serving
from tests.stubs import StubIntake

CURSOR = Path("soap") / "canton.cursor.json"


def source_config(tmp: Path, service: SoapService, *, acknowledge: bool = True) -> Path:
    """The test gateway plus a soap source ``canton`` polling ``service``."""
    ack = ('[sources.canton.acknowledge_arguments]\nmessageId = "ids"\n') if acknowledge else ""
    extra = (
        '[sources.canton]\ntype = "soap"\n'
        + ('acknowledge = "AcknowledgeMessages"\n' if acknowledge else "") +
        f'wsdl = "{WSDL}"\naddress = "{service.url}"\nca_file = "{service.certs.ca}"\n'
        f'client_cert = "{service.certs.client}"\nread_timeout = "2s"\npoll_interval = "100ms"\n'
        '[sources.canton.arguments]\nafter = "cursor"\nlimit = "const:2"\n' + ack)
    return write_config(tmp, extra=extra)


def reports(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(id, eCH-0223 eventReport) pairs, as a canton would answer our messages."""
    rng = random.Random(seed)
    return [(f"canton-{seed}-{n}", write_message(sample_event_report(
        rng, reference_message_id=f"ours-{seed}-{n}"))) for n in range(count)]


def stored(db: Path, source: str = "canton") -> list[tuple[str, str, bytes]]:
    """(ref, state, raw) of what ``source`` stored, in order."""
    return states(db, "SELECT m.ref, m.state, p.raw FROM messages m JOIN payloads p ON p.message = m.id"
                      " WHERE m.source = ? ORDER BY m.id", (source,))


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "pki")


async def test_fetched_messages_are_stored_acknowledged_and_the_cursor_survives_a_restart(
        tmp_path: Path, certs: Certs) -> None:
    first = reports(3, seed=1)
    service = SoapService(certs, outbox=list(first), page=2)
    db = tmp_path / "gateway.db"
    async with serving(service) as svc:
        config = source_config(tmp_path, svc)
        async with running(config):
            await until(lambda: len(svc.acknowledged) == 3)
            # the service has the acknowledgement before the source has its answer and
            # saves the cursor without the ids (stopped before that, it acknowledges again)
            await until(lambda: acknowledged_cursor(tmp_path))
        assert [(ref, raw) for ref, _state, raw in stored(db)] == first
        assert "quarantined" not in {state for _ref, state, _raw in stored(db)}
        assert svc.acknowledged == [mid for mid, _ in first]
        assert json.loads((tmp_path / CURSOR).read_text()) == {"cursor": "2", "unacknowledged": []}

        # Restarted: the next fetch starts after the cursor; only the new message comes.
        second = reports(1, seed=2)
        svc.outbox += second
        svc.calls.clear()
        async with running(config):
            await until(lambda: len(svc.acknowledged) == 4)
            await until(lambda: acknowledged_cursor(tmp_path))
        assert svc.calls[0] == ("FetchMessages", "2", "1")
        assert [(ref, raw) for ref, _state, raw in stored(db)] == first + second
        assert "duplicate" not in {state for _ref, state, _raw in stored(db)}


def acknowledged_cursor(root: Path) -> bool:
    """Whether the source saved its cursor with nothing left to acknowledge."""
    try:
        return json.loads((root / CURSOR).read_text())["unacknowledged"] == []
    except (OSError, ValueError):
        return False


async def test_messages_fetched_again_after_a_lost_cursor_are_duplicates(
        tmp_path: Path, certs: Certs) -> None:
    # As after a crash between the commit and saving the cursor: the same messages come again.
    first = reports(2, seed=3)
    db = tmp_path / "gateway.db"
    async with serving(SoapService(certs, outbox=list(first))) as svc:
        config = source_config(tmp_path, svc, acknowledge=False)
        async with running(config):
            await until(lambda: len(stored(db)) == 2)
            await until(lambda: (tmp_path / CURSOR).exists())
        (tmp_path / CURSOR).unlink()
        async with running(config):
            await until(lambda: len(stored(db)) == 4)
    assert [state for _ref, state, _raw in stored(db)][2:] == ["duplicate", "duplicate"]
    assert svc.acknowledged == []


async def test_a_failing_service_is_polled_again_and_nothing_is_lost(
        tmp_path: Path, certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    bad = ("canton-bad", b"<not-closed>")
    messages = [*reports(2, seed=4), bad]
    db = tmp_path / "gateway.db"
    said = "no resident Anna Muster (VN 756.1234.5678.97)"
    async with serving(SoapService(certs, outbox=list(messages), fetch_faults=3,
                                   fault_text=said)) as svc:
        config = source_config(tmp_path, svc)
        async with running(config):
            await until(lambda: len(svc.acknowledged) == 3)
        faults = [c for c in svc.calls if c[2] == "server"]
    assert len(faults) == 3
    rows = stored(db)
    assert [(ref, raw) for ref, _state, raw in rows] == messages
    # Bad input is kept, quarantined with its reason, and the good messages go on.
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE ref = 'canton-bad'")
    assert rows[2][1] == "quarantined" and "malformed XML" in reason
    # The fault is logged, without the person it names.
    [logged] = [r.getMessage() for r in caplog.records if "soap source canton failed" in r.getMessage()]
    assert logged == "soap source canton failed: SOAP fault soap:Server: '…'"


async def test_a_message_over_the_limit_is_evidence_and_keeps_no_message_id(
        tmp_path: Path, certs: Certs) -> None:
    """What is kept of a message over ``[limits] max_document_bytes`` (its first
    ``max_kept_bytes``) is evidence, not the document: marked so (``kept_bytes``, with the
    whole message's size and SHA-256), it is never read as one, nor its header, even when
    the bytes kept are a well-formed eCH-0223 message (a message, then blank lines)."""
    big = message("big-1") + b"\n" * 16384
    db = tmp_path / "gateway.db"
    async with serving(SoapService(certs, outbox=[("canton-big", big)])) as svc:
        config = source_config(tmp_path, svc, acknowledge=False)
        with config.open("a") as f:
            f.write("[limits]\nmax_document_bytes = 8192\nmax_kept_bytes = 4096\n")
        async with running(config):
            await until(lambda: len(stored(db)) == 1)
    [(message_id, reason, meta, raw)] = states(
        db, "SELECT message_id, reason, meta, raw FROM messages JOIN payloads ON message = id")
    assert bytes(raw) == big[:4096]
    assert parse_untrusted(bytes(raw), max_bytes=8192).findtext("{*}header/{*}messageId") == "big-1"
    assert message_id is None
    assert json.loads(meta) == {"soap_message_id": "canton-big", "size": str(len(big)),
                                "sha256": hashlib.sha256(big).hexdigest(), "kept_bytes": "4096"}
    assert reason.startswith(f"message of {len(big)} bytes is larger than 8192 bytes")


async def test_a_source_restarted_after_a_failure_polls_again(
        tmp_path: Path, certs: Certs, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # A store error escapes the poll loop: the daemon runs the same source object again,
    # which used to find its client's thread pool shut down and fail every poll after.
    monkeypatch.setattr("gateway.supervision.RESTART_MIN", 0.05)
    submit, failures = Pipeline.submit, []

    async def locked_once(self: Pipeline, raws: Sequence[RawInput], **kwargs: Any) -> list[int]:
        if not failures:
            failures.append(len(raws))
            raise StoreUnavailable("database is locked")
        return await submit(self, raws, **kwargs)

    monkeypatch.setattr(Pipeline, "submit", locked_once)
    messages = [(f"office-{n}", message(f"office-{n}", documents=False)) for n in range(2)]
    db = tmp_path / "gateway.db"
    async with serving(SoapService(certs, outbox=list(messages))) as svc:
        # a source of registry messages (not the partner's answers), routed to the partner
        config = source_config(tmp_path, svc)
        config.write_text(config.read_text().replace("[sources.canton", "[sources.office").replace(
            'type = "soap"\n', 'type = "soap"\nroute_to = ["canton"]\n'))
        async with running(config):
            await until(lambda: len(svc.acknowledged) == 2)
            await until(lambda: len(StubTransport.sent["canton"]) == 2)
    assert failures == [2]
    [restart] = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert "source office failed: database is locked" in restart
    # fetched again from the same cursor after the restart, stored once, routed, acknowledged
    assert [c[:2] for c in svc.calls if c[0] == "FetchMessages"][:2] == [
        ("FetchMessages", ""), ("FetchMessages", "")]
    rows = stored(db, "office")
    assert [(ref, raw) for ref, _state, raw in rows] == messages
    assert [state for _ref, state, _raw in rows] == ["routed", "routed"]
    assert [item.message_id for item in StubTransport.sent["canton"]] == ["office-0", "office-1"]
    assert svc.acknowledged == ["office-0", "office-1"]
    assert "cannot schedule new futures" not in caplog.text


def test_check_config_names_a_fetch_argument_the_operation_lacks(tmp_path: Path,
                                                                 certs: Certs) -> None:
    config = source_config(tmp_path, SoapService(certs, url="https://127.0.0.1:1/x"))
    config.write_text(config.read_text().replace('after = "cursor"', 'since = "cursor"'))
    with pytest.raises(ConfigError) as caught:
        load_config(config, plugin_manager())
    [(_file, key, reason)] = caught.value.problems
    assert key == "sources.canton"
    assert reason == "FetchMessages has no argument 'since' (it has: after, limit)"


async def test_the_cursor_file_round_trips_and_a_broken_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "soap" / "canton.cursor.json"
    file = CursorFile(path, 0o600)
    assert await cursor.load(file) == cursor.PollState()
    await cursor.save(file, cursor.PollState("41", ("a", "b")))
    assert await cursor.load(file) == cursor.PollState("41", ("a", "b"))
    assert [p.name for p in path.parent.iterdir()] == ["canton.cursor.json"]
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not a cursor file"):
        await cursor.load(file)
    assert path.read_text() == "{not json"  # left for the operator


@pytest.mark.parametrize("content", ["[1, 2]", '"x"', "7", "null"])
async def test_a_cursor_file_of_json_that_is_no_object_is_named(tmp_path: Path,
                                                                content: str) -> None:
    path = tmp_path / "canton.cursor.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="is not a cursor file: unexpected content"):
        await cursor.load(CursorFile(path))
    assert path.read_text() == content  # left for the operator


def test_a_text_payload_is_stored_in_the_encoding_it_declares() -> None:
    """A service that hands the document out as text (xsd:string) hands out characters; the
    bytes stored are the document's in the encoding its declaration names."""
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<m><name>Müller</name></m>'
    stored = as_bytes(latin)
    assert stored == latin.encode("iso-8859-1")
    assert parse_untrusted(stored, max_bytes=1000).getroot()[0].text == "Müller"
    plain = "<m><name>Müller</name></m>"  # no declaration: UTF-8, as XML says
    assert as_bytes(plain) == plain.encode("utf-8")
    # a character the declared encoding lacks becomes a character reference
    euro = '<?xml version="1.0" encoding="ISO-8859-1"?><m>€ Müller</m>'
    assert parse_untrusted(as_bytes(euro), max_bytes=1000).getroot().text == "€ Müller"


def test_answer_paths() -> None:
    answer = {"cursor": "7", "message": [{"messageId": "a", "payload": b"<x/>"}]}
    assert value_at(answer, "message.0.messageId") == "a"
    assert value_at(answer, "message.1.messageId") is None
    assert value_at(answer, "nothing.here") is None
    assert value_at(answer, ".") is answer
    assert value_at({"nationalities": ["DE", "FR"]}, "nationalities.1") == "FR"
    assert value_at({"n": "DE"}, "n.0") is None  # a number picks from lists only
    # a key that holds null is told from one that is absent when asked to
    assert value_at({"n": None}, "n", missing="absent") is None
    assert value_at({"n": None}, "m", missing="absent") == "absent"
    assert value_at({"n": None}, "n.0", missing="absent") == "absent"


def cursor_unanswering(root_text: str) -> None:
    """(In a private mount namespace.) The data folder stops answering (its share's server
    is gone) once the source saved its state: saving the next is given up on after its
    timeout, said once, and the same messages fetched again (duplicates, for the store);
    a source started meanwhile gives up reading its state and fetches nothing; the event
    loop goes on all the while, and each source stops while the folder still hangs."""
    root = Path(root_text)
    data = root / "data"
    context = PluginContext("canton", data, NormaliseContext(1 << 20, 100, 1 << 20, 100), None)
    said = messages_of("plugins.soap")
    hang = contextlib.ExitStack()
    hangs: list[Callable[[], bool]] = []

    async def polls() -> None:
        async with serving(SoapService(make_certs(root / "pki"), outbox=reports(2, seed=7),
                                       page=2)) as svc:
            settings = {"wsdl": str(WSDL), "address": svc.url, "ca_file": str(svc.certs.ca),
                        "client_cert": str(svc.certs.client), "poll_interval": "100ms",
                        "arguments": {"after": "cursor", "limit": "const:2"}}
            first = SoapSource(SoapSourceOptions.model_validate(settings), context)
            state = first.state_file.path
            writing = (f"soap source canton failed: writing its cursor {state}: not done"
                       " within 1s (does its file system hang?)")
            fetched = [("FetchMessages", "1", "2")]  # the messages after the state saved

            def stops_there() -> bool:
                if first.state == cursor.PollState("1") and not hangs:  # saved: it hangs now
                    hangs.append(hang.enter_context(unanswering(data, safety=20)))
                    svc.outbox += reports(2, seed=8)
                return svc.calls[-3:] == fetched * 3  # the same messages, twice since
            await run_until(first, first.state_file, StubIntake(), stops_there)
            assert said.count(writing) == 1, said  # (then every 5 minutes)
            assert first.state == cursor.PollState("1")

            calls = len(svc.calls)
            reading = writing.replace("writing", "reading")
            second = SoapSource(SoapSourceOptions.model_validate(settings), context)
            await run_until(second, second.state_file, StubIntake(), lambda: reading in said)
            assert len(svc.calls) == calls
            assert hangs[0](), "the source waited until the folder was cut off"

    with hang:
        asyncio.run(polls())
        assert hangs[0](), "the run ended only once the folder was cut off"


def test_a_state_folder_that_does_not_answer_holds_up_nothing(tmp_path: Path) -> None:
    """The state lives in the gateway's data folder, which may be a share: reading and
    writing it are bounded calls away from the event loop, given up on as a transient
    failure (the messages are fetched again), not waits that hold up the event loop, or
    the stop, for as long as the share."""
    require_fuse()
    run_isolated("tests.test_soap_source:cursor_unanswering", str(tmp_path))
