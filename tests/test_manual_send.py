"""Manual sends: ``ech-gateway send`` and ``gateway.api.send_manual``, end to end.

The person state comes from the eCH-0020 corpus's ``baseDelivery.xml``, run
through a real gateway; sends go through the real CLI (or a plugin's intake)
into the sedex outbox. Every message is held to the official eCH-0223 XSD.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.api import send_manual
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.contracts import Attachment
from gateway.documents import add_documents, describe
from gateway.errors import InputRejected
from gateway.plugins import get_plugin_manager
from tests.flow import drop, message, running, states, until
from tests.official import REPO, official_schema_set

CORPUS = REPO / "tests" / "fixtures" / "ech0020"
E39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
E44 = "{http://www.ech.ch/xmlns/eCH-0044/4}"
E223 = "{http://www.ech.ch/xmlns/eCH-0223/1}"
#: Berisha Valon in baseDelivery.xml: Kosovo, B permit.
VN, LOCAL = "7565108772783", "MU.230:100101"
PDF = b"%PDF-1.4\n% declaration of commitment, signed\n%%EOF\n"
FAST = """\
[gateway]
log_level = "WARNING"
workers = 0
[dispatcher]
idle_poll = "50ms"
[sources.registry]
poll_interval = "50ms"
settle = "50ms"
[partners.canton.sedex]
poll_interval = "50ms"
settle = "50ms"
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gateway folder whose person state holds the persons of baseDelivery.xml."""
    root = tmp_path_factory.mktemp("seeded")
    config = write_initial_config(root)
    (root / "conf.d" / "10-test.toml").write_text(FAST)

    async def seed() -> None:
        async with running(config, get_plugin_manager()):
            drop(root / "registry" / "outbox", "base.xml",
                 (CORPUS / "baseDelivery.xml").read_bytes())
            await until(lambda: states(root / "gateway.db", "SELECT state FROM messages")
                        == [("not_relevant",)], timeout=30)

    asyncio.run(seed())
    return root


@pytest.fixture
def site(seeded: Path, tmp_path: Path) -> Path:
    """A copy of the seeded folder, for one test to change."""
    root = tmp_path / "site"
    shutil.copytree(seeded, root)
    return root


def send(root: Path, *args: str) -> int:
    return main(["send", "--config", str(root / "gateway.toml"), *args])


def manual_rows(root: Path) -> list[tuple[int, str, str | None]]:
    return states(root / "gateway.db",
                  "SELECT id, state, reason FROM messages WHERE source = 'manual' ORDER BY id")


def payload_of(root: Path, mid: int) -> bytes:
    [(payload,)] = states(root / "gateway.db", "SELECT coalesce(d.payload, p.canonical, p.raw)"
                          " FROM deliveries d JOIN payloads p ON p.message = d.message"
                          " WHERE d.message = ?", (mid,))
    return bytes(payload)


def assert_official(xml: bytes, version: str = "1.5") -> etree._Element:
    root = etree.fromstring(xml)
    assert official_schema_set().validate(root, ech0223_version=version).errors == []
    return root


def test_send_laggard_of_family_with_a_scan_reaches_the_sedex_outbox(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = site / "commitment.pdf"
    scan.write_bytes(PDF)
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily",
                "--person", "756.5108.7727.83", "--business-key", "IntV",
                "--comment", "Familiennachzug: Verpflichtungserklärung liegt bei",
                "--attach", str(scan)) == 0
    out = capsys.readouterr().out
    [(mid, state, _reason)] = manual_rows(site)
    assert state == "routed" and f"message {mid}" in out and "routed to canton" in out
    root = assert_official(payload_of(site, mid))
    content = root.find(f"{E223}content")
    assert content.findtext(f"{E223}personEvent") == "laggardOfFamily"
    assert content.findtext(f"{E223}personIdentification/{E44}vn") == VN
    assert content.find(f"{E223}personData") is not None  # from the person's state
    assert content.findtext(f"{E223}businessInformation/{E223}businessKey") == "IntV"
    assert "Verpflichtungserklärung" in content.findtext(
        f"{E223}businessInformation/{E223}businessComment")
    [file_el] = content.iter(f"{E39}file")
    assert file_el.findtext(f"{E39}pathFileName") == "files/commitment.pdf"
    assert file_el.findtext(f"{E39}hashCode") == hashlib.sha256(PDF).hexdigest()
    # who asked, and the decision, are journaled with the message
    decided = [json.loads(d) for (d,) in states(
        site / "gateway.db", "SELECT detail FROM journal WHERE message = ? AND event = ?",
        (mid, "message.decided"))]
    assert decided[0]["rule"] == "manual send" and "requested by" in decided[0]["reason"]
    capsys.readouterr()
    assert main(["messages", "show", str(mid), "--config", str(site / "gateway.toml")]) == 0
    shown = capsys.readouterr().out
    assert "requested: by " in shown and "(manual send to canton)" in shown
    assert f"files/commitment.pdf, {len(PDF)} bytes, sha256 {hashlib.sha256(PDF).hexdigest()}" in shown

    async def deliver() -> None:  # the daemon's dispatcher sends what the CLI recorded
        async with running(site / "gateway.toml", get_plugin_manager()):
            await until(lambda: bool(list((site / "sedex" / "outbox").glob("data_*.zip"))),
                        timeout=20)

    asyncio.run(deliver())
    [data] = (site / "sedex" / "outbox").glob("data_*.zip")
    with zipfile.ZipFile(data) as zf:
        assert zf.read("files/commitment.pdf") == PDF
        assert_official(zf.read("message.xml"))


def test_send_by_local_id_for_a_1_4_partner(site: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (site / "conf.d" / "20-partner.toml").write_text('[partners.canton]\nech0223_version = "1.4"\n')
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily",
                "--person", LOCAL) == 0
    assert "warning" not in capsys.readouterr().err
    assert send(site, "--partner", "canton", "--event", "declarationOfCommitment",
                "--person", LOCAL.split(":")[1]) == 0  # any category
    # the case worker is told that the partner gets another event than asked for
    assert ("warning: canton: personEvent declarationOfCommitment is not in eCH-0223 1.4: sent"
            " as othercaseOfMigration") in capsys.readouterr().err
    first, second = manual_rows(site)
    assert first[1] == second[1] == "routed"
    laggard = assert_official(payload_of(site, first[0]), "1.4")
    assert laggard.findtext(f".//{E223}personEvent") == "laggardOfFamily"
    # 1.4 has no declarationOfCommitment: othercaseOfMigration, the event named in the comment
    commitment = assert_official(payload_of(site, second[0]), "1.4")
    assert commitment.findtext(f".//{E223}personEvent") == "othercaseOfMigration"
    assert "declarationOfCommitment" in commitment.findtext(f".//{E223}businessComment")


def test_an_unknown_person_exits_3_and_stores_nothing(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily",
                "--person", "7561234567897") == 3
    assert "no person 7561234567897 is known" in capsys.readouterr().err
    assert manual_rows(site) == []


def test_a_vn_with_a_wrong_check_digit_exits_2_as_for_assign_and_stores_nothing(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped VN is a bad argument, said as ``messages assign`` says it: not an unknown
    person (exit 3), and no database is opened for it."""
    wrong = VN[:-1] + str((int(VN[-1]) + 1) % 10)
    with pytest.raises(SystemExit) as exited:
        send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", wrong)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"ech-gateway send: error: argument --person: {wrong} has a wrong check digit, so it"
        " is no VN (mistyped?)")
    assert manual_rows(site) == []


