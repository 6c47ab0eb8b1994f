"""Documents: a rule attaches scans from the documents folder; they travel as eCH-0039 documents.

Real folders and files, the real plugins (sedex transport into its outbox
folder), the official eCH-0223 XSD as the oracle of every message sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import re
import time
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

import plugins.ech0223 as ech0223_plugin
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.contracts import Attachment, NormaliseContext, RawInput
from gateway.document_picking import Limits, message_values, pattern_problem
from gateway.documents import DocumentsFolder, add_documents, describe, mime_type
from gateway.ech0223 import NamedPersonId, sample_person_event, write_message
from gateway.errors import InputRejected
from gateway.plugins import get_plugin_manager
from tests.flow import drop, running, states, until
from tests.official import official_schema_set

E39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
E223 = "{http://www.ech.ch/xmlns/eCH-0223/1}"
VN = "7561234567897"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

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
RULES = """
[[rules]]
name = "permits-with-scan"
match = {{ event = ["{event}"] }}
then = {{ route_to = ["canton"], business_key = "BRB", documents = {documents} }}

[[rules]]
name = "others"
then = {{ route_to = ["canton"] }}
"""


def assert_official(doc: etree._ElementTree | etree._Element, version: str) -> None:
    """``doc`` is valid eCH-0223 ``version`` by the official XSD."""
    report = official_schema_set().validate(doc, ech0223_version=version)
    assert report.errors == []


def person_event(event: str = "prolongationB", vn: str | None = VN, seed: int = 1,
                 local_id: str | None = None) -> bytes:
    """A valid eCH-0223 1.5 message about the person with ``vn`` (and the registry's
    ``local_id``, if given), without documents."""
    msg = sample_person_event(random.Random(seed), event=event)
    msg.content.document = []
    msg.content.person_identification.vn = int(vn) if vn else None
    if local_id is not None:
        msg.content.person_identification.local_person_id = NamedPersonId(
            person_id_category="MU.6172", person_id=local_id)
    return write_message(msg)


def gateway_dir(root: Path, documents: str, event: str = "prolongationB") -> Path:
    config = write_initial_config(root)
    (root / "conf.d" / "10-test.toml").write_text(
        FAST + RULES.format(event=event, documents=documents))
    (root / "documents").mkdir(exist_ok=True)
    return config


def scan(path: Path, data: bytes = PDF, age: float = 60.0) -> Path:
    """Write a scan at ``path`` as a scanner that finished ``age`` seconds ago left it."""
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def outbox_zips(root: Path) -> list[Path]:
    return sorted((root / "sedex" / "outbox").glob("data_*.zip"))


def test_a_rule_attaches_a_scanned_pdf_and_sedex_gets_it_in_the_zip(tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, '["permit-{vn}.pdf"]')
    scanned = scan(tmp_path / "documents" / f"permit-{VN}.pdf")

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", person_event())
            await until(lambda: bool(outbox_zips(tmp_path)), timeout=20)

    asyncio.run(scenario())
    [payload] = outbox_zips(tmp_path)
    with zipfile.ZipFile(payload) as zf:
        assert sorted(zf.namelist()) == ["files/" + scanned.name, "message.xml"]
        xml = zf.read("message.xml")
        sent_file = zf.read("files/" + scanned.name)
    assert sent_file == PDF
    tree = etree.fromstring(xml).getroottree()
    assert_official(tree, "1.5")
    [document] = tree.getroot().iter(f"{E223}document")
    file_el = document.find(f"{E39}files/{E39}file")
    assert file_el.findtext(f"{E39}pathFileName") == f"files/{scanned.name}"
    assert file_el.findtext(f"{E39}mimeType") == "application/pdf"
    assert file_el.findtext(f"{E39}hashCodeAlgorithm") == "SHA-256"
    assert file_el.findtext(f"{E39}hashCode") == hashlib.sha256(sent_file).hexdigest()
    assert document.findtext(f"{E39}titles/{E39}title") == f"permit-{VN}"
    assert tree.getroot().findtext(f"{E223}content/{E223}businessInformation/{E223}businessKey") == "BRB"
    [(mid, count)] = states(tmp_path / "gateway.db",
                            "SELECT message, count(*) FROM attachments GROUP BY message")
    assert count == 1
    assert main(["messages", "show", str(mid), "--config", str(config)]) == 0


def test_a_missing_scan_quarantines_the_message_naming_rule_and_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path, '["permit-{vn}.pdf"]')

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", person_event())
            await until(lambda: states(tmp_path / "gateway.db",
                                       "SELECT state FROM messages") == [("quarantined",)])

    asyncio.run(scenario())
    [(mid, reason)] = states(tmp_path / "gateway.db", "SELECT id, reason FROM messages")
    assert "rules[1] permits-with-scan" in reason
    assert f"permit-{VN}.pdf" in reason
    assert not list((tmp_path / "sedex" / "outbox").glob("data_*"))
    # the operator puts the scan there and replays: now it goes out, with the file
    scan(tmp_path / "documents" / f"permit-{VN}.pdf")
    assert main(["messages", "replay", str(mid), "--config", str(config)]) == 0
    assert "now routed" in capsys.readouterr().out
    [(count,)] = states(tmp_path / "gateway.db", "SELECT count(*) FROM attachments")
    assert count == 1


def test_an_ech0020_permit_change_replayed_once_its_scan_is_there_keeps_its_event(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The quarantined event did not change the person's state: the replay compares the new
    permit with the old one again, and it is still a prolongation (not a duplicate)."""
    config = gateway_dir(tmp_path, '["permit-{vn}.pdf"]')
    corpus = Path(__file__).parent / "fixtures" / "ech0020"
    vn = "7562328558609"  # changeResidencePermit-prolongationB.xml
    db = tmp_path / "gateway.db"

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            outbox = tmp_path / "registry" / "outbox"
            drop(outbox, "base.xml", (corpus / "baseDelivery.xml").read_bytes())
            await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])
            drop(outbox, "permit.xml",
                 (corpus / "changeResidencePermit-prolongationB.xml").read_bytes())
            await until(lambda: ("quarantined",) in states(db, "SELECT state FROM messages"))

    asyncio.run(scenario())
    [(mid,)] = states(db, "SELECT id FROM messages WHERE state = 'quarantined'")
    scan(tmp_path / "documents" / f"permit-{vn}.pdf")
    assert main(["messages", "replay", str(mid), "--config", str(config)]) == 0
    assert "now routed" in capsys.readouterr().out

    async def send() -> None:
        async with running(config, get_plugin_manager()):
            await until(lambda: any((tmp_path / "sedex" / "outbox").glob("data_*")))

    asyncio.run(send())
    [payload] = (tmp_path / "sedex" / "outbox").glob("data_*")
    assert payload.suffix == ".zip"  # sent with its scan
    with zipfile.ZipFile(payload) as zf:
        assert "files/" + f"permit-{vn}.pdf" in zf.namelist()
        root = etree.fromstring(zf.read("message.xml"))
    assert root.findtext(f"{E223}content/{E223}personEvent") == "prolongationB"


