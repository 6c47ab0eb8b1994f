"""The way back, end to end: the canton's messages land on the resident and the case, in the registry.

The real daemon on the folders ``init`` writes: the registry drops an eCH-0020
event, the gateway sends it over sedex, the sedex simulator delivers it and the
canton answers (``plugins.sedex.sim_answers``, what ``sedex-sim --answer`` does)
into the gateway's sedex inbox; the answer must end in ``registry/inbox``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.archive import build_zip, safe_unzip
from gateway.config._template import INITIAL_CONFIG
from gateway.contracts import Attachment
from gateway.documents import add_documents, describe
from gateway.ech0223 import (
    PersonIdentificationLight,
    sample_event_report,
    sample_person_event,
    write_message,
)
from gateway.errors import LocalFault
from gateway.outbound import OutboundItem
from gateway.plugins import get_plugin_manager
from gateway.vn import vn_check_digit_ok
from plugins.folder.transport import FolderTransportOptions, file_name, write_delivery
from plugins.sedex.envelope import Envelope, build_envelope
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.sim_answers import Answerer
from tests.flow import (
    FIXTURES,
    drop,
    message,
    plugin_manager,
    running,
    states,
    until,
    write_config,
)
from tests.mounts import ext4, frozen, run_isolated
from tests.official import official_xsd
from tests.test_sedex_e2e import cli, gateway_dir
from tests.test_sedex_transport import CANTON, envelope_bytes, stuck_threads

CORPUS = Path(__file__).parent / "fixtures" / "ech0020"
REPO = Path(__file__).parent.parent
#: A foreign resident of baseDelivery.xml, and an event about them the default rules forward.
VN, LOCAL = "7562328558609", "MU.230:100139"
EVENT = "changeResidencePermit-prolongationB.xml"


@pytest.fixture(autouse=True)
def _cli_knows_the_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line loads the stub transport too (the partners of ``write_config``)."""
    monkeypatch.setattr("gateway.cli.get_plugin_manager", plugin_manager)


async def _seeded(root: Path, db: Path) -> None:
    """The registry's baseDelivery, stored as person state."""
    drop(root / "registry" / "outbox", "baseDelivery.xml",
         (CORPUS / "baseDelivery.xml").read_bytes())
    await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])


def _answering_canton(root: Path, seed: int) -> SedexSimulator:
    """The sedex client and the canton behind it, answering every message it receives."""
    sedex = root / "sedex"
    return SedexSimulator(sedex / "outbox", sedex / "receipts", sedex / "processed",
                          root / "canton", poll_interval=0.05,
                          answer=Answerer(sedex / "inbox", "message", seed=seed))


async def test_the_cantons_answer_reaches_the_registry_on_the_resident_and_the_case(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "registry" / "inbox"
    sim = _answering_canton(tmp_path, seed=3)
    stop = asyncio.Event()
    async with running(config, get_plugin_manager()):
        task = asyncio.create_task(sim.run(stop))
        await _seeded(tmp_path, db)
        drop(tmp_path / "registry" / "outbox", EVENT, (CORPUS / EVENT).read_bytes())
        await until(lambda: len(list(inbox.glob("ech0223-*.xml"))) == 1, timeout=20)
        stop.set()
        await task
    [(out_id, out_mid)] = states(db, "SELECT id, message_id FROM messages WHERE source = 'registry'"
                                     " AND state = 'routed'")
    [(in_id, state, ref)] = states(db, "SELECT id, state, reference_message_id FROM messages"
                                       " WHERE source = 'canton'")
    assert (state, ref) == ("routed", out_mid)
    assert states(db, "SELECT partner, state FROM deliveries ORDER BY id") == [
        ("canton", "delivered"), ("registry", "delivered")]
    [written] = inbox.glob("ech0223-*.xml")
    assert b"personEventMessage" in written.read_bytes() and out_mid.encode() in written.read_bytes()
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")], "no temporary file left"

    person = json.loads(cli("--config", str(config), "persons", "show", VN, "--json"))
    assert [m["id"] for m in person["messages"]][-2:] == [out_id, in_id]
    assert [m["direction"] for m in person["messages"]][-2:] == ["out", "in"]
    [case] = json.loads(cli("--config", str(config), "cases", "list", "--json"))
    shown = json.loads(cli("--config", str(config), "cases", "show", str(case["id"]), "--json"))
    assert shown["partner"] == "canton" and shown["person"] == person["id"]
    assert [(m["id"], m["direction"]) for m in shown["messages"]] == [(out_id, "out"),
                                                                       (in_id, "in")]
    text = cli("--config", str(config), "cases", "show", str(case["id"]))
    assert " out " in text and " in " in text
    assert person["cases"] == [case["id"]]  # JSON: the ids of the person's cases
    shown_person = cli("--config", str(config), "persons", "show", VN).splitlines()
    assert f"  case ids: {case['id']} (ech-gateway cases show ID)" in shown_person


# -- the way back with the stub canton: matching, review, the registry down, scope ----------

#: The registry the canton's messages go to, and a folder source bringing the canton's
#: messages (as a REST or SOAP source would: ``partner = "canton"``).
WAY_BACK = ('[partners.registry]\ntransport = "folder"\nrole = "registry"\n'
            '[partners.registry.folder]\npath = "registry-inbox"\n'
            '[sources.from-canton]\ntype = "folder"\npath = "from-canton"\npartner = "canton"\n'
            'poll_interval = "50ms"\nsettle = "50ms"\n')
#: A second person with the names and date of birth of the first (VN, local id differ).
TWIN_VN = "7569999999991"
#: Another resident of baseDelivery.xml, found by local id.
OTHER_VN, OTHER_LOCAL = "7566202763493", ("MU.230", "100140")


def _site(tmp_path: Path, partner: str = "", extra: str = "", *,
          registry_inbox: bool = True) -> Path:
    """A gateway with the way back: the canton's folder, and the registry's inbox unless not."""
    config = write_config(tmp_path, partner=partner, extra=WAY_BACK + extra)
    (tmp_path / "from-canton").mkdir()
    if registry_inbox:
        (tmp_path / "registry-inbox").mkdir()
    return config


async def _ours_routed(root: Path, db: Path, about: bytes) -> None:
    """The residents seeded, then our message ``ours-1`` about ``about`` (a VN) routed."""
    await _residents(root, db)
    drop(root / "in", "out.xml", _from_canton("ours-1", about))
    await until(lambda: _state_of(db, "ours-1") == "routed")


async def _residents(root: Path, db: Path, twin: bool = False) -> None:
    """baseDelivery.xml as person state; with ``twin``, a second Ardita Shala born 1997-11-23."""
    base = (CORPUS / "baseDelivery.xml").read_bytes()
    drop(root / "in", "base.xml", base)
    files = 1
    if twin:
        assert vn_check_digit_ok(TWIN_VN)
        drop(root / "in", "twin.xml", base.replace(VN.encode(), TWIN_VN.encode())
             .replace(b"<eCH-0044:personId>100139<", b"<eCH-0044:personId>900139<")
             .replace(b"33850216.9", b"99999999.9"))
        files = 2
    await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state = 'not_relevant'"
                                   " AND source = 'registry'") == [(files,)], timeout=20)


def _from_canton(message_id: str, ident: bytes = b"", reference: str | None = None) -> bytes:
    """A canton's personEventMessage about the person ``ident`` names (elements before
    officialName), or about Anna Muster; with ``reference``: answering that message."""
    data = message(message_id)
    if ident:
        data = data.replace(b"<eCH-0044:officialName>", ident + b"<eCH-0044:officialName>", 1)
    if reference:
        data = data.replace(b"</eCH-0039:messageId>", b"</eCH-0039:messageId>"
                            b"<eCH-0039:referenceMessageId>" + reference.encode()
                            + b"</eCH-0039:referenceMessageId>", 1)
    return data


def _shala_by_names(message_id: str) -> bytes:
    return (message(message_id).replace(b">Muster<", b">Shala<").replace(
        b"<eCH-0044:firstName>Anna</eCH-0044:firstName>",
        b"<eCH-0044:firstName>Ardita</eCH-0044:firstName><eCH-0044:dateOfBirth>"
        b"<eCH-0044:yearMonthDay>1997-11-23</eCH-0044:yearMonthDay></eCH-0044:dateOfBirth>"))


