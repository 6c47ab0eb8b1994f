"""Schema choice by root element, reports, file validation and schema sets."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from lxml import etree

import gateway.xml.validation as validation
from gateway.errors import InputRejected
from gateway.xml.safe import parse_untrusted
from gateway.xml.validation import (
    KINDS,
    SchemaSet,
    ValidationIssue,
    ValidationReport,
    report_lines,
    schema_dir,
    validate,
    validate_files,
)

CORPUS = Path(__file__).resolve().parent / "fixtures" / "conformance"
FULL = CORPUS / "valid-pem-full-persondata.xml"


def tree_of(name: str) -> etree._ElementTree:
    return parse_untrusted((CORPUS / name).read_bytes(), max_bytes=1 << 20)


@pytest.mark.parametrize(("name", "kind"), [
    ("valid-pem-full-persondata.xml", "eCH-0223 1.5 personEventMessage"),
    ("valid-er-several-reasons-notice.xml", "eCH-0223 1.5 eventReport"),
    ("valid-env1-minimal.xml", "eCH-0090 1.0 envelope"),
    ("valid-env2-minimal.xml", "eCH-0090 2.0 envelope"),
    ("valid-rcpt1-ok.xml", "eCH-0090 1.0 receipt"),
    ("valid-rcpt2-ok.xml", "eCH-0090 2.0 receipt"),
])
def test_schema_is_chosen_by_root_element(name: str, kind: str) -> None:
    assert validate(tree_of(name)) == ValidationReport(True, kind, [])


def test_tree_element_and_bytes_give_the_same_verdict() -> None:
    tree = tree_of(FULL.name)
    assert validate(tree) == validate(tree.getroot()) == validate(FULL.read_bytes())


def test_parsed_tree_is_not_reparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tree_of(FULL.name)

    def no_parsing(data: bytes, *, max_bytes: int) -> etree._ElementTree:
        raise AssertionError("a parsed tree was parsed again")

    monkeypatch.setattr(validation, "parse_untrusted", no_parsing)
    assert validate(tree).valid


def test_bytes_are_parsed_as_untrusted_input() -> None:
    with pytest.raises(InputRejected, match="DOCTYPE"):
        validate(b"<!DOCTYPE a><a/>")
    with pytest.raises(InputRejected, match="limit of 10"):
        validate(FULL.read_bytes(), max_bytes=10)


def test_errors_carry_the_line_of_the_offending_element() -> None:
    name = "invalid-enum-businesskey-ascii.xml"
    report = validate(tree_of(name))
    text = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    line = next(i for i, row in enumerate(text, 1) if ">Verfuegung<" in row)
    assert not report.valid
    assert report.kind == "eCH-0223 1.5 personEventMessage"
    assert [(issue.line, issue.column) for issue in report.errors] == [(line, 0)]
    assert "Verfuegung" in report.errors[0].message


def test_errors_name_the_element_where_lines_cannot(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Messages the gateway writes are one line: each error names its element's path."""
    doc = tree_of("valid-pem-full-persondata.xml")
    for element in doc.iter():
        element.tail = None if element.getparent() is not None else element.tail
        element.text = element.text.strip() or None if element.text else None
    [reference] = doc.getroot().iter("{*}personIdentification")
    reference.find("{*}officialName").text = ""
    one_line = tmp_path / "one-line.xml"
    one_line.write_bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))
    assert validate_files([str(one_line)]) == 1
    [_head, issue] = capsys.readouterr().out.splitlines()
    assert issue.startswith("  line 2 at /eCH-0223:personEventMessage/eCH-0223:content/"
                            "eCH-0223:personIdentification/eCH-0044:officialName: ")


def test_unknown_root_names_the_accepted_ones() -> None:
    report = validate(etree.fromstring(b'<envelope xmlns="http://www.ech.ch/xmlns/eCH-0090/3"/>'))
    assert (report.valid, report.kind) == (False, "unknown")
    (issue,) = report.errors
    assert "{http://www.ech.ch/xmlns/eCH-0090/3}envelope" in issue.message
    assert "accepted: {http://www.ech.ch/xmlns/eCH-0090/1}envelope" in issue.message


def test_unsupported_ech0223_version_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match=r"'1\.2' is not supported; supported: 1\.5, 1\.4, 1\.3, 1\.0"):
        validate(tree_of(FULL.name), ech0223_version="1.2")


def format_report(path: str, report: ValidationReport) -> str:
    return "\n".join(report_lines(path, report))