def test_a_folder_per_person_attaches_every_scan_in_it_valid_for_a_1_0_partner(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, '["{vn}/*.pdf", "{vn}/*.jpg"]')
    with (tmp_path / "conf.d" / "10-test.toml").open("a") as f:
        f.write('[partners.canton]\nech0223_version = "1.0"\n')
    person = tmp_path / "documents" / VN
    person.mkdir()
    scan(person / "passport.pdf")
    scan(person / "contract.pdf", PDF + b"% contract\n")
    scan(person / "photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100))
    (person / "notes.txt").write_text("not named by the rule")

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", person_event())
            await until(lambda: bool(outbox_zips(tmp_path)), timeout=20)

    asyncio.run(scenario())
    [payload] = outbox_zips(tmp_path)
    with zipfile.ZipFile(payload) as zf:
        assert sorted(zf.namelist()) == ["files/contract.pdf", "files/passport.pdf",
                                         "files/photo.jpg", "message.xml"]
        xml = zf.read("message.xml")
    tree = etree.fromstring(xml).getroottree()
    assert_official(tree, "1.0")
    dates = [d.findtext(f"{E223}originalCreationDate") for d in tree.getroot().iter(f"{E223}document")]
    assert len(dates) == 3 and all("T" not in d for d in dates)  # xs:date in 1.0
    mimes = sorted(f.text for f in tree.getroot().iter(f"{E39}mimeType"))
    assert mimes == ["application/pdf", "application/pdf", "image/jpeg"]


@pytest.mark.parametrize("local_id", ["../../etc", "a/b"])
def test_a_placeholder_value_that_is_a_path_quarantines_the_message_and_attaches_nothing(
        tmp_path: Path, local_id: str) -> None:
    """``{local_id}`` is the registry's text: ``a/b`` would reach another folder's scans,
    ``../../etc`` out of the documents folder. The message is quarantined naming the rule and
    the placeholder; nothing is attached or sent."""
    root = tmp_path / "site"  # the documents folder two levels down: ../../etc is tmp_path/etc
    config = gateway_dir(root, '["{local_id}/*.pdf"]')
    db = root / "gateway.db"
    (root / "documents" / "a" / "b").mkdir(parents=True)
    scan(root / "documents" / "a" / "b" / "other-persons-scan.pdf")
    (tmp_path / "etc").mkdir()
    scan(tmp_path / "etc" / "passwd.pdf")

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(root / "registry" / "outbox", "m1.xml", person_event(local_id=local_id))
            await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])

    asyncio.run(scenario())
    [(reason,)] = states(db, "SELECT reason FROM messages")
    assert reason == ("rules[1] permits-with-scan: {local_id} of this message cannot be part of"
                      " a file name: its value holds a '/' or '\\'")
    assert states(db, "SELECT count(*) FROM attachments") == [(0,)]
    assert not list((root / "sedex" / "outbox").glob("data_*"))


