"""A document whose declared encoding does not match its bytes is refused, not forwarded as mojibake.

Real bytes through the real intake: files dropped into the folder source of a
running gateway, then the store and the partner's deliveries are read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import InputRejected
from gateway.xml.safe import parse_untrusted
from tests.flow import StubTransport, drop, message, running, states, until, write_config

DECLARED_UTF8 = b'<?xml version="1.0" encoding="UTF-8"?>'


def notice(name: str, encoding: str, declared: str, message_id: str) -> bytes:
    """The conformance message about ``name``, declaring ``declared``, encoded as ``encoding``."""
    text = message(message_id).decode("utf-8")
    text = text.replace(">Muster<", f">{name}<", 1)
    text = text.replace('encoding="UTF-8"', f'encoding="{declared}"', 1)
    return text.encode(encoding)


def db_rows(db: Path) -> list[tuple[str, str, str | None]]:
    return states(db, "SELECT ref, state, reason FROM messages ORDER BY id")


async def test_declared_latin1_holding_utf8_is_quarantined_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mojibake = notice("Müller", "utf-8", "ISO-8859-1", "enc-liar")
    genuine = notice("Müller", "latin-1", "ISO-8859-1", "enc-genuine")
    assert b"M\xc3\xbcller" in mojibake and b"M\xfcller" in genuine
    async with running(config):
        drop(tmp_path / "in", "liar.xml", mojibake)
        drop(tmp_path / "in", "genuine.xml", genuine)
        await until(lambda: len(states(tmp_path / "gateway.db",
                                       "SELECT 1 FROM deliveries WHERE state = 'delivered'")) == 1
                    and len(db_rows(tmp_path / "gateway.db")) == 2)
    rows = {ref: (state, reason) for ref, state, reason in db_rows(tmp_path / "gateway.db")}
    offset = mojibake.index(b"\xc3\xbc")
    line = mojibake.count(b"\n", 0, offset) + 1
    assert rows["liar.xml"] == ("quarantined", (
        "declared encoding ISO-8859-1 does not match the bytes, which are UTF-8: c3 bc is UTF-8"
        f" for 'ü', read as ISO-8859-1 it would be 'Ã¼' (at line {line}, byte offset {offset})"))
    assert rows["genuine.xml"][0] == "routed"
    [sent] = StubTransport.sent["canton"]
    assert sent.message_id == "enc-genuine"
    assert sent.payload == genuine  # forwarded byte for byte, with its own declaration
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["genuine.xml", "liar.xml"]


@pytest.mark.parametrize(("name", "declared"), [
    ("Müller", "ISO-8859-1"),
    ("Jović", "windows-1252"),   # a letter beyond Latin-1: UTF-8 c4 87
    ("Zoë", "latin1"),
    ("Ærø", "ISO-8859-15"),
])
def test_utf8_bytes_under_a_single_byte_declaration_are_refused(name: str, declared: str) -> None:
    data = notice(name, "utf-8", declared, "x")
    with pytest.raises(InputRejected) as caught:
        parse_untrusted(data, max_bytes=1 << 20)
    assert caught.value.reason.startswith(f"declared encoding {declared} does not match the bytes")
    first = next(n for n, byte in enumerate(data) if byte > 0x7F)
    assert str(caught.value).endswith(f"byte offset {first})")


def test_a_document_pasted_together_from_both_is_refused() -> None:
    latin1 = notice("Müller", "latin-1", "ISO-8859-1", "x")
    pasted = latin1.replace(b"<eCH-0044:firstName>Anna", "<eCH-0044:firstName>Zoë".encode())
    with pytest.raises(InputRejected) as caught:
        parse_untrusted(pasted, max_bytes=1 << 20)
    assert "c3 ab is UTF-8 for 'ë'" in caught.value.reason
    assert caught.value.where is not None
    offset = pasted.index("ë".encode())
    assert caught.value.where.endswith(f"byte offset {offset}")


@pytest.mark.parametrize(("name", "declared"), [
    ("Müller", "ISO-8859-1"),
    ("Straße, Zürich «Café»", "ISO-8859-1"),
    ("Œuvre €", "ISO-8859-15"),
])
def test_genuine_single_byte_documents_pass(name: str, declared: str) -> None:
    tree = parse_untrusted(notice(name, "iso-8859-15" if "15" in declared else "latin-1", declared,
                                  "x"), max_bytes=1 << 20)
    assert name in tree.getroot().xpath("string(//*[local-name()='officialName'])")


def test_utf8_declared_as_utf8_passes_and_latin1_bytes_under_utf8_are_malformed() -> None:
    assert notice("Müller", "utf-8", "UTF-8", "x").startswith(DECLARED_UTF8)
    parse_untrusted(notice("Müller", "utf-8", "UTF-8", "x"), max_bytes=1 << 20)
    with pytest.raises(InputRejected) as caught:
        parse_untrusted(notice("Müller", "latin-1", "UTF-8", "x"), max_bytes=1 << 20)
    assert "malformed XML" in caught.value.reason