def _local(category: str, pid: str) -> bytes:
    return (f"<eCH-0044:localPersonId><eCH-0044:personIdCategory>{category}"
            f"</eCH-0044:personIdCategory><eCH-0044:personId>{pid}</eCH-0044:personId>"
            "</eCH-0044:localPersonId>").encode()


def _state_of(db: Path, message_id: str) -> str:
    found = states(db, "SELECT state FROM messages WHERE message_id = ?", (message_id,))
    return str(found[0][0]) if found else ""


async def test_nobody_or_two_residents_wait_for_review_until_the_operator_assigns(
        tmp_path: Path) -> None:
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    c = str(config)
    async with running(config):
        await _residents(tmp_path, db, twin=True)
        drop(tmp_path / "from-canton", "a.xml", _from_canton("c-nobody"))
        drop(tmp_path / "from-canton", "b.xml", _shala_by_names("c-twins"))
        drop(tmp_path / "from-canton", "c.xml", _from_canton("c-local", _local(*OTHER_LOCAL)))
        await until(lambda: states(db, "SELECT message_id, state FROM messages WHERE source ="
                                       " 'from-canton' ORDER BY message_id") == [
            ("c-local", "routed"), ("c-nobody", "needs_review"), ("c-twins", "needs_review")])
        nobody = cli("--config", c, "messages", "show", "c-nobody")
        assert "needs_review" in nobody and "candidates (0): none" in nobody
        twins = cli("--config", c, "messages", "show", "c-twins")
        assert "candidates (2):" in twins
        assert f"vn:{VN}" in twins and f"vn:{TWIN_VN}" in twins
        status = cli("--config", c, "status", code=1)
        assert "2 partners' messages whose resident is not found" in status
        # a registry that could not be searched is searched again by a replay: said too
        [hint] = [line for line in status.splitlines() if "resident is not found" in line]
        assert "messages assign ID --person VN" in hint and "messages replay ID" in hint
        # the list status points to says why each waits
        listed = cli("--config", c, "messages", "list", "--state", "needs_review").splitlines()
        waiting = states(db, "SELECT id, reason FROM messages WHERE state = 'needs_review'"
                             " ORDER BY id DESC")
        assert [line.split(None, 4)[3:] for line in listed[1:]] == [
            [message_id, reason] for message_id, reason in zip(
                ("c-twins", "c-nobody"), (r for _i, r in waiting), strict=True)]
        assert "no resident matches the person of this message" in listed[2]

        # a person neither the gateway nor the registry knows: still waiting, and why (exit 1)
        unknown = await asyncio.to_thread(
            cli, "--config", c, "messages", "assign", "c-nobody", "--person", "7561234567897",
            code=1)
        assert ": assigned, but needs_review: the person assigned (756.****.****.97) is known" \
               " neither to the gateway nor to the registry" in unknown
        # the command line's own event loop, as from a shell
        assert "now routed" in await asyncio.to_thread(
            cli, "--config", c, "messages", "assign", "c-twins", "--person", "756.2328.5586.09")
        assert "now routed" in await asyncio.to_thread(
            cli, "--config", c, "messages", "assign", "c-nobody", "--person", ":".join(OTHER_LOCAL))
        await until(lambda: len(list((tmp_path / "registry-inbox").glob("*.xml"))) == 3)
        await asyncio.to_thread(cli, "--config", c, "messages", "assign", "c-local",
                                "--person", VN, code=1)  # not waiting for review
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'needs_review'") == [(0,)]
    assert "0 partners'" not in cli("--config", c, "status")
    person = json.loads(cli("--config", c, "persons", "show", VN, "--json"))
    assert [m["direction"] for m in person["messages"] if m["source"] == "from-canton"] == ["in"]
    other = json.loads(cli("--config", c, "persons", "show", OTHER_VN, "--json"))
    assert sorted(m["source"] for m in other["messages"] if m["direction"] == "in") == [
        "from-canton", "from-canton"]
    journal = [json.loads(d) for (d,) in states(
        db, "SELECT detail FROM journal WHERE event = 'message.assigned' ORDER BY seq")]
    assert [j["keys"] for j in journal] == [1, 1, 1]
    # the registry's name is quoted: init names it "registry" ("to the registry registry")
    [(why,)] = states(db, "SELECT DISTINCT detail ->> 'reason' FROM journal"
                          " WHERE event = 'message.decided' AND detail ->> 'reason' LIKE"
                          " '%found by operator%'")
    assert why == "from partner canton, about a resident found by operator: to the registry" \
                  " 'registry'"