# -- the folder itself, without a gateway around it -----------------------------------


def folder(tmp_path: Path, max_files: int = 5, max_bytes: int = 10_000) -> DocumentsFolder:
    (tmp_path / "docs").mkdir(exist_ok=True)
    return DocumentsFolder(tmp_path / "docs", Limits(max_files, max_bytes), "approved")


def message_root(vn: str | None = VN) -> etree._Element:
    return etree.fromstring(person_event(vn=vn))


def test_attached_documents_validate_and_keep_schema_order(tmp_path: Path) -> None:
    docs = folder(tmp_path)
    (docs.dir / f"{VN}.pdf").write_bytes(PDF)
    root = message_root()
    files = docs.attach(root, ["{vn}.pdf"], "rules[1] r")
    assert files == [Attachment(f"{VN}.pdf", PDF)]
    assert_official(root.getroottree(), "1.5")
    assert root.findtext(f".//{E39}status") == "approved"


@pytest.mark.parametrize(("patterns", "layout", "words"), [
    (["permit-{vn}.pdf"], {}, "not found"),
    (["{vn_dotted}.pdf"], {}, "needs {vn_dotted}"),
    (["*.pdf"], {"a.pdf": PDF, "b.pdf": PDF, "c.pdf": PDF}, "more than [limits] max_attachments"),
    (["big.pdf"], {"big.pdf": PDF * 200}, "max_attachment_bytes"),
    (["a/x.pdf", "b/x.pdf"], {"a/x.pdf": PDF, "b/x.pdf": PDF}, "two documents are named"),
])
def test_what_a_rule_cannot_attach_is_refused_with_the_rule_named(
        tmp_path: Path, patterns: list[str], layout: dict[str, bytes], words: str) -> None:
    docs = folder(tmp_path, max_files=2)
    for name, data in layout.items():
        (docs.dir / name).parent.mkdir(parents=True, exist_ok=True)
        (docs.dir / name).write_bytes(data)
    with pytest.raises(InputRejected) as caught:
        docs.attach(message_root(vn=None if "needs" in words else VN), patterns, "rules[3] scans")
    assert "rules[3] scans" in str(caught.value)
    assert words in str(caught.value)


