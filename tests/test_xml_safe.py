"""The parser for untrusted XML refuses what XML attacks need and reports bad input clearly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import InputRejected
from gateway.xml.safe import check_untrusted, parse_untrusted
from gateway.xml.validation import validate

LIMIT = 1 << 20


def rejected(data: bytes, max_bytes: int = LIMIT) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        parse_untrusted(data, max_bytes=max_bytes)
    return info.value


def test_parses_well_formed_document() -> None:
    tree = parse_untrusted(b'<?xml version="1.0"?>\n<!-- c --><a x="1"><b>t</b></a>',
                           max_bytes=LIMIT)
    assert tree.getroot().tag == "a"
    assert tree.getroot().findtext("b") == "t"


@pytest.mark.parametrize("data", [b"", b"  \n\t "])
def test_empty_input(data: bytes) -> None:
    assert rejected(data).reason == "empty input"


def test_oversize_input_is_refused_before_parsing() -> None:
    error = rejected(b"<a>" + b"x" * 100 + b"<broken", max_bytes=50)
    assert "limit of 50" in error.reason
    assert "malformed" not in error.reason
    parse_untrusted(b"<a/>", max_bytes=4)  # exactly at the limit is fine


def test_the_size_limit_is_named_by_its_setting_and_the_parser_limits_as_fixed() -> None:
    """The operator is told which key to raise, or that no key raises it (libxml2 says to
    set XML_PARSE_HUGE, which is nothing the operator can set)."""
    for check in (parse_untrusted, check_untrusted):
        with pytest.raises(InputRejected) as big:
            check(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50,
                  setting="[limits] max_document_bytes")
        assert big.value.reason == "input is 107 bytes, more than [limits] max_document_bytes (50)"
        with pytest.raises(InputRejected) as deep:
            check(b"<a>" * 300 + b"</a>" * 300, max_bytes=10_000)
        assert deep.value.reason == ("XML nested more than 256 elements deep (a fixed limit of"
                                     " the XML parser, not a setting), at line 1, column 771")


@pytest.mark.parametrize(("data", "reason"), [
    (b'<a x="' + b"x" * 10_000_001 + b'"/>', "XML with a name or attribute value longer than"
     " 10000000 characters (a fixed limit of the XML parser, not a setting), at line 1, column"),
    ('<?xml version="1.0" encoding="EBCDIC-US"?><a/>'.encode("cp037"),
     "malformed XML at line 1, column 1: Unsupported encoding: detecting EBCDIC"),
], ids=["long attribute", "EBCDIC"])
def test_a_reason_is_one_line_and_a_fixed_limit_is_named_as_one(data: bytes, reason: str) -> None:
    """libxml2 ends some messages with a line break (which broke the quarantine's log line)
    and says to set XML_PARSE_HUGE for a long attribute value, which no operator can set."""
    for check in (parse_untrusted, check_untrusted):
        with pytest.raises(InputRejected) as refused:
            check(data, max_bytes=20_000_000)
        assert refused.value.reason.startswith(reason), refused.value.reason
        assert "\n" not in refused.value.reason and "XML_PARSE_HUGE" not in refused.value.reason


@pytest.mark.parametrize("data", [
    b"<!DOCTYPE a><a/>",
    b'<?xml version="1.0"?>\n<?pi x?>\n<!-- note -->\n<!DOCTYPE a SYSTEM "a.dtd"><a/>',
    b'<!DOCTYPE a PUBLIC "-//X//DTD X//EN" "http://127.0.0.1:9/x.dtd"><a/>',
    b"\xef\xbb\xbf<!DOCTYPE a><a/>",
    b'<!doctype a><a/>',
])
def test_any_doctype_is_refused(data: bytes) -> None:
    assert "DOCTYPE" in rejected(data).reason


def test_doctype_position_is_reported() -> None:
    assert rejected(b'<?xml version="1.0"?>\n\n<!DOCTYPE a><a/>').where == "line 3"


def test_doctype_in_utf16_is_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16")
    assert "DOCTYPE" in rejected(data).reason


def test_internal_entity_is_refused() -> None:
    assert "DOCTYPE" in rejected(b'<!DOCTYPE a [<!ENTITY e "expanded">]><a>&e;</a>').reason


def test_external_file_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = f'<!DOCTYPE a [<!ENTITY e SYSTEM "{secret.as_uri()}">]><a>&e;</a>'.encode()
    error = rejected(data)
    assert "DOCTYPE" in error.reason
    assert "TOP-SECRET" not in str(error)


def test_external_http_entity_and_parameter_entity_are_refused() -> None:
    assert "DOCTYPE" in rejected(
        b'<!DOCTYPE a [<!ENTITY e SYSTEM "http://127.0.0.1:9/e">]><a>&e;</a>').reason
    assert "DOCTYPE" in rejected(
        b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><a/>').reason


def test_billion_laughs_is_refused_quickly() -> None:
    entities = "".join(
        f'<!ENTITY l{i} "{"".join(f"&l{i - 1};" for _ in range(10))}">' for i in range(1, 10))
    data = f'<!DOCTYPE a [<!ENTITY l0 "lol">{entities}]><a>&l9;</a>'.encode()
    start = time.perf_counter()
    assert "DOCTYPE" in rejected(data).reason
    assert time.perf_counter() - start < 1


def test_undeclared_entity_reference_is_malformed() -> None:
    assert rejected(b"<a>&e;</a>").reason.startswith("malformed XML")


def test_xinclude_is_not_processed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (b'<a xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="'
            + secret.as_uri().encode() + b'" parse="text"/></a>')
    tree = parse_untrusted(data, max_bytes=LIMIT)
    assert [child.tag for child in tree.getroot()] == ["{http://www.w3.org/2001/XInclude}include"]
    assert "TOP-SECRET" not in etree.tostring(tree, encoding="unicode")


def test_malformed_xml_reports_line_and_column() -> None:
    error = rejected(b'<?xml version="1.0"?>\n<a>\n  <b>\n</a>')
    assert error.reason.startswith("malformed XML at line 4, column ")
    assert "mismatch" in error.reason.lower()
    assert error.reason.count("line 4") == 1, error.reason  # the position is said once


@pytest.mark.parametrize("data", [b"<a>", b"<!-- unterminated <a/>", b"not xml", b"<a/><b/>"])
def test_broken_documents_are_malformed(data: bytes) -> None:
    assert rejected(data).reason.startswith("malformed XML at line ")


def test_wrong_root_goes_on_to_validation_with_a_clear_message() -> None:
    tree = parse_untrusted(b'<person xmlns="urn:example"/>', max_bytes=LIMIT)
    report = validate(tree)
    assert not report.valid
    assert report.kind == "unknown"
    message = report.errors[0].message
    assert "unexpected root element {urn:example}person" in message
    assert "{http://www.ech.ch/xmlns/eCH-0223/1}personEventMessage" in message
    assert "{http://www.ech.ch/xmlns/eCH-0090/2}receipt" in message


def test_parser_can_be_used_from_several_threads() -> None:
    docs = [f"<a><n>{i}</n></a>".encode() for i in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda d: parse_untrusted(d, max_bytes=LIMIT).findtext("n"), docs))
    assert texts == [str(i) for i in range(400)]


_UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16")


@pytest.mark.parametrize("data", [
    b"", b"<a>" + b"x" * 100, b"<!DOCTYPE a><a/>", b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    _UTF16_DOCTYPE, b"<a>&e;</a>", b"<a>", b"<a/><b/>", b"not xml", b"<a><b></a>",
    b"<p:a/>", b"<a p:x='1'/>", b"<a xmlns='not a uri'/>", b"<a xmlns:x=''/>",
    b"<a xmlns:xml='urn:x'/>", b'<?xml version="2.0"?><a/>', b"<a>]]></a>", b"<a>\x00</a>",
    b"<a>" * 300 + b"</a>" * 300, '<?xml version="1.0" encoding="ISO-8859-1"?><a>Müller</a>'.encode(),
    b'<?xml version="1.0" encoding="EBCDIC-US"?><a/>',
])
def test_check_refuses_what_parsing_refuses_with_its_reason(data: bytes) -> None:
    """``check_untrusted`` builds no tree, yet refuses exactly what ``parse_untrusted`` does."""
    expected = rejected(data, max_bytes=100)
    with pytest.raises(InputRejected) as info:
        check_untrusted(data, max_bytes=100)
    assert (info.value.reason, info.value.where) == (expected.reason, expected.where)


def test_check_refuses_a_text_node_longer_than_the_parser_takes() -> None:
    """libxml2 refuses a text node of more than 10,000,000 characters when it builds a tree;
    the check, which builds none, refuses it too, with the same reason."""
    data = b"<a>" + b"x" * 11_000_000 + b"</a>"
    expected = rejected(data, max_bytes=20_000_000)
    assert expected.reason == ("XML with a text longer than 10000000 characters (a fixed limit of"
                               " the XML parser, not a setting), at line 1, column 10004001")
    with pytest.raises(InputRejected) as info:
        check_untrusted(data, max_bytes=20_000_000)
    assert info.value.reason == expected.reason


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?>\n<!-- c --><a x="1"><b>t</b></a>', b"<p:a xmlns:p='urn:x'/>",
    b'<?xml version="1.1"?><a/>', '<a>Müller</a>'.encode("utf-16"),
    '<?xml version="1.0" encoding="ISO-8859-1"?><a>Müller</a>'.encode("latin-1"),
])
def test_check_takes_what_parsing_takes(data: bytes) -> None:
    parse_untrusted(data, max_bytes=LIMIT)
    check_untrusted(data, max_bytes=LIMIT)
    check_untrusted(data, max_bytes=LIMIT)  # (the parser is used again, and forgot the last)


def test_without_blank_text_indentation_goes_and_text_stays() -> None:
    data = b"<a>\n  <b>  </b>\n  <c> x </c>\n  <d>\n    <e/>\n  </d>\n</a>"
    root = parse_untrusted(data, max_bytes=LIMIT, keep_blank_text=False).getroot()
    assert [(el.tag, el.text, el.tail) for el in root.iter()] == [
        ("a", None, None), ("b", "  ", None), ("c", " x ", None), ("d", None, None), ("e", None, None)]
    assert parse_untrusted(data, max_bytes=LIMIT).getroot()[0].tail == "\n  "


@pytest.mark.parametrize("data", [
    b"", b"<a>" + b"x" * 100, b"<!DOCTYPE a><a/>", b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    _UTF16_DOCTYPE, b"<a>&e;</a>", b"<a>", b"<a/><b/>", b"not xml", b"<a>\n <b></a>",
    '<?xml version="1.0" encoding="ISO-8859-1"?><a>Müller</a>'.encode(),
])
def test_without_blank_text_the_same_is_refused_for_the_same_reason(data: bytes) -> None:
    expected = rejected(data, max_bytes=100)
    with pytest.raises(InputRejected) as info:
        parse_untrusted(data, max_bytes=100, keep_blank_text=False)
    assert (info.value.reason, info.value.where) == (expected.reason, expected.where)