async def test_a_local_id_of_a_resident_with_another_vn_is_not_that_resident(
        tmp_path: Path) -> None:
    """The message's VN is nobody's the gateway knows, its local id a resident's whose VN
    differs: two people (as for names and date of birth), so it waits for review rather
    than reach the registry on the wrong resident."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    stranger = f"<eCH-0044:vn>{TWIN_VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "a.xml",
             _from_canton("c-clash", stranger + _local(*OTHER_LOCAL)))
        drop(tmp_path / "from-canton", "b.xml", _from_canton(
            "c-same", f"<eCH-0044:vn>{OTHER_VN}</eCH-0044:vn>".encode() + _local(*OTHER_LOCAL)))
        await until(lambda: all(_state_of(db, m) in ("routed", "needs_review", "quarantined")
                                for m in ("c-clash", "c-same")))
    assert (_state_of(db, "c-clash"), _state_of(db, "c-same")) == ("needs_review", "routed")
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE message_id = 'c-clash'")
    assert reason.startswith("no resident matches the person of this message (its local"
                             " person id is a resident's with another VN): assign one")


async def test_the_registry_folder_missing_keeps_the_messages_until_it_is_there(
        tmp_path: Path) -> None:
    config = _site(tmp_path, registry_inbox=False)
    db, inbox = tmp_path / "gateway.db", tmp_path / "registry-inbox"
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "a.xml", _from_canton("c-1", _local(*OTHER_LOCAL)))
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("registry", "sending")])
        await until(lambda: states(db, "SELECT count(*) FROM journal WHERE event ="
                                       " 'partner.paused'") == [(1,)])
        await asyncio.sleep(0.5)
        assert states(db, "SELECT state, attempts FROM deliveries") == [("sending", 1)]
        inbox.mkdir()
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)],
                    timeout=20)
    [written] = inbox.iterdir()
    assert written.name.startswith("ech0223-") and b"c-1" in written.read_bytes()


async def test_answers_correlate_only_with_what_their_partner_was_sent(tmp_path: Path) -> None:
    partners = ('[partners.canton]\ntransport = "stub"\n[partners.canton.stub]\n'
                '[partners.other]\ntransport = "stub"\n[partners.other.stub]\n')
    config = _site(tmp_path, partner=partners, extra=(
        '[sources.from-other]\ntype = "folder"\npath = "from-other"\npartner = "other"\n'
        'poll_interval = "50ms"\nsettle = "50ms"\n'))
    (tmp_path / "from-other").mkdir()
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _ours_routed(tmp_path, db, ardita)
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("canton", "delivered")])
        # the other partner's message names ours: no case of the canton's, no settling
        drop(tmp_path / "from-other", "x.xml", _rejecting("other-1", "ours-1"))
        await until(lambda: _state_of(db, "other-1") == "routed")
        drop(tmp_path / "from-canton", "y.xml", _from_canton("canton-1", ardita, "ours-1"))
        await until(lambda: _state_of(db, "canton-1") == "routed")
        drop(tmp_path / "from-canton", "z.xml", _rejecting("canton-2", "ours-1"))
        await until(lambda: _state_of(db, "canton-2") == "routed")
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(3,)])
    assert states(db, "SELECT state FROM deliveries WHERE partner = 'canton'") == [("rejected",)]
    cases = {c["partner"]: c for c in json.loads(cli("--config", str(config), "cases", "list",
                                                     "--json"))}
    assert sorted(cases) == ["canton", "other"]
    canton = json.loads(cli("--config", str(config), "cases", "show", str(cases["canton"]["id"]),
                            "--json"))
    assert [(m["message_id"], m["direction"]) for m in canton["messages"]] == [
        ("ours-1", "out"), ("canton-1", "in"), ("canton-2", "in")]
    other = json.loads(cli("--config", str(config), "cases", "show", str(cases["other"]["id"]),
                           "--json"))
    assert [m["message_id"] for m in other["messages"]] == ["other-1"]


def _rejecting(message_id: str, reference: str, vn: str = VN, to: str = "T1-2511-1") -> bytes:
    """A negative eventReport about Ardita Shala (with ``vn``) answering ``reference``,
    addressed to ``to`` (its recipientId: who sent what it answers)."""
    report = sample_event_report(random.Random(5), reference_message_id=reference)
    report = report.model_copy(update={
        "header": report.header.model_copy(update={"message_id": message_id,
                                                   "recipient_id": [to]}),
        "response": report.response.model_copy(update={
            "person_identification": PersonIdentificationLight(
                vn=int(vn), official_name="Shala", first_name="Ardita")})})
    return write_message(report)


async def test_an_answer_lands_on_the_message_of_the_registry_it_is_addressed_to(
        tmp_path: Path) -> None:
    """Two registries each sent their message ``nr-7`` (about two residents): the canton's
    rejection addressed to the second rejects the second's, and joins its case; one
    addressed to neither settles nothing and says so, rather than guess."""
    config = _site(tmp_path, extra=(
        '[sources.other]\ntype = "folder"\npath = "other"\ndone_dir = "done-other"\n'
        'poll_interval = "50ms"\nsettle = "50ms"\nroute_to = ["canton"]\n'))
    (tmp_path / "other").mkdir()
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    other_vn = f"<eCH-0044:vn>{OTHER_VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "in", "7.xml", _from_canton("nr-7", ardita))
        drop(tmp_path / "other", "7.xml",
             _from_canton("nr-7", other_vn).replace(b"T1-2511-1", b"T1-261-1"))
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("canton", "delivered")] * 2)
        [(ours,)] = states(db, "SELECT id FROM messages WHERE source = 'registry'"
                               " AND message_id = 'nr-7'")
        [(theirs,)] = states(db, "SELECT id FROM messages WHERE source = 'other'")
        drop(tmp_path / "from-canton", "r.xml",
             _rejecting("canton-1", "nr-7", vn=OTHER_VN, to="T1-261-1"))
        await until(lambda: _state_of(db, "canton-1") == "routed")
        drop(tmp_path / "from-canton", "unsure.xml",
             _rejecting("canton-2", "nr-7", to="T1-999-1"))
        await until(lambda: _state_of(db, "canton-2") == "routed")
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(2,)])
    assert states(db, "SELECT message, state FROM deliveries WHERE partner = 'canton'"
                      " ORDER BY message") == sorted([(ours, "delivered"), (theirs, "rejected")])
    [(answer, case)] = states(db, "SELECT m.id, cm.case_id FROM messages m JOIN case_messages cm"
                                  " ON cm.message = m.id WHERE m.message_id = 'canton-1'")
    in_case = states(db, "SELECT message, direction FROM case_messages WHERE case_id = ?",
                     (case,))
    assert {(theirs, "out"), (answer, "in")} <= set(in_case)
    assert ours not in [m for m, _d in in_case]
    [(unsure, reason)] = states(db, "SELECT id, reason FROM messages"
                                    " WHERE message_id = 'canton-2'")
    named = ", ".join(f"{m} from sender sedex://{sender}" for m, sender in sorted(
        [(ours, "T1-2511-1"), (theirs, "T1-261-1")]))  # whichever source stored first
    assert reason.startswith(f"referenceMessageId nr-7 names 2 messages sent to canton ({named})")
    [(placed,)] = states(db, "SELECT detail FROM journal WHERE message = ? AND event ="
                             " 'message.case'", (unsure,))
    placed = json.loads(placed)  # joined by its other references, answering neither message
    assert placed["by"] != "referenceMessageId" and "answers" not in placed
    assert placed["unplaced"].startswith("referenceMessageId nr-7 names 2 messages exchanged"
                                         " with canton")


async def test_an_answer_assigned_after_review_is_applied_once(tmp_path: Path) -> None:
    """The canton's rejection names a VN nobody has: it rejects our message at once and waits
    for review; once assigned it goes to the registry, and is not applied a second time."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _ours_routed(tmp_path, db, ardita)
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("canton", "delivered")])
        drop(tmp_path / "from-canton", "z.xml", _rejecting("canton-2", "ours-1", vn=TWIN_VN))
        await until(lambda: _state_of(db, "canton-2") == "needs_review")
        assert states(db, "SELECT state FROM deliveries") == [("rejected",)]
        assert "now routed" in await asyncio.to_thread(
            cli, "--config", str(config), "messages", "assign", "canton-2", "--person", VN)
        await until(lambda: states(db, "SELECT partner, state FROM deliveries ORDER BY id") == [
            ("canton", "rejected"), ("registry", "delivered")])
    assert states(db, "SELECT event FROM journal WHERE event LIKE 'message.answer%'"
                      " OR event = 'delivery.rejected' ORDER BY seq") == [
        ("message.answer",), ("delivery.rejected",), ("message.answer_repeated",)]


@pytest.mark.parametrize(("version", "fixture"), [
    ("1.0", "valid-pem10-full-persondata.xml"), ("1.3", "valid-pem13-full-persondata.xml"),
    ("1.4", "valid-pem14-full-persondata.xml")])
async def test_a_canton_on_an_older_version_is_heard(tmp_path: Path, version: str,
                                                     fixture: str) -> None:
    partner = (f'[partners.canton]\ntransport = "stub"\nech0223_version = "{version}"\n'
               '[partners.canton.stub]\n')
    config = _site(tmp_path, partner=partner)
    db = tmp_path / "gateway.db"
    data = (FIXTURES / fixture).read_bytes().replace(b">7561234567897<", f">{VN}<".encode())
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "old.xml", data)
        drop(tmp_path / "from-canton", "bad.xml", data.replace(b"<eCH-0223:personEvent>",
                                                               b"<eCH-0223:personEvent>x", 1))
        await until(lambda: sorted(states(db, "SELECT state, version FROM messages WHERE source"
                                              " = 'from-canton'")) == [
            ("quarantined", None), ("routed", "1.5")])
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE state = 'quarantined'")
    assert f"eCH-0223 {version}" in reason
    [written] = (tmp_path / "registry-inbox").iterdir()
    assert b'version="1.5"' in written.read_bytes()  # the registry gets the canonical form


async def test_what_upgrading_a_cantons_older_message_changed_is_journaled(
        tmp_path: Path) -> None:
    """A 1.3 changeOccupation (not in 1.5) goes on as othercaseOfMigration: the message's
    journal says so, not only the log."""
    config = _site(tmp_path, partner='[partners.canton]\ntransport = "stub"\n'
                   'ech0223_version = "1.3"\n[partners.canton.stub]\n')
    db = tmp_path / "gateway.db"
    data = (FIXTURES / "valid-pem13-full-persondata.xml").read_bytes().replace(
        b">7561234567897<", f">{VN}<".encode())
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "old.xml", data)
        await until(lambda: states(db, "SELECT state FROM messages WHERE source ="
                                       " 'from-canton'") == [("routed",)])
    [(detail,)] = states(db, "SELECT j.detail FROM journal j JOIN messages m ON m.id = j.message"
                             " WHERE m.source = 'from-canton' AND j.event = 'message.normalised'")
    assert json.loads(detail)["warnings"] == [
        "upgraded from eCH-0223 1.3: personEvent changeOccupation is not in eCH-0223 1.5:"
        " sent as othercaseOfMigration, with a businessComment saying so"]