def test_links_out_of_the_folder_are_not_attached(tmp_path: Path) -> None:
    docs = folder(tmp_path)
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(PDF)
    os.symlink(secret, docs.dir / f"{VN}.pdf")
    with pytest.raises(InputRejected, match=f"document {docs.dir / VN}.pdf is a link"):
        docs.attach(message_root(), ["{vn}.pdf"], "rules[1] r")


@pytest.mark.parametrize("link", ["a link out of the folder", "a link in it", "a folder link"])
def test_a_link_a_glob_matches_quarantines_the_message_never_goes_without(
        tmp_path: Path, link: str) -> None:
    """Beside a real scan, a linked one was skipped in silence: the message went without it."""
    docs = folder(tmp_path)
    (docs.dir / VN).mkdir()
    scan(docs.dir / VN / "permit.pdf")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = scan(outside / "passport.pdf")
    pattern = "{vn}/*.pdf"
    if link == "a link out of the folder":
        os.symlink(target, docs.dir / VN / "passport.pdf")
    elif link == "a link in it":
        os.symlink(docs.dir / VN / "permit.pdf", docs.dir / VN / "passport.pdf")
    else:
        os.symlink(outside, docs.dir / "linked")
        pattern = "*/*.pdf"
    with pytest.raises(InputRejected, match=r"rules\[1\] r: document .*passport.pdf is a link"):
        docs.attach(message_root(), [pattern], "rules[1] r")


def test_patterns_match_names_in_any_case_as_a_source_s_do(tmp_path: Path) -> None:
    """A scanner on Windows writes SCAN.PDF: "*.pdf" did not find it and the message was
    quarantined for a scan that was there."""
    docs = folder(tmp_path)
    (docs.dir / VN / "Permits").mkdir(parents=True)
    scan(docs.dir / VN / "SCAN.PDF")
    scan(docs.dir / VN / "Permits" / "Renewal.Pdf")
    scan(docs.dir / VN / "notes.txt")
    files = docs.attach(message_root(), ["{vn}/*.pdf", "{vn}/permits/RENEWAL.pdf"], "rules[1] r")
    assert [a.name for a in files] == ["SCAN.PDF", "Renewal.Pdf"]
    # ** still reaches every folder below
    files = docs.attach(message_root(), ["{vn}/**/*.pdf"], "rules[1] r")
    assert sorted(a.name for a in files) == ["Renewal.Pdf", "SCAN.PDF"]


def test_a_value_with_glob_characters_matches_only_itself(tmp_path: Path) -> None:
    docs = folder(tmp_path)
    (docs.dir / "case-1.pdf").write_bytes(PDF)
    root = message_root()
    header = root.find(f"{E223}header")
    ref = etree.SubElement(header, f"{E39}ourBusinessReferenceId")
    header.find(f"{E39}messageType").addprevious(ref)
    ref.text = "case-*"
    with pytest.raises(InputRejected, match="not found"):
        docs.attach(root, ["{reference}.pdf"], "rules[1] r")
    assert message_values(root.getroottree())["reference"] == "case-*"