def test_an_invalid_event_exits_2_listing_the_valid_ones(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert send(site, "--partner", "canton", "--event", "laggardOfFamilly",
                "--person", VN) == 2
    err = capsys.readouterr().err
    assert "unknown eCH-0223 event 'laggardOfFamilly'" in err
    assert "laggardOfFamily" in err and "declarationOfCommitment" in err
    assert "(did you mean 'laggardOfFamily'?)" in err
    # the XSD's own spelling, in its own case: named, not left to be found in the list
    for wrong, meant in (("DeclarationOfCommitment", "declarationOfCommitment"),
                         ("undoSeparation", "undoSeperation")):
        assert send(site, "--partner", "canton", "--event", wrong, "--person", VN) == 2
        assert f"(did you mean {meant!r}?)" in capsys.readouterr().err
    assert send(site, "--partner", "kanton", "--event", "laggardOfFamily", "--person", VN) == 2
    assert ("no enabled partner 'kanton' (did you mean 'canton'?); partners: canton"
            in capsys.readouterr().err)
    assert send(site, "--partner", "canton", "--event", "moveIn", "--person", VN,
                "--business-key", "brb") == 2
    assert "unknown businessKey 'brb' (did you mean 'BRB'?)" in capsys.readouterr().err
    # refused, not cut with a warning about "the rule's comment" (there is no rule)
    assert send(site, "--partner", "canton", "--event", "moveIn", "--person", VN,
                "--comment", "ä" * 1025) == 2
    assert ("the comment has 1025 characters; eCH-0223 businessComment holds at most 1024"
            in capsys.readouterr().err)
    # a traceback, and the request left stored as "received", before
    assert send(site, "--partner", "canton", "--event", "moveIn", "--person", VN,
                "--comment", "Seite 1\fSeite 2") == 2
    assert ("the comment contains the control character U+000C, which XML cannot carry"
            in capsys.readouterr().err)
    assert manual_rows(site) == []


def test_what_the_partner_cannot_take_is_refused_before_anything_is_stored(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "conf.d" / "20-partner.toml").write_text(
        '[partners.canton]\nech0223_version = "1.3"\nunsupported_event = "refuse"\n')
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN) == 2
    err = capsys.readouterr().err
    assert "canton runs eCH-0223 1.3, which has no laggardOfFamily" in err
    assert 'unsupported_event = "refuse"' in err
    # the registry gets the partners' messages on the way back; nobody sends it one by hand
    assert send(site, "--partner", "registry", "--event", "laggardOfFamily", "--person", VN,
                "--sender-id", "T1-2511-1") == 2
    assert "partner 'registry' is the registry" in capsys.readouterr().err
    assert manual_rows(site) == []