@pytest.mark.parametrize("version", ["1.0", "1.3"])
async def test_the_registry_gets_the_message_in_its_own_version(tmp_path: Path,
                                                                version: str) -> None:
    config = write_config(tmp_path, extra=WAY_BACK.replace(
        'role = "registry"\n', f'role = "registry"\nech0223_version = "{version}"\n', 1))
    (tmp_path / "from-canton").mkdir()
    (tmp_path / "registry-inbox").mkdir()
    db = tmp_path / "gateway.db"
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "a.xml", _from_canton("c-1", _local(*OTHER_LOCAL)))
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)],
                    timeout=20)
    [written] = (tmp_path / "registry-inbox").iterdir()
    tree = etree.parse(written)
    xsd = official_xsd(f"eCH-0223-{version.replace('.', '-')}.xsd")
    assert xsd.validate(tree), xsd.error_log
    assert b"c-1" in written.read_bytes()
    [(version_stored,)] = states(db, "SELECT version FROM messages WHERE source = 'from-canton'")
    assert version_stored == "1.5"  # the message itself stays in the canonical form


def _with_refs(data: bytes, process: str | None = None, ours: str | None = None,
               yours: str | None = None) -> bytes:
    """``data`` with these header business references (in eCH-0058 order, after messageId
    and referenceMessageId)."""
    refs = b"".join(f"<eCH-0039:{tag}>{value}</eCH-0039:{tag}>".encode() for tag, value in (
        ("businessProcessId", process), ("ourBusinessReferenceId", ours),
        ("yourBusinessReferenceId", yours)) if value)
    anchor = (b"</eCH-0039:referenceMessageId>" if b"</eCH-0039:referenceMessageId>" in data
              else b"</eCH-0039:messageId>")
    return data.replace(anchor, anchor + refs, 1)


async def test_the_registrys_answer_continues_the_cantons_case(tmp_path: Path) -> None:
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _residents(tmp_path, db)
        # the canton asks (its case C-77 in business process BP-1) ...
        drop(tmp_path / "from-canton", "q.xml",
             _with_refs(_from_canton("canton-q", ardita), process="BP-1", ours="C-77"))
        await until(lambda: _state_of(db, "canton-q") == "routed")
        # ... the registry answers it, echoing the canton's reference and giving its own ...
        drop(tmp_path / "in", "a.xml", _with_refs(_from_canton("registry-a", ardita),
                                                  ours="R-5", yours="C-77"))
        await until(lambda: _state_of(db, "registry-a") == "routed")
        # ... and the canton follows up, naming our reference only
        drop(tmp_path / "from-canton", "f.xml",
             _with_refs(_from_canton("canton-f", ardita), yours="R-5"))
        await until(lambda: _state_of(db, "canton-f") == "routed")
        # a message of the registry naming another process stays out of the case
        drop(tmp_path / "in", "b.xml", _with_refs(_from_canton("registry-b", ardita),
                                                  process="BP-2"))
        await until(lambda: _state_of(db, "registry-b") == "routed")
    [case] = json.loads(cli("--config", str(config), "cases", "list", "--json"))
    shown = json.loads(cli("--config", str(config), "cases", "show", str(case["id"]), "--json"))
    assert [(m["message_id"], m["direction"]) for m in shown["messages"]] == [
        ("canton-q", "in"), ("registry-a", "out"), ("canton-f", "in")]
    assert (shown["business_process_id"], shown["our_reference"], shown["their_reference"]) == (
        "BP-1", "R-5", "C-77")
    text = cli("--config", str(config), "cases", "show", str(case["id"]))
    assert "businessProcessId BP-1" in text and "C-77" in text