@pytest.mark.parametrize(("placeholder", "value"), [
    ("local_id", "../../etc"), ("local_id", "a/b"), ("local_id", ".."), ("local_id", "a\\b"),
    ("reference", "../../etc"), ("reference", "a/b"),
])
def test_a_placeholder_value_that_is_a_path_is_refused_naming_the_placeholder(
        tmp_path: Path, placeholder: str, value: str) -> None:
    """A value filled into a pattern stays one name in the documents folder: one with a / or
    \\, or . or .., is refused before any file is looked for; what it would reach is there."""
    docs = DocumentsFolder(tmp_path / "site" / "docs", Limits(5, 10_000), "approved")
    docs.dir.mkdir(parents=True)
    for reachable in ("a/b/scan.pdf", "../scan.pdf", "../../etc/scan.pdf", "a\\b/scan.pdf"):
        (docs.dir / reachable).parent.mkdir(parents=True, exist_ok=True)
        scan(docs.dir / reachable)
    root = etree.fromstring(person_event(local_id=value if placeholder == "local_id" else "1"))
    if placeholder == "reference":
        header = root.find(f"{E223}header")
        ref = etree.SubElement(header, f"{E39}ourBusinessReferenceId")
        header.find(f"{E39}messageType").addprevious(ref)
        ref.text = value
    with pytest.raises(InputRejected) as caught:
        docs.attach(root, [f"{{{placeholder}}}/*.pdf"], "rules[1] r")
    why = "is '.' or '..'" if value == ".." else "holds a '/' or '\\'"
    assert str(caught.value) == (f"rules[1] r: {{{placeholder}}} of this message cannot be part"
                                 f" of a file name: its value {why}")
    assert root.find(f".//{E223}document") is None  # nothing attached


@pytest.mark.parametrize(("pattern", "problem"), [
    ("{vn}.pdf", None),
    ("{vn_dotted}/*.pdf", None),
    ("{name}.pdf", "unknown placeholder {name}"),
    ("../x.pdf", "inside the documents folder"),
    ("/etc/passwd", "inside the documents folder"),
    ("{vn.pdf", "not a pattern"),
    ("", "must name files"),  # pathlib refuses to glob it: a crash when the rule fired
    (".", "must name files"),  # the folder itself: pathlib's glob fails on it
    ("{vn}/", "must name files"),  # only folders match
])
def test_patterns_are_checked_when_the_configuration_is_read(pattern: str,
                                                             problem: str | None) -> None:
    found = pattern_problem(pattern)
    assert (found is None) if problem is None else (problem in (found or ""))