def test_format_report() -> None:
    valid = ValidationReport(True, "eCH-0090 2.0 receipt")
    assert format_report("r.xml", valid) == "r.xml: valid (eCH-0090 2.0 receipt)"
    invalid = ValidationReport(False, "eCH-0223 1.5 eventReport",
                               [ValidationIssue(12, 5, "bad"), ValidationIssue(14, 0, "worse")])
    assert format_report("e.xml", invalid) == (
        "e.xml: INVALID (eCH-0223 1.5 eventReport)\n  line 12, col 5: bad\n  line 14: worse")
    unknown = ValidationReport(False, "unknown", [ValidationIssue(1, 0, "unexpected root")])
    assert format_report("u.xml", unknown) == "u.xml: INVALID\n  line 1: unexpected root"


def test_validate_files_reports_every_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
    missing = tmp_path / "missing.xml"
    invalid = CORPUS / "invalid-version-pem-missing.xml"
    paths = [str(FULL), str(invalid), str(hostile), str(missing)]
    assert validate_files(paths, SchemaSet.from_directory()) == 3  # one is not found
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{FULL}: valid (eCH-0223 1.5 personEventMessage)"
    assert lines[1] == f"{invalid}: INVALID (eCH-0223 1.5 personEventMessage)"
    assert re.fullmatch(r"  line \d+ at /eCH-0223:personEventMessage: .*'version' is required"
                        r" but missing\.", lines[2])
    assert lines[3].startswith("  hint: eCH-0223 1.4 / 1.3 / 1.0 documents have no version")
    assert lines[4] == f"{hostile}: REJECTED: DOCTYPE and entity declarations are not allowed" \
                       " (at line 1)"
    assert lines[5] == f"{missing}: UNREADABLE: No such file or directory"
    assert len(lines) == 6


def test_validate_files_succeeds_when_all_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(str(path) for path in CORPUS.glob("valid-*.xml")
                   if not re.search(r"-(pem|er)1[034]-", path.name))  # 1.0-1.4: test_versions
    assert validate_files(paths) == 0
    assert capsys.readouterr().out.count(": valid (") == len(paths)


def test_validate_files_refuses_oversize_files(capsys: pytest.CaptureFixture[str]) -> None:
    """The file's size is said, not the 101 bytes read to find it too large."""
    assert validate_files([str(FULL)], max_bytes=100) == 1
    assert capsys.readouterr().out == (f"{FULL}: REJECTED: input is {FULL.stat().st_size} bytes,"
                                       " more than the limit of 100\n")
    assert validate_files([str(FULL)], max_bytes=100, limit="[limits] max_document_bytes (100)") == 1
    assert capsys.readouterr().out.endswith(" more than [limits] max_document_bytes (100)\n")


def test_schema_dir_is_the_project_schemas() -> None:
    assert schema_dir() == Path(__file__).resolve().parent.parent / "schemas"
    assert {kind.filename for kind in KINDS} <= {p.name for p in schema_dir().glob("*.xsd")}


def test_missing_schema_files_fail_early(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"eCH-0223-1-5\.xsd"):
        SchemaSet.from_directory(tmp_path)


def test_compiled_schemas_are_cached_per_thread() -> None:
    schemas = SchemaSet.from_directory()
    kind = KINDS[0]
    first = schemas.schema(kind)
    assert schemas.schema(kind) is first
    other: list[etree.XMLSchema] = []
    thread = threading.Thread(target=lambda: other.append(schemas.schema(kind)))
    thread.start()
    thread.join()
    assert other and other[0] is not first


def test_catalog_maps_official_urls_to_local_files(tmp_path: Path) -> None:
    entries = "".join(f'<system systemId="{kind.url}" uri="{schema_dir() / kind.filename}"/>'
                      for kind in KINDS)
    catalog = tmp_path / "catalog.xml"
    catalog.write_text('<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">'
                       f"{entries}</catalog>")
    schemas = SchemaSet.from_catalog(catalog)
    assert schemas.origin == str(catalog)
    assert validate(tree_of(FULL.name), schemas=schemas).valid
    assert not validate(tree_of("invalid-enum-sex.xml"), schemas=schemas).valid


def test_catalog_without_the_root_schemas_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.xml"
    catalog.write_text('<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog"/>')
    with pytest.raises(FileNotFoundError, match=r"eCH-0090-2-0\.xsd"):
        SchemaSet.from_catalog(catalog)