async def test_an_answer_to_a_message_in_no_case_joins_the_case_of_its_process(
        tmp_path: Path) -> None:
    """The message answered opened no case (sent before the canton's case began): the
    answer joins the case of its businessProcessId, bringing the answered message along,
    rather than opening a second case for the same process."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _ours_routed(tmp_path, db, ardita)
        drop(tmp_path / "from-canton", "q.xml",
             _with_refs(_from_canton("canton-q", ardita), process="BP-1"))
        await until(lambda: _state_of(db, "canton-q") == "routed")
        drop(tmp_path / "from-canton", "a.xml",
             _with_refs(_from_canton("canton-a", ardita, "ours-1"), process="BP-1"))
        await until(lambda: _state_of(db, "canton-a") == "routed")
    [case] = json.loads(cli("--config", str(config), "cases", "list", "--json"))
    shown = json.loads(cli("--config", str(config), "cases", "show", str(case["id"]), "--json"))
    assert [(m["message_id"], m["direction"]) for m in shown["messages"]] == [
        ("ours-1", "out"), ("canton-q", "in"), ("canton-a", "in")]
    [(detail,)] = states(db, "SELECT j.detail FROM journal j JOIN messages m ON m.id = j.message"
                             " WHERE m.message_id = 'canton-a' AND j.event = 'message.case'")
    assert json.loads(detail)["by"] == "businessProcessId"


async def test_with_two_registries_the_message_goes_to_the_right_one(tmp_path: Path) -> None:
    """The registry that sent what the canton answers, else the one of the person's
    municipality; else nobody knows, and the message waits for review."""
    config = _site(tmp_path, extra=(
        '[partners.registry-b]\ntransport = "folder"\nrole = "registry"\n'
        'municipalities = [230]\n[partners.registry-b.folder]\npath = "registry-b-inbox"\n'))
    config.write_text(config.read_text().replace(
        'role = "registry"\n[partners.registry.folder]',
        'role = "registry"\nmunicipalities = [261]\n[partners.registry.folder]', 1))
    (tmp_path / "registry-b-inbox").mkdir()
    db = tmp_path / "gateway.db"
    ardita = f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode()
    async with running(config):
        await _ours_routed(tmp_path, db, ardita)
        drop(tmp_path / "from-canton", "a.xml", _from_canton("answer", ardita, "ours-1"))
        drop(tmp_path / "from-canton", "b.xml", _from_canton("living-in-230", ardita))
        await until(lambda: {_state_of(db, m) for m in ("answer", "living-in-230")}
                    == {"routed"})
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE state ="
                                       " 'delivered'") == [(3,)])
    assert sorted(states(db, "SELECT m.message_id, d.partner FROM deliveries d JOIN messages m"
                             " ON m.id = d.message")) == [
        ("answer", "registry"), ("living-in-230", "registry-b"), ("ours-1", "canton")]


def test_the_folder_transport_writes_each_attempt_once_and_whole(tmp_path: Path) -> None:
    options = FolderTransportOptions(path=tmp_path / "inbox")
    item = OutboundItem(7, "registry", 1, "ref-1", "m-1", b"<m/>", (Attachment("a.pdf", b"%PDF"),))
    with pytest.raises(LocalFault, match="cannot write into"):
        write_delivery(options, item)  # the registry is down: the partner pauses
    (tmp_path / "inbox").mkdir()
    assert write_delivery(options, item).detail == "ech0223-0000000007-ref-1.zip"
    assert "written before" in write_delivery(options, item).detail  # the same attempt again
    [written] = (tmp_path / "inbox").iterdir()
    assert safe_unzip(written.read_bytes(), max_entries=5, max_total_bytes=1 << 20,
                      max_ratio=100) == {"message.xml": b"<m/>", "files/a.pdf": b"%PDF"}


def test_the_readme_and_the_template_name_the_files_the_folder_transport_writes() -> None:
    """The name as written (delivery 4, an attempt's UUID), its UUID said as a placeholder."""
    attempt = str(uuid.uuid4())
    item = OutboundItem(4, "registry", 1, attempt, "m-1", b"<m/>", ())
    written = file_name(FolderTransportOptions(path=Path("inbox")), item)
    assert written == f"ech0223-0000000004-{attempt}.xml"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"`{written.replace(attempt, '<attempt uuid>')}`" in readme
    assert "ech0223-<delivery id, 10 digits>-<attempt uuid>.xml" in INITIAL_CONFIG


async def registry_inbox_hangs(root_text: str) -> None:
    """(In a private mount namespace.) The registry's inbox stops answering (its file system
    frozen) while a canton's message is delivered into it, and registry files keep coming."""
    root = Path(root_text)
    config = write_config(root, extra=WAY_BACK.replace(
        'path = "registry-inbox"\n', 'path = "registry-inbox"\nwrite_timeout = "1s"\n'))
    (root / "from-canton").mkdir()
    db, inbox = root / "gateway.db", root / "registry-inbox"
    ext4(inbox)

    def sql(query: str) -> list[tuple[Any, ...]]:
        return states(db, query)

    async with running(config) as gateway:
        gateway.dispatcher.pauses.first, gateway.dispatcher.pauses.longest = 0.1, 0.4
        await _residents(root, db)
        with frozen(inbox, safety=60):
            drop(root / "from-canton", "a.xml", _from_canton("c-1", _local(*OTHER_LOCAL)))
            await until(lambda: sql("SELECT count(*) FROM journal WHERE event = 'partner.paused'")
                        == [(1,)], timeout=20)
            [(state, reason)] = sql("SELECT state, reason FROM deliveries WHERE partner = 'registry'")
            assert state == "sending", reason
            assert f"the folder {inbox} did not take the file within 1s; it may have arrived" in reason
            for n in range(3):  # the intake and the other partner go on
                drop(root / "in", f"r{n}.xml", message())
                await until(lambda n=n: sql("SELECT count(*) FROM deliveries WHERE partner ="
                                            " 'canton' AND state = 'delivered'") == [(n + 1,)],
                            timeout=5)
            await asyncio.sleep(1)  # probes, each refused at once: the write has not returned
            assert stuck_threads() == 1
        await until(lambda: sql("SELECT state FROM deliveries WHERE partner = 'registry'")
                    == [("delivered",)], timeout=20)
    [written] = [p for p in inbox.iterdir() if p.name != "lost+found"]  # (ext4's own)
    assert written.name.startswith("ech0223-") and b"c-1" in written.read_bytes()
    assert sql("SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery"
               " WHERE d.partner = 'registry'") == [(1,)]


def test_a_registry_inbox_that_hangs_pauses_the_way_back_and_nothing_else(
        tmp_path: Path) -> None:
    """A file not written into the registry's inbox within ``write_timeout`` (its file
    system hangs) is given up on as unsure: the registry partner is paused, probes fail at
    once while the write hangs (no thread piles up), the intake and the other partner go
    on; once the folder answers, the same attempt finds its file: delivered, written once."""
    output = run_isolated("tests.test_way_back:registry_inbox_hangs", str(tmp_path))
    assert (f"partner registry: writing into the folder {tmp_path / 'registry-inbox'} failed:"
            " not done within 1s (does its file system hang?); the partner is paused") in output


async def test_a_registry_that_writes_ech0223_itself_is_answered_too(tmp_path: Path) -> None:
    """No eCH-0020 and no baseDelivery: the registry's own eCH-0223 message states its
    person, so the canton's answer finds the resident by VN (not ``needs_review``)."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "registry" / "inbox"
    sim = _answering_canton(tmp_path, seed=5)
    sent = sample_person_event(random.Random(11), message_id="reg-1", event="moveIn")
    sent.content.document = []  # XML alone: no files for documents to name
    vn = sent.content.person_identification.vn
    assert vn is not None
    stop = asyncio.Event()
    async with running(config, get_plugin_manager()):
        task = asyncio.create_task(sim.run(stop))
        drop(tmp_path / "registry" / "outbox", "move-in.xml", write_message(sent))
        await until(lambda: len(list(inbox.glob("ech0223-*.xml"))) == 1, timeout=20)
        stop.set()
        await task
    assert states(db, "SELECT source, state FROM messages ORDER BY id") == [
        ("registry", "routed"), ("canton", "routed")]
    shown = json.loads(cli("--config", str(config), "persons", "show", str(vn), "--json"))
    assert shown["state"]["nationality_data"] is not None
    assert shown["state"]["residence_permit_data"] is not None
    assert [m["direction"] for m in shown["messages"]] == ["out", "in"]


# -- files a canton's zip brings -------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _canton_zip(message_id: str, named: list[tuple[str, bytes]],
                carried: list[tuple[str, bytes]]) -> bytes:
    """A canton's message about Ardita Shala whose documents name ``files/<name>`` with the
    SHA-256 of its bytes, as a zip carrying ``carried`` under ``files/``."""
    sent = sample_person_event(random.Random(7), message_id=message_id, full=False)
    sent.content.document = []
    sent.content.person_identification = PersonIdentificationLight(
        vn=int(VN), official_name="Shala", first_name="Ardita")
    root = etree.fromstring(write_message(sent))
    add_documents(root, [describe(Attachment(name, data), message_id,
                                  datetime(2026, 3, 4, tzinfo=UTC), "approved")
                         for name, data in named])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("message.xml", etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        for name, data in carried:
            zf.writestr(f"files/{name}", data)
    return buf.getvalue()


async def test_a_cantons_zip_is_held_to_its_documents_on_the_way_back(tmp_path: Path) -> None:
    """A file that is not the one its document states refuses the canton's message; one
    named but missing, or carried but named by no document, is a warning in its journal,
    and the message goes on to the registry with the files it has."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "sedex" / "inbox"
    damaged = _canton_zip("c-damaged", [("permit.pdf", PDF)],
                          [("permit.pdf", PDF + b"% tampered\n")])
    partial = _canton_zip("c-partial", [("permit.pdf", PDF), ("letter.pdf", PDF + b"% 2\n")],
                          [("permit.pdf", PDF), ("extra.pdf", PDF)])
    async with running(config, get_plugin_manager()):
        await _seeded(tmp_path, db)
        for key, data in (("damaged", damaged), ("partial", partial)):
            drop(inbox, f"data_{key}.zip", data)
            drop(inbox, f"envl_{key}.xml", envelope_bytes(f"env-{key}", **CANTON))
        await until(lambda: sorted(states(db, "SELECT ref, state FROM messages WHERE source ="
                                              " 'canton'")) == [("damaged", "quarantined"),
                                                                 ("partial", "routed")],
                    timeout=20)
        await until(lambda: states(db, "SELECT partner, state FROM deliveries")
                    == [("registry", "delivered")], timeout=20)
    document = "/personEventMessage/content/document[{}]/files/file[1]/pathFileName"
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE ref = 'damaged'")
    assert reason == ("files/permit.pdf does not match its document's SHA-256 hashCode"
                      f" (damaged or replaced) (at {document.format(1)})")
    warnings = [f"document file 'files/letter.pdf' is not in the zip (named at"
                f" {document.format(2)})", "zip file 'files/extra.pdf' is named by no document"]
    [(detail,)] = states(db, "SELECT j.detail FROM journal j JOIN messages m ON m.id = j.message"
                             " WHERE m.ref = 'partial' AND j.event = 'message.normalised'")
    assert json.loads(detail)["warnings"] == warnings
    shown = cli("--config", str(config), "messages", "show", "c-partial")
    assert all(w in shown for w in warnings)
    [written] = (tmp_path / "registry" / "inbox").glob("ech0223-*.zip")
    with zipfile.ZipFile(written) as zf:
        assert sorted(zf.namelist()) == ["files/extra.pdf", "files/permit.pdf", "message.xml"]
        assert zf.read("files/permit.pdf") == PDF


async def test_a_rejection_naming_our_message_only_in_its_sedex_envelope_rejects_it(
        tmp_path: Path) -> None:
    """The canton's eventReport names no referenceMessageId in its eCH-0223 header; its
    sedex envelope (messageClass 1, a response) does: the envelope messageId of the attempt
    that carried our message. That is the message it answers: its delivery is rejected,
    and the answer joins its case."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    outbox, inbox = tmp_path / "sedex" / "outbox", tmp_path / "sedex" / "inbox"
    async with running(config, get_plugin_manager()):
        await _seeded(tmp_path, db)
        drop(tmp_path / "registry" / "outbox", EVENT, (CORPUS / EVENT).read_bytes())
        await until(lambda: len(list(outbox.glob("envl_*.xml"))) == 1, timeout=20)
        [sent] = outbox.glob("envl_*.xml")
        attempt = sent.name.removeprefix("envl_").removesuffix(".xml")
        [(ours,)] = states(db, "SELECT message_id FROM messages WHERE source = 'registry'"
                               " AND state = 'routed'")
        report = sample_event_report(random.Random(5), reference_message_id="x")
        report = report.model_copy(update={
            "header": report.header.model_copy(update={
                "message_id": "kt-77", "reference_message_id": None,
                "sender_id": "T2-2-1", "recipient_id": ["T1-2511-1"]}),
            "response": report.response.model_copy(update={
                "person_identification": PersonIdentificationLight(
                    vn=int(VN), official_name="Shala", first_name="Ardita")})})
        drop(inbox, "data_kt77.xml", write_message(report))
        now = datetime.now(UTC)
        drop(inbox, "envl_kt77.xml", build_envelope(Envelope(
            "kt-env-77", 1900223, 1, event_date=now, message_date=now,
            reference_message_id=attempt, **CANTON)))
        await until(lambda: _state_of(db, "kt-77") == "routed", timeout=20)
        await until(lambda: states(db, "SELECT state FROM deliveries WHERE partner = 'canton'")
                    == [("rejected",)])
    assert states(db, "SELECT reference_message_id FROM messages WHERE message_id = 'kt-77'") \
        == [(ours,)]
    [case] = json.loads(cli("--config", str(config), "cases", "list", "--json"))
    shown = json.loads(cli("--config", str(config), "cases", "show", str(case["id"]), "--json"))
    assert [(m["message_id"], m["direction"]) for m in shown["messages"]] == [
        (ours, "out"), ("kt-77", "in")]
    journal = cli("--config", str(config), "messages", "show", "kt-77")
    assert f'"envelope_reference": "{attempt}"' in journal


async def test_a_rejection_of_a_message_never_sent_says_it_rejects_nothing(
        tmp_path: Path) -> None:
    """The canton rejects a messageId the gateway never sent it: the answer still reaches the
    registry, and its reason says it settled nothing and why, rather than nothing at all."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config):
        await _ours_routed(tmp_path, db, f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode())
        drop(tmp_path / "from-canton", "r.xml", _rejecting("canton-9", "never-sent-4"))
        await until(lambda: _state_of(db, "canton-9") == "routed")
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(1,)])
    assert states(db, "SELECT state FROM deliveries WHERE partner = 'canton'") == [("delivered",)]
    shown = json.loads(cli("--config", str(config), "messages", "show", "canton-9", "--json"))
    assert shown["reason"] == ("referenceMessageId never-sent-4 names no message sent to"
                               " canton: this eventReport settles no delivery")
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'message.answer'")
    assert json.loads(detail)["reason"] == shown["reason"]