def refused(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``check-config`` says of ``config``, which it must refuse (exit 2)."""
    assert main(["check-config", "--config", str(config)]) == 2
    err = capsys.readouterr()
    return err.out + err.err


def test_check_config_names_a_missing_documents_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path, '["{vn}.pdf"]')
    (tmp_path / "documents").rmdir()
    said = refused(config, capsys)
    assert "documents.dir" in said
    assert "no such folder" in said


def test_check_config_refuses_an_unknown_placeholder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown placeholder {ahv}" in refused(gateway_dir(tmp_path, '["{ahv}.pdf"]'), capsys)


def test_check_config_refuses_a_pattern_that_names_no_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty pattern passed, then crashed the message's processing when the rule fired."""
    said = refused(gateway_dir(tmp_path, '[""]'), capsys)
    assert "rules[1].then.documents" in said
    assert "must name files" in said


def test_mime_type_comes_from_the_bytes_first() -> None:
    assert mime_type("scan.bin", PDF) == "application/pdf"
    assert mime_type("scan.png", b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert mime_type("letter.txt", b"hello") == "text/plain"
    assert mime_type("blob", b"\x00\x01") == "application/octet-stream"


def test_inbound_zip_files_are_kept_and_shown(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path, '["never.pdf"]', event="death")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("message.xml", person_event())
        zf.writestr("files/permit.pdf", PDF)

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.zip", buf.getvalue())
            await until(lambda: bool(outbox_zips(tmp_path)), timeout=20)

    asyncio.run(scenario())
    [(mid,)] = states(tmp_path / "gateway.db", "SELECT id FROM messages")
    capsys.readouterr()
    assert main(["messages", "show", str(mid), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "permit.pdf" in out
    assert hashlib.sha256(PDF).hexdigest()[:16] in out


# -- inbound: the files of an eCH-0223 zip -------------------------------------------


def inbound_zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names on purpose here
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def with_document(pdf: bytes, digest: str | None = None, name: str = "permit.pdf",
                  seed: int = 1) -> bytes:
    """A message whose one document names files/``name`` with the SHA-256 of ``pdf``."""
    root = etree.fromstring(person_event(seed=seed))
    doc = describe(Attachment(name, pdf), "m", datetime(2024, 3, 4, tzinfo=UTC), "approved")
    if digest is not None:
        doc.files[0].hash_code = digest
    add_documents(root, [doc])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


CONTEXT = NormaliseContext(max_bytes=1 << 20, max_zip_entries=4, max_zip_bytes=64 * 1024,
                           max_zip_ratio=100)


@pytest.mark.parametrize(("entries", "words"), [
    ([("message.xml", b"M"), ("files/../x.pdf", PDF)], "escapes its folder"),
    ([("message.xml", b"M"), ("/etc/x.pdf", PDF)], "absolute entry path"),
    ([("message.xml", b"M"), ("files/a.pdf", PDF), ("files/a.pdf", PDF)], "duplicate entry"),
    ([("message.xml", b"M")] + [(f"files/{i}.pdf", PDF) for i in range(4)],
     "more than [limits] max_zip_entries (4)"),
    ([("message.xml", b"M"), ("files/big.pdf", os.urandom(70_000))],
     "more than [limits] max_zip_bytes (65536 bytes)"),
    ([("message.xml", b"M"), ("files/sub/a.pdf", PDF)], "subfolders of files/"),
    ([("message.xml", b"M"), ("scan.pdf", PDF)], "outside files/"),
])
def test_inbound_zip_files_are_refused_past_their_limits(entries: list[tuple[str, bytes]],
                                                         words: str) -> None:
    entries = [(n, person_event() if d == b"M" else d) for n, d in entries]
    with pytest.raises(InputRejected) as caught:
        ech0223_plugin.gateway_normalise(RawInput("registry", "m.zip", inbound_zip(entries)),
                                         CONTEXT)
    assert words in str(caught.value)


def test_inbound_zip_files_become_the_messages_attachments_checked_by_hash() -> None:
    good = inbound_zip([("message.xml", with_document(PDF)), ("files/permit.pdf", PDF),
                        ("files/extra.pdf", PDF)])
    n = ech0223_plugin.gateway_normalise(RawInput("registry", "m.zip", good), CONTEXT)
    assert n is not None
    assert n.attachments == (Attachment("extra.pdf", PDF), Attachment("permit.pdf", PDF))
    assert n.warnings == ("zip file 'files/extra.pdf' is named by no document",)
    bad = inbound_zip([("message.xml", with_document(PDF, "0" * 64)), ("files/permit.pdf", PDF)])
    with pytest.raises(InputRejected, match="does not match its document's SHA-256"):
        ech0223_plugin.gateway_normalise(RawInput("registry", "m.zip", bad), CONTEXT)


@pytest.mark.parametrize(("supplied", "words"), [
    ([Attachment("../x.pdf", PDF)], "not a plain file name"),
    ([Attachment("a.pdf", PDF), Attachment("a.pdf", PDF)], "two documents are named 'a.pdf'"),
    ([Attachment(f"{i}.pdf", PDF) for i in range(3)], "more than [limits] max_attachments (3)"),
    ([Attachment("big.pdf", PDF * 200)], "max_attachment_bytes"),
    ([Attachment("scan.pdf", PDF)], "two documents are named 'scan.pdf'"),  # the input has one
])
def test_files_a_plugin_supplies_obey_the_same_limits(tmp_path: Path, supplied: list[Attachment],
                                                     words: str) -> None:
    docs = folder(tmp_path, max_files=3)
    with pytest.raises(InputRejected) as caught:
        docs.attach(message_root(), [], "rules[1] r", [Attachment("scan.pdf", PDF)], supplied)
    assert words in str(caught.value)


def test_files_a_plugin_supplies_follow_the_rules_files(tmp_path: Path) -> None:
    docs = folder(tmp_path)
    (docs.dir / f"{VN}.pdf").write_bytes(PDF)
    root = message_root()
    files = docs.attach(root, ["{vn}.pdf"], "rules[1] r", (), [Attachment("letter.pdf", PDF)])
    assert [f.name for f in files] == [f"{VN}.pdf", "letter.pdf"]
    assert [p.text for p in root.iter(f"{E39}pathFileName")] == [f"files/{VN}.pdf",
                                                                  "files/letter.pdf"]
    assert_official(root, "1.5")


def test_an_input_that_brought_more_files_than_a_message_may_carry_is_quarantined(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, '["never.pdf"]', event="death")
    with (tmp_path / "conf.d" / "10-test.toml").open("a") as f:
        f.write("[limits]\nmax_attachments = 2\n")
    entries = [("message.xml", person_event())] + [(f"files/{i}.pdf", PDF) for i in range(3)]

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.zip", inbound_zip(entries))
            await until(lambda: states(tmp_path / "gateway.db", "SELECT state FROM messages")
                        == [("quarantined",)])

    asyncio.run(scenario())
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason == "the files of the input: 3 documents, more than [limits] max_attachments (2)"


# -- the files a message's own documents name ----------------------------------------

NAMED = "permit-2026.pdf"
WHERE = "/personEventMessage/content/document[1]/files/file[1]/pathFileName"


def test_a_message_naming_files_its_input_lacks_is_quarantined_and_a_zip_with_them_is_sent(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, '["never.pdf"]', event="death")
    plain = with_document(PDF, name=NAMED, seed=1)
    lacking = inbound_zip([("message.xml", with_document(PDF, name=NAMED, seed=2)),
                           ("files/other.pdf", PDF)])
    good = inbound_zip([("message.xml", with_document(PDF, name=NAMED, seed=3)),
                        (f"files/{NAMED}", PDF)])
    db = tmp_path / "gateway.db"

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            outbox = tmp_path / "registry" / "outbox"
            drop(outbox, "plain.xml", plain)
            drop(outbox, "lacking.zip", lacking)
            drop(outbox, "good.zip", good)
            await until(lambda: len(states(db, "SELECT 1 FROM messages WHERE state ="
                                               " 'quarantined'")) == 2
                        and bool(outbox_zips(tmp_path)), timeout=20)

    asyncio.run(scenario())
    rows = dict((ref, (state, reason)) for ref, state, reason
                in states(db, "SELECT ref, state, reason FROM messages"))
    for ref in ("plain.xml", "lacking.zip"):
        state, reason = rows[ref]
        assert state == "quarantined"
        assert f"'files/{NAMED}' is not in the message's payload" in reason
        # a manual send (send FILE) is taken by no rule: a corrected zip is what mends it
        assert f"send the message again as a zip with files/{NAMED} (messages resubmit ID" \
               " FILE.zip)" in reason
        assert reason.endswith(f"(at {WHERE})")
    assert rows["good.zip"] == ("routed", None)
    [payload] = outbox_zips(tmp_path)
    with zipfile.ZipFile(payload) as zf:
        assert sorted(zf.namelist()) == [f"files/{NAMED}", "message.xml"]
        sent = zf.read(f"files/{NAMED}")
        root = etree.fromstring(zf.read("message.xml"))
    assert sent == PDF
    [stated] = root.iter(f"{E39}hashCode")
    assert stated.text == hashlib.sha256(sent).hexdigest()


def test_a_file_a_message_names_may_come_from_a_rule_and_is_described_once(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, f'["{NAMED}"]')
    scan(tmp_path / "documents" / NAMED)

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", with_document(PDF, name=NAMED))
            await until(lambda: bool(outbox_zips(tmp_path)), timeout=20)

    asyncio.run(scenario())
    [payload] = outbox_zips(tmp_path)
    with zipfile.ZipFile(payload) as zf:
        assert sorted(zf.namelist()) == [f"files/{NAMED}", "message.xml"]
        root = etree.fromstring(zf.read("message.xml"))
    assert [p.text for p in root.iter(f"{E39}pathFileName")] == [f"files/{NAMED}"]


def test_a_file_supplied_for_a_named_one_must_be_the_file_its_document_states(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path, f'["{NAMED}"]')
    scan(tmp_path / "documents" / NAMED, PDF + b"% another scan\n")

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", with_document(PDF, name=NAMED))
            await until(lambda: states(tmp_path / "gateway.db", "SELECT state FROM messages")
                        == [("quarantined",)])

    asyncio.run(scenario())
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason == (f"files/{NAMED} does not match its document's SHA-256 hashCode"
                      f" (damaged or replaced) (at {WHERE})")


# -- documents still being written ---------------------------------------------------


def test_a_scan_modified_within_settle_is_quarantined_and_sent_by_a_replay_once_settled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path, '["permit-{vn}.pdf"]')
    with (tmp_path / "conf.d" / "10-test.toml").open("a") as f:
        f.write('[documents]\nsettle = "30s"\n')
    path = scan(tmp_path / "documents" / f"permit-{VN}.pdf", age=0)  # the scanner is at it
    db = tmp_path / "gateway.db"

    async def scenario() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "registry" / "outbox", "m1.xml", person_event())
            await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])

    asyncio.run(scenario())
    [(mid, reason)] = states(db, "SELECT id, reason FROM messages")
    assert reason.startswith(f"rules[1] permits-with-scan: document {path} was modified")
    assert "less than [documents] settle (30 s): it may still be being written" in reason
    assert "`ech-gateway messages replay ID` sends it" in reason
    assert not list((tmp_path / "sedex" / "outbox").glob("data_*"))
    [(count,)] = states(db, "SELECT count(*) FROM attachments")
    assert count == 0
    # the scanner finished a minute ago: the replay sends it
    scan(path, age=60)
    assert main(["messages", "replay", str(mid), "--config", str(config)]) == 0
    assert "now routed" in capsys.readouterr().out
    [(count,)] = states(db, "SELECT count(*) FROM attachments")
    assert count == 1


