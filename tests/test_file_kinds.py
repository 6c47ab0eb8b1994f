"""A document that is not what its name says is not sent: a ``.pdf`` that holds a web page
or a PNG would reach the canton as ``application/pdf`` (or as a PNG under a PDF's name)
and come back as a negative eventReport ("Dokument nicht lesbar").

Real files in a real documents folder, picked by a rule's patterns; manual sends in
:mod:`tests.test_manual_send_refusals`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.contracts import Attachment
from gateway.documents import mime_type
from gateway.errors import InputRejected
from gateway.file_kinds import content_problem
from tests.test_documents import PDF, VN, folder, message_root, scan

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)
PAGE = b"<!DOCTYPE html><html><body>Scan failed: paper jam</body></html>\n"


@pytest.mark.parametrize(("name", "data"), [
    ("scan.pdf", PDF), ("SCAN.PDF", PDF), ("foto.jpg", b"\xff\xd8\xff\xe0" + bytes(20)),
    ("pass.tiff", b"II*\x00" + bytes(20)), ("big.tif", b"II+\x00" + bytes(20)),
    ("scan.pdf", b"\xef\xbb\xbf\r\n%PDF-1.7\n%%EOF\n"),  # readers take junk before the header
    ("antrag.docx", b"PK\x03\x04" + bytes(20)), ("notiz.txt", b"hello"), ("blob", b"\x00"),
])
def test_files_that_are_what_their_names_say_are_taken(name: str, data: bytes) -> None:
    assert content_problem(name, data) is None


def test_a_pdf_with_junk_before_its_header_is_described_as_a_pdf() -> None:
    assert mime_type("scan.bin", b"\r\n%PDF-1.4\n%%EOF\n") == "application/pdf"


def test_a_rule_s_scan_that_is_a_web_page_or_another_kind_quarantines_naming_it(
        tmp_path: Path) -> None:
    docs = folder(tmp_path)
    page = scan(docs.dir / f"{VN}-permit.pdf", PAGE)
    with pytest.raises(InputRejected) as caught:
        docs.attach(message_root(), ["{vn}-*.pdf"], "rules[1] permits")
    assert str(caught.value) == (
        f"rules[1] permits: document {page}: its name says application/pdf, but its bytes are"
        " not (they start b'<!DOCTYP': a scan that failed, or another file saved under its"
        " name); put the right file there and replay the message")
    scan(page, PNG)
    with pytest.raises(InputRejected, match="its name says application/pdf, but its bytes are"
                       r" image/png \(renamed\?\)"):
        docs.attach(message_root(), ["{vn}-*.pdf"], "rules[1] permits")
    scan(page, PDF)
    assert [a.name for a in docs.attach(message_root(), ["{vn}-*.pdf"], "rules[1] permits")] == [
        f"{VN}-permit.pdf"]


def test_a_plugin_s_file_that_is_not_what_its_name_says_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputRejected, match=r"document 'letter\.jpg' from a documents plugin:"
                       r" its name says image/jpeg, but its bytes are application/pdf"):
        folder(tmp_path).attach(message_root(), [], "rules[1] r", (),
                                [Attachment("letter.jpg", PDF)])


def test_a_scan_whose_name_eCH_0039_would_collapse_quarantines_naming_it(tmp_path: Path) -> None:
    # pathFileName is an xs:token: a reader makes 'Pass  Kopie.pdf' 'Pass Kopie.pdf' and
    # finds no such file in the zip
    docs = folder(tmp_path)
    scan(docs.dir / f"{VN} Pass  Kopie.pdf")
    with pytest.raises(InputRejected) as caught:
        docs.attach(message_root(), ["{vn}*.pdf"], "rules[1] permits")
    assert str(caught.value) == (
        f"rules[1] permits: document name '{VN} Pass  Kopie.pdf' has a tab, a line break, or"
        " spaces at its ends or side by side, which eCH-0039 pathFileName collapses"
        f" (xs:token): the canton would look for 'files/{VN} Pass Kopie.pdf', not this file;"
        " rename it")
    (docs.dir / f"{VN} Pass  Kopie.pdf").rename(docs.dir / f"{VN} Pass Kopie ü.pdf")
    assert [a.name for a in docs.attach(message_root(), ["{vn}*.pdf"], "rules[1] permits")] == [
        f"{VN} Pass Kopie ü.pdf"]