async def test_a_rejected_delivery_says_the_reasons_the_partner_gave(tmp_path: Path) -> None:
    """The rejected delivery's reason names the eventReport's reason codes and texts, so the
    operator reads why the canton refused the message where they read that it did."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config):
        await _ours_routed(tmp_path, db, f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode())
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
        drop(tmp_path / "from-canton", "r.xml", _rejecting("canton-5", "ours-1"))
        await until(lambda: states(db, "SELECT state FROM deliveries WHERE partner = 'canton'")
                    == [("rejected",)])
    [(answer,)] = states(db, "SELECT id FROM messages WHERE message_id = 'canton-5'")
    report = etree.fromstring(_rejecting("canton-5", "ours-1"))
    given = [f"{r.findtext('{*}reasonCodeNumber')} {r.findtext('{*}reasonCodeText')}"
             for r in report.iter("{*}reason")]
    assert given
    expected = f"negative eventReport from canton (message {answer}): {'; '.join(given)}"
    shown = json.loads(cli("--config", str(config), "messages", "show", "ours-1", "--json"))
    [delivery] = shown["deliveries"]
    assert (delivery["state"], delivery["reason"]) == ("rejected", expected)


def _invalid(data: bytes) -> bytes:
    """``data`` with a testDeliveryFlag that is no boolean: read, but invalid."""
    out = data.replace(b"<eCH-0039:testDeliveryFlag>true<", b"<eCH-0039:testDeliveryFlag>maybe<")
    assert out != data
    return out


async def test_a_cantons_invalid_message_keeps_its_message_id_unless_one_was_routed_with_it(
        tmp_path: Path) -> None:
    """Quarantined, by the schema on the way back or by the normaliser (a mistyped VN), a
    message keeps the messageId and senderId its header gives: ``messages list`` and
    ``show`` name it, ``show`` finds it by it. A messageId another message from the same
    sender was routed with is not kept (it stays that message's), and the reason says so."""
    config = _site(tmp_path)
    db = tmp_path / "gateway.db"
    c = str(config)
    async with running(config):
        await _residents(tmp_path, db)
        drop(tmp_path / "from-canton", "ok.xml", _from_canton("canton-7", _local(*OTHER_LOCAL)))
        await until(lambda: _state_of(db, "canton-7") == "routed")
        drop(tmp_path / "from-canton", "bad.xml", _invalid(_from_canton("canton-8")))
        drop(tmp_path / "from-canton", "vn.xml", _from_canton(
            "canton-9", b"<eCH-0044:vn>7561234567890</eCH-0044:vn>"))
        drop(tmp_path / "from-canton", "again.xml", _invalid(_from_canton("canton-7")))
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE source ="
                                       " 'from-canton' AND state = 'quarantined'") == [(3,)])
    listed = {m["ref"]: m for m in json.loads(cli("--config", c, "messages", "list", "--json"))}
    assert [(listed[ref]["message_id"], listed[ref]["state"]) for ref in (
        "ok.xml", "bad.xml", "vn.xml", "again.xml")] == [
        ("canton-7", "routed"), ("canton-8", "quarantined"), ("canton-9", "quarantined"),
        (None, "quarantined")]
    for message_id in ("canton-8", "canton-9"):
        shown = cli("--config", c, "messages", "show", message_id).splitlines()
        assert shown[1] == (f"  eCH-0223:  messageId {message_id} from sender"
                            " sedex://T1-2511-1")
    again = listed["again.xml"]
    assert again["reason"].startswith("invalid eCH-0223 from partner 'canton': ")
    assert again["reason"].endswith(
        f"; its messageId canton-7 from sender sedex://T1-2511-1 is that of message"
        f" {listed['ok.xml']['id']}, routed before: not kept on this one")
    shown = cli("--config", c, "messages", "show", "canton-7").splitlines()  # not ambiguous
    assert shown[0].startswith(f"message {listed['ok.xml']['id']}  routed")
    assert cli("--config", c, "journal", "verify").startswith("journal intact")


# -- what an operator sees of the canton's messages (sedex inbox, logs, `messages show`) ----

def _canton_pair(inbox: Path, key: str, data: bytes, **envelope: Any) -> None:
    """``data`` from the canton into the sedex inbox, as its sedex client writes a pair
    (``envelope``: other envelope fields, another ``sender_id``)."""
    drop(inbox, f"data_{key}.xml", data)
    drop(inbox, f"envl_{key}.xml", envelope_bytes(f"env-{key}", **{**CANTON, **envelope}))


def _about_the_resident(data: bytes) -> bytes:
    return data.replace(b">7561234567897<", f">{VN}<".encode())