def test_an_empty_scan_is_refused_naming_it(tmp_path: Path) -> None:
    docs = folder(tmp_path)
    empty = scan(docs.dir / f"{VN}.pdf", b"")
    with pytest.raises(InputRejected) as caught:
        docs.attach(message_root(), ["{vn}.pdf"], "rules[1] r")
    assert str(caught.value) == (f"rules[1] r: document {empty} is empty (0 bytes: a scan that"
                                 " failed?); put the complete file there and replay the message")


def test_a_scan_younger_than_settle_is_refused_an_older_one_taken(tmp_path: Path) -> None:
    docs = DocumentsFolder(tmp_path, Limits(5, 10_000), settle=5.0)
    fresh = scan(tmp_path / f"{VN}.pdf", age=1)
    with pytest.raises(InputRejected, match=re.escape(f"document {fresh} was modified ")
                       + r"\d+\.\d s ago, less than \[documents\] settle \(5 s\)"):
        docs.attach(message_root(), ["{vn}.pdf"], "rules[1] r")
    scan(fresh, age=6)
    assert [a.name for a in docs.attach(message_root(), ["{vn}.pdf"], "rules[1] r")] == [
        f"{VN}.pdf"]


def test_an_empty_file_a_plugin_supplies_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as caught:
        folder(tmp_path).attach(message_root(), [], "rules[1] r", (),
                                [Attachment("letter.pdf", b"")])
    assert str(caught.value) == "rules[1] r: document 'letter.pdf' is empty (0 bytes)"