def test_unusable_attachments_are_refused_naming_the_file(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = site / "empty.pdf"
    empty.write_bytes(b"")
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                "--attach", str(empty)) == 1
    assert f"{empty}: the file is empty" in capsys.readouterr().err
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                "--attach", str(site)) == 3  # a file that cannot be read: exit 3, as validate
    assert f"cannot read {site}: " in capsys.readouterr().err
    (site / "a").mkdir()
    (site / "b").mkdir()
    for scan in (site / "a" / "Ausweis.pdf", site / "b" / "Ausweis.pdf"):
        scan.write_bytes(b"%PDF-1.4\n")
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                "--attach", str(site / "a" / "Ausweis.pdf"), str(site / "b" / "Ausweis.pdf")) == 1
    assert "two files are named 'Ausweis.pdf'" in capsys.readouterr().err
    assert manual_rows(site) == []


def test_a_missing_attachment_is_refused_before_anything_is_stored(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = site / "nowhere.pdf"
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                "--attach", str(nowhere)) == 3
    assert capsys.readouterr().err == (f"ech-gateway: cannot read {nowhere}:"
                                       " No such file or directory\n")
    assert manual_rows(site) == []


def test_send_of_a_file_that_cannot_be_read_exits_3_as_validate_does(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = site / "missing.xml"
    assert send(site, str(missing), "--partner", "canton") == 3
    assert capsys.readouterr().err == (f"ech-gateway: cannot read {missing}:"
                                       " No such file or directory\n")
    assert main(["validate", str(missing)]) == 3
    assert manual_rows(site) == []


def test_send_file_sends_an_ech0223_file_as_it_is(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = site / "by-hand.xml"
    path.write_bytes(message())
    assert send(site, str(path), "--partner", "canton", "--business-key", "Rückfragen") == 0
    [(mid, state, _reason)] = manual_rows(site)
    assert state == "routed"
    root = assert_official(payload_of(site, mid))
    assert root.findtext(f".//{E223}businessKey") == "Rückfragen"
    # the same file again is the same input: not sent twice
    assert send(site, str(path), "--partner", "canton") == 1
    assert "not sent again" in capsys.readouterr().out


def test_send_file_sends_an_ech0020_delivery_as_the_message_the_daemon_makes_of_it(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The help said eCH-0223 only, yet eCH-0020 went through: now both say it does."""
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    assert "or an eCH-0020 v3 delivery to send as the eCH-0223 message the daemon makes of it" \
        in " ".join(capsys.readouterr().out.split())
    assert send(site, str(CORPUS / "move.xml"), "--partner", "canton") == 0
    [(mid, state, _reason)] = manual_rows(site)
    assert state == "routed"
    assert f"message {mid} (12426e55-90b3-51b4-ab8f-27438ef94f97): routed to canton" \
        in capsys.readouterr().out
    root = assert_official(payload_of(site, mid))
    assert root.findtext(f".//{E223}personEvent") == "move"
    # an event without counterpart is said so, and nothing goes out
    assert send(site, str(CORPUS / "changeSex.xml"), "--partner", "canton") == 1
    assert capsys.readouterr().out.endswith(
        ": not_relevant: eCH-0020 event changeSex has no eCH-0223 counterpart; sent by hand,"
        " it leaves the person state as it was\n")


def test_a_comment_cut_to_fit_the_file_s_own_is_called_the_request_s(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """There is no rule in a manual send: the warning spoke of "the rule's comment"."""
    registry = "Ä" * 1020
    path = site / "commented.xml"
    path.write_bytes(message(fixture="valid-pem-swiss-birthplace.xml", documents=False).replace(
        "Bitte Aufenthaltsbewilligung prüfen und Verfügung zustellen.".encode(),
        registry.encode()))
    assert send(site, str(path), "--partner", "canton", "--comment", "Nachtrag: Pass") == 0
    cut = ("businessComment: 11 of the 14 characters of the request's comment cut to stay"
           " within 1024")
    assert f"warning: {cut}" in capsys.readouterr().err
    [(mid, state, _reason)] = manual_rows(site)
    assert state == "routed"
    root = assert_official(payload_of(site, mid))
    assert root.findtext(f".//{E223}businessComment") == f"{registry}\nNac"
    [(detail,)] = states(site / "gateway.db", "SELECT detail FROM journal WHERE message = ?"
                         " AND event = 'message.normalised'", (mid,))
    assert json.loads(detail)["warnings"] == [cut]


def with_document(name: str) -> bytes:
    """A valid message whose one eCH-0039 document names files/``name`` (the SHA-256 of PDF)."""
    root = etree.fromstring(message())
    add_documents(root, [describe(Attachment(name, PDF), "m", datetime(2026, 1, 5, tzinfo=UTC),
                                  "signed")])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_send_file_naming_a_file_it_lacks_is_quarantined_naming_file_and_place(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = site / "by-hand.xml"
    plain.write_bytes(with_document("permit-2026.pdf"))
    lacking = site / "by-hand.zip"
    with zipfile.ZipFile(lacking, "w") as zf:
        zf.writestr("message.xml", with_document("permit-2026.pdf"))
        zf.writestr("files/other.pdf", PDF)
    for path in (plain, lacking):
        assert send(site, str(path), "--partner", "canton") == 1
        out = capsys.readouterr().out
        assert "quarantined: document file 'files/permit-2026.pdf' is not in the message's" in out
        assert "(at /personEventMessage/content/document[1]/files/file[1]/pathFileName)" in out
    assert [state for _mid, state, _r in manual_rows(site)] == ["quarantined", "quarantined"]
    assert states(site / "gateway.db", "SELECT count(*) FROM deliveries") == [(0,)]


def test_send_file_as_a_zip_with_the_named_file_sends_it(site: Path) -> None:
    path = site / "by-hand.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("message.xml", with_document("permit-2026.pdf"))
        zf.writestr("files/permit-2026.pdf", PDF)
    assert send(site, str(path), "--partner", "canton") == 0
    [(_mid, state, _reason)] = manual_rows(site)
    assert state == "routed"

    async def deliver() -> None:
        async with running(site / "gateway.toml", get_plugin_manager()):
            await until(lambda: bool(list((site / "sedex" / "outbox").glob("data_*.zip"))),
                        timeout=20)

    asyncio.run(deliver())
    [data] = (site / "sedex" / "outbox").glob("data_*.zip")
    with zipfile.ZipFile(data) as zf:
        assert sorted(zf.namelist()) == ["files/permit-2026.pdf", "message.xml"]
        sent = zf.read("files/permit-2026.pdf")
        root = assert_official(zf.read("message.xml"))
    assert sent == PDF
    [stated] = root.iter(f"{E39}hashCode")
    assert stated.text == hashlib.sha256(sent).hexdigest()


def test_a_plugin_sends_through_its_intake(site: Path) -> None:
    async def scenario() -> int:
        async with running(site / "gateway.toml", get_plugin_manager()) as gateway:
            settings = gateway.settings
            with pytest.raises(InputRejected, match="unknown eCH-0223 event"):
                await send_manual(gateway.pipeline, settings, "canton", "laggard", VN,
                                  requested_by="registry case 42")
            with pytest.raises(InputRejected, match="needs its category"):
                await send_manual(gateway.pipeline, settings, "canton", "laggardOfFamily",
                                  "100101", requested_by="registry case 42")
            mid = await send_manual(
                gateway.pipeline, settings, "canton", "declarationOfCommitment", VN,
                requested_by="registry case 42", business_key="Verfügung",
                files=[Attachment("commitment.pdf", PDF)])
            unknown = await send_manual(gateway.pipeline, settings, "canton", "laggardOfFamily",
                                        "7561234567897", requested_by="registry case 43")
            await until(lambda: bool(list((site / "sedex" / "outbox").glob("data_*.zip")))
                        and len(manual_rows(site)) == 2 and "received" not in
                        [s for _m, s, _r in manual_rows(site)], timeout=20)
            assert unknown != mid
            return mid

    mid = asyncio.run(scenario())
    rows = {m: (s, r) for m, s, r in manual_rows(site)}
    assert rows[mid][0] == "routed"
    [(other_state, reason)] = [v for m, v in rows.items() if m != mid]
    assert other_state == "quarantined" and "no person known by vn:756…97" in reason
    [data] = (site / "sedex" / "outbox").glob("data_*.zip")
    with zipfile.ZipFile(data) as zf:
        root = assert_official(zf.read("message.xml"))
    assert root.findtext(f".//{E223}personEvent") == "declarationOfCommitment"
    assert root.findtext(f".//{E223}businessKey") == "Verfügung"


def test_the_source_name_manual_is_reserved(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-manual.toml").write_text(
        '[sources.manual]\ntype = "folder"\npath = "registry/outbox"\ndone_dir = "registry/done"\n')
    assert main(["check-config", "--config", str(config)]) == 2
    out = capsys.readouterr()
    assert "sources.manual" in out.out + out.err
    assert "reserved for manual sends" in out.out + out.err


def test_the_header_ids_come_from_the_partners_sedex_options(site: Path) -> None:
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN) == 0
    [(mid, _state, _reason)] = manual_rows(site)
    header = assert_official(payload_of(site, mid)).find(f"{E223}header")
    assert header.findtext(f"{E39}senderId") == "T1-2511-1"  # [partners.canton.sedex] of init
    assert states(site / "gateway.db", "SELECT sender_id FROM messages WHERE id = ?",
                  (mid,)) == [("T1-2511-1",)]
    assert [r.text for r in header.iter(f"{E39}recipientId")] == ["T2-2-1"]
    assert header.findtext(f"{E39}testDeliveryFlag") == "true"


def test_a_manual_send_is_completed_in_a_worker_process(site: Path) -> None:
    """With worker processes the request's draft crosses to a worker and back."""
    (site / "conf.d" / "20-workers.toml").write_text("[gateway]\nworkers = 1\n")

    async def scenario() -> int:
        async with running(site / "gateway.toml", get_plugin_manager()) as gateway:
            mid = await send_manual(gateway.pipeline, gateway.settings, "canton",
                                    "declarationOfCommitment", LOCAL, requested_by="case 7",
                                    files=[Attachment("commitment.pdf", PDF)])
            await until(lambda: manual_rows(site) == [(mid, "routed", None)], timeout=30)
            return mid

    mid = asyncio.run(scenario())
    root = assert_official(payload_of(site, mid))
    assert root.findtext(f".//{E223}personEvent") == "declarationOfCommitment"
    assert root.findtext(f".//{E39}pathFileName") == "files/commitment.pdf"


def test_send_refuses_mixed_arguments(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = site / "by-hand.xml"
    path.write_bytes(message())
    assert send(site, "--partner", "canton", "--attach", str(path), "--", str(path)) == 2
    assert "its files travel in it" in capsys.readouterr().err
    assert send(site, "--partner", "canton", "--event", "laggardOfFamily") == 2
    assert "--event and --person go together" in capsys.readouterr().err
    assert send(site, str(path), "--partner", "canton", "--event", "laggardOfFamily") == 2
    assert manual_rows(site) == []