async def test_the_cantons_messages_are_shown_and_logged_as_an_operator_needs_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The partner is named in the log, the person is not; a byte-identical copy says what it
    copies; an unknown event is said in brief, the schema's words kept in the journal."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "sedex" / "inbox"
    answer = _from_canton("canton-1", f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode())
    unknown = _about_the_resident((FIXTURES / "invalid-enum-personevent-casing.xml").read_bytes())
    with caplog.at_level(logging.INFO):
        async with running(config, get_plugin_manager()):
            await _seeded(tmp_path, db)
            _canton_pair(inbox, "a1", answer)
            await until(lambda: _state_of(db, "canton-1") == "routed", timeout=20)
            _canton_pair(inbox, "a2", answer)  # the same bytes again, in another pair
            _canton_pair(inbox, "b1", unknown)
            await until(lambda: sorted(states(db, "SELECT ref, state FROM messages WHERE source"
                                                  " = 'canton'")) == [
                ("a1", "routed"), ("a2", "duplicate"), ("b1", "quarantined")], timeout=20)
    [(first, copy, bad)] = [tuple(mid for (mid,) in states(
        db, "SELECT id FROM messages WHERE source = 'canton' ORDER BY ref"))]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"message {bad} quarantined: invalid eCH-0223 from partner 'canton': " in logged
    assert f"message {copy} is a duplicate of message {first}" in logged
    assert "Muster" not in logged and VN not in logged and "7561234567897" not in logged

    shown = cli("--config", str(config), "messages", "show", str(copy)).splitlines()
    assert shown[1] == (f"  eCH-0223:  duplicate of message {first}: personEventMessage"
                        " messageId canton-1 from sender sedex://T1-2511-1 version 1.5")
    assert json.loads(cli("--config", str(config), "messages", "show", str(copy), "--json"))[
        "original"]["message_id"] == "canton-1"

    [(reason,)] = states(db, "SELECT reason FROM messages WHERE id = ?", (bad,))
    assert reason == ("invalid eCH-0223 from partner 'canton': line 45: Element"
                      " '{http://www.ech.ch/xmlns/eCH-0223/1}personEvent': 'MoveIn' is not an"
                      " eCH-0223 event of version 1.5 (did you mean 'moveIn'?)")
    shown_bad = cli("--config", str(config), "messages", "show", str(bad))
    assert "The value 'MoveIn' is not an element of the set {'moveIn', 'moveOut'" in shown_bad
    assert shown_bad.count("prolongationB") == 1, "the schema's list once, in the journal"


async def _after_a_routed_answer(tmp_path: Path, pairs: Callable[[Path, bytes], None],
                                 states_after: list[tuple[str, str]]) -> tuple[Path, str]:
    """A gateway in ``tmp_path``: the canton's answer ``canton-1`` (pair ``a1``) routed, then
    ``pairs(inbox, answer)`` written, until the canton's inputs are in ``states_after`` (by
    ref); the database and the configuration file."""
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "sedex" / "inbox"
    answer = _from_canton("canton-1", f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode())
    async with running(config, get_plugin_manager()):
        await _seeded(tmp_path, db)
        _canton_pair(inbox, "a1", answer)
        await until(lambda: _state_of(db, "canton-1") == "routed", timeout=20)
        pairs(inbox, answer)
        await until(lambda: sorted(states(db, "SELECT ref, state FROM messages WHERE source"
                                              " = 'canton'")) == states_after, timeout=20)
    return db, str(config)


async def test_a_strangers_message_keeps_its_message_id_unless_one_was_routed_with_it(
        tmp_path: Path) -> None:
    """eCH-0223 in the sedex inbox from a senderId no partner has is quarantined, and keeps
    the messageId and senderId its header gives, as any other quarantined message:
    ``messages list`` and ``show`` name it, ``show`` finds it by it. Not the messageId of
    the partner's message routed from that header's sender: it stays that message's."""
    def pairs(inbox: Path, answer: bytes) -> None:
        _canton_pair(inbox, "s1", _from_canton("canton-2"), sender_id="T2-9-1")
        _canton_pair(inbox, "s2", answer + b"\n<!-- sent again -->\n", sender_id="T2-9-1")
    db, c = await _after_a_routed_answer(tmp_path, pairs, [
        ("a1", "routed"), ("s1", "quarantined"), ("s2", "quarantined")])
    listed = {m["ref"]: m for m in json.loads(cli("--config", c, "messages", "list", "--json"))}
    assert [listed[ref]["message_id"] for ref in ("a1", "s1", "s2")] == [
        "canton-1", "canton-2", None]
    assert states(db, "SELECT DISTINCT sender_id FROM messages WHERE source = 'canton'") == [
        ("sedex://T1-2511-1",)]
    stranger = ("eCH-0223 not from partner 'canton': sedex senderId T2-9-1 is the recipient_id"
                " of no partner reading this inbox (canton T2-2-1)")
    assert listed["s1"]["reason"] == stranger
    assert listed["s2"]["reason"] == (
        f"{stranger}; its messageId canton-1 from sender sedex://T1-2511-1 is that of message"
        f" {listed['a1']['id']}, routed before: not kept on this one")
    shown = cli("--config", c, "messages", "show", "canton-2").splitlines()
    assert shown[0].startswith(f"message {listed['s1']['id']}  quarantined")
    assert shown[1] == "  eCH-0223:  messageId canton-2 from sender sedex://T1-2511-1"
    assert shown[3].startswith("  files:     envl_s1.xml and data_s1.xml, moved to ")
    # the reason says that it is not the partner's, and why: said once
    assert shown[4] == f"  reason:    {stranger}"
    assert not [line for line in shown if line.startswith("  sender:")]
    shown = cli("--config", c, "messages", "show", "canton-1").splitlines()  # not ambiguous
    assert shown[0].startswith(f"message {listed['a1']['id']}  routed")


async def test_a_pair_the_inbox_quarantines_itself_is_found_by_its_headers_message_id(
        tmp_path: Path) -> None:
    """A pair the sedex inbox quarantines before any processing (addressed to another
    participant, as XML or as a zip with ``files/``; a broken envelope) keeps the messageId
    and senderId its eCH-0223 header gives: ``messages show`` finds it by that messageId.
    Not by the sedex envelope's messageId, nor with the envelope's senderId: those are
    the transport's."""
    config = gateway_dir(tmp_path)
    db, c = tmp_path / "gateway.db", str(config)
    inbox = tmp_path / "sedex" / "inbox"
    elsewhere = {"recipient_ids": ("T1-9999-1",)}
    async with running(config, get_plugin_manager()):
        _canton_pair(inbox, "x1", _from_canton("canton-2"), **elsewhere)
        scan = b"%PDF-1.4 " + random.Random(7).randbytes(96 << 10)  # read in a thread
        zipped = build_zip("message.xml", _from_canton("canton-3"), [Attachment("scan.pdf", scan)])
        drop(inbox, "data_z1.zip", zipped)
        drop(inbox, "envl_z1.xml", envelope_bytes("env-z1", **{**CANTON, **elsewhere}))
        drop(inbox, "data_b1.xml", _from_canton("canton-4"))
        drop(inbox, "envl_b1.xml", b"<envelope>not sedex</envelope>")
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state ="
                                       " 'quarantined'") == [(3,)], timeout=20)
    listed = {m["ref"]: m for m in json.loads(cli("--config", c, "messages", "list", "--json"))}
    refused = ("sedex pair from senderId T2-2-1 addressed to recipientId T1-9999-1, none of"
               " our participant ids (T1-2511-1)")
    assert [(listed[ref]["message_id"], listed[ref]["reason"]) for ref in ("x1", "z1")] == [
        ("canton-2", refused), ("canton-3", refused)]
    assert listed["b1"]["message_id"] == "canton-4"
    assert listed["b1"]["reason"].startswith("bad sedex envelope: ")
    for ref, message_id in (("x1", "canton-2"), ("z1", "canton-3"), ("b1", "canton-4")):
        shown = cli("--config", c, "messages", "show", message_id).splitlines()
        assert shown[0].startswith(f"message {listed[ref]['id']}  quarantined")
        assert shown[1] == f"  eCH-0223:  messageId {message_id} from sender sedex://T1-2511-1"
    cli("--config", c, "messages", "show", "env-x1", code=3)  # the envelope's: no message's


async def test_a_pair_the_inbox_refused_is_not_taken_as_the_partners_when_replayed(
        tmp_path: Path) -> None:
    """A negative eventReport the sedex inbox quarantined (in a pair addressed to another
    participant; with a broken envelope or none: its sender is not known) stays quarantined when
    replayed: it rejects none of our deliveries. ``messages resubmit`` of its file is the
    operator's word for it, and is taken."""
    config = gateway_dir(tmp_path)
    db, c = tmp_path / "gateway.db", str(config)
    inbox = tmp_path / "sedex" / "inbox"
    sent = "SELECT state FROM deliveries WHERE partner = 'canton'"
    report = write_message(sample_event_report(random.Random(5), reference_message_id="ours-1"))
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "registry" / "outbox", "ours-1.xml", message("ours-1"))
        await until(lambda: states(db, sent) == [("sent",)])
        _canton_pair(inbox, "x1", report, recipient_ids=("T1-9999-1",))
        drop(inbox, "data_b1.xml", report + b"\n")
        drop(inbox, "envl_b1.xml", b"<envelope>not sedex</envelope>")
        drop(inbox, "data_l1.xml", report + b"\n\n")  # its envelope never comes
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state ="
                                       " 'quarantined'") == [(3,)], timeout=20)
    ids = dict(states(db, "SELECT ref, id FROM messages WHERE source = 'canton'"))
    for ref, why in (("x1", "sedex pair from senderId T2-2-1 addressed to recipientId"
                            " T1-9999-1, none of our participant ids (T1-2511-1)"),
                     ("b1", "its sender is not known: bad sedex envelope: "),
                     ("l1", "its sender is not known: payload without envelope")):
        said = await asyncio.to_thread(cli, "--config", c, "messages", "replay",
                                       f"row:{ids[ref]}", code=1)
        assert said.startswith(f"message {ids[ref]}: processed again, still quarantined: eCH-0223"
                               f" not from partner 'canton': {why}"), said
        assert states(db, "SELECT state FROM messages WHERE id = ?", (ids[ref],)) == [
            ("quarantined",)]
    assert states(db, sent) == [("sent",)]  # no word of the canton's: nothing rejected
    corrected = tmp_path / "report.xml"
    corrected.write_bytes(report)
    await asyncio.to_thread(cli, "--config", c, "messages", "resubmit", f"row:{ids['b1']}",
                            str(corrected))
    assert states(db, sent) == [("rejected",)]


async def test_a_pair_the_inbox_quarantines_itself_keeps_no_message_id_a_routed_one_has(
        tmp_path: Path) -> None:
    """A pair quarantined by the sedex inbox whose header's messageId a message from that
    header's sender was routed with does not take it (it stays that message's, as for a
    message quarantined by processing); the reason says so, and ``messages show`` finds
    the routed message."""
    def pairs(inbox: Path, answer: bytes) -> None:
        _canton_pair(inbox, "x1", answer + b"\n<!-- sent again -->\n",
                     recipient_ids=("T1-9999-1",))
    _db, c = await _after_a_routed_answer(tmp_path, pairs, [
        ("a1", "routed"), ("x1", "quarantined")])
    listed = {m["ref"]: m for m in json.loads(cli("--config", c, "messages", "list", "--json"))}
    assert [listed[ref]["message_id"] for ref in ("a1", "x1")] == ["canton-1", None]
    assert listed["x1"]["reason"] == (
        "sedex pair from senderId T2-2-1 addressed to recipientId T1-9999-1, none of our"
        " participant ids (T1-2511-1); its messageId canton-1 from sender sedex://T1-2511-1"
        f" is that of message {listed['a1']['id']}, routed before: not kept on this one")
    shown = cli("--config", c, "messages", "show", "canton-1").splitlines()  # not ambiguous
    assert shown[0].startswith(f"message {listed['a1']['id']}  routed")


async def test_a_message_upgraded_from_the_cantons_version_says_the_version_it_came_in(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    (tmp_path / "conf.d" / "20-canton.toml").write_text(
        '[partners.canton]\nech0223_version = "1.4"\n')
    db = tmp_path / "gateway.db"
    inbox = tmp_path / "sedex" / "inbox"
    old = _about_the_resident((FIXTURES / "valid-pem14-full-persondata.xml").read_bytes())
    unknown = old.replace(b"b8e0c3a2-4f5d-4a61-8c3e-2d9f7a1b6e04", b"canton-2").replace(
        b"<eCH-0223:personEvent>othercaseOfMigration<", b"<eCH-0223:personEvent>MoveIn<")
    assert unknown.count(b"MoveIn") == 1
    async with running(config, get_plugin_manager()):
        await _seeded(tmp_path, db)
        _canton_pair(inbox, "old", old)
        _canton_pair(inbox, "unknown", unknown)
        await until(lambda: sorted(states(db, "SELECT ref, state FROM messages WHERE source"
                                              " = 'canton'")) == [
            ("old", "routed"), ("unknown", "quarantined")], timeout=20)
    [(upgraded,)] = states(db, "SELECT id FROM messages WHERE ref = 'old'")
    shown = cli("--config", str(config), "messages", "show", str(upgraded)).splitlines()
    assert shown[1] == ("  eCH-0223:  personEventMessage messageId"
                        " b8e0c3a2-4f5d-4a61-8c3e-2d9f7a1b6e04 from sender sedex://T1-2511-1"
                        " version 1.4 as received, upgraded to 1.5")
    assert json.loads(cli("--config", str(config), "messages", "show", str(upgraded), "--json"))[
        "received_version"] == "1.4"
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE state = 'quarantined'")
    assert reason.endswith("}personEvent': 'MoveIn' is not an eCH-0223 event of version 1.4"
                           " (did you mean 'moveIn'?)")


async def test_a_rejection_needs_attention_until_an_operator_handles_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A negative eventReport means a case worker must act: ``status`` says so (exit 1) and
    names the command that lists it, until ``messages handle`` records what was done."""
    config = _site(tmp_path)
    c = str(config)
    db = tmp_path / "gateway.db"
    async with running(config):
        await _ours_routed(tmp_path, db, f"<eCH-0044:vn>{VN}</eCH-0044:vn>".encode())
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
        drop(tmp_path / "from-canton", "r.xml", _rejecting("canton-5", "ours-1"))
        await until(lambda: states(db, "SELECT partner, state FROM deliveries ORDER BY id") == [
            ("canton", "rejected"), ("registry", "delivered")])
    [(delivery,)] = states(db, "SELECT id FROM deliveries WHERE state = 'rejected'")
    status = cli("--config", c, "status", code=1)
    assert "  canton:   rejected 1" in status
    attention = status.split("ATTENTION:\n", 1)[1].splitlines()
    assert attention == ["  1 delivery rejected by its partner, not handled: ech-gateway messages"
                         " list --unhandled --delivery-state rejected; the reasons in messages"
                         " show ID; then messages replay ID once corrected, or messages handle"
                         " ID --note TEXT"]
    data = json.loads(cli("--config", c, "status", "--json", code=1))
    assert data["rejected"] == {"canton": 1}
    assert [(r["kind"], r["count"], r["partners"]) for r in data["reasons"]] == [
        ("rejected", 1, {"canton": 1})]
    listed = json.loads(cli("--config", c, "messages", "list", "--unhandled", "--delivery-state",
                            "rejected", "--json"))
    assert [m["message_id"] for m in listed] == ["ours-1"]

    note = "registry corrected the permit; the canton was called (ticket 88)"
    assert (await asyncio.to_thread(cli, "--config", c, "messages", "handle", "ours-1",
                                    "--note", note)).strip() == (
        f"message {listed[0]['id']}: its rejected delivery {delivery} handled: {note}")
    assert cli("--config", c, "status").splitlines()[-1] == "OK: nothing needs attention"
    assert json.loads(cli("--config", c, "messages", "list", "--unhandled", "--json")) == []
    shown = cli("--config", c, "messages", "show", "ours-1")
    assert "    handled:   " in shown and shown.split("    handled:   ", 1)[1].splitlines()[
        0].endswith(f": {note}")
    assert "canton:rejected(1) [handled]" in cli("--config", c, "messages", "list")
    capsys.readouterr()
    await asyncio.to_thread(cli, "--config", c, "messages", "handle", "ours-1", "--note", "x",
                            code=1)
    assert capsys.readouterr().err.strip() == (
        f"ech-gateway: the rejections of message {listed[0]['id']} were handled already")
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'delivery.handled'"
                             " AND delivery = ?", (delivery,))
    assert json.loads(detail) == {"partner": "canton", "note": note}
    assert cli("--config", c, "journal", "verify").startswith("journal intact")
