"""safe_unzip refuses hostile archives; build_zip writes what safe_unzip reads back."""

from __future__ import annotations

import io
import random
import stat
import struct
import warnings
import zipfile

import pytest

from gateway.archive import build_zip, safe_unzip
from gateway.contracts import Attachment
from gateway.errors import InputRejected

LIMITS = {"max_entries": 10, "max_total_bytes": 1_000_000, "max_ratio": 100}


def make_zip(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # duplicate names are what some tests want
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def rejected(data: bytes, **limits: int) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        safe_unzip(data, **{**LIMITS, **limits})
    return info.value


def test_build_zip_round_trip_is_deterministic() -> None:
    attachments = [Attachment("a.pdf", b"%PDF-1.7 a"), Attachment("b.txt", b"hello")]
    data = build_zip("message.xml", b"<m/>", attachments)
    assert data == build_zip("message.xml", b"<m/>", attachments)
    assert safe_unzip(data, **LIMITS) == {
        "message.xml": b"<m/>", "files/a.pdf": b"%PDF-1.7 a", "files/b.txt": b"hello"}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("name", ["../x.pdf", "a/b.pdf", "a\\b.pdf", "", ".."])
def test_build_zip_refuses_unsafe_attachment_names(name: str) -> None:
    with pytest.raises(ValueError):
        build_zip("message.xml", b"<m/>", [Attachment(name, b"x")])


def test_build_zip_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError):
        build_zip("message.xml", b"<m/>", [Attachment("a", b"1"), Attachment("a", b"2")])


def test_directories_are_omitted() -> None:
    assert safe_unzip(make_zip(("files/", b""), ("files/a", b"1")), **LIMITS) == {"files/a": b"1"}


def test_not_a_zip() -> None:
    assert "not a zip" in rejected(b"<xml/>").reason


def test_truncated_zip() -> None:
    data = make_zip(("a.xml", b"<a/>" * 1000))
    rejected(data[: len(data) // 2])


def needs_version(data: bytes, version: int) -> bytes:
    """``data`` whose central directory says its entries need zip ``version`` (63 = 6.3)."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        out[at + 6:at + 8] = struct.pack("<H", version)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_a_zip_of_a_version_python_cannot_read_is_refused_with_the_reason() -> None:
    exc = rejected(needs_version(make_zip(("a.xml", b"<a/>"), ("b.xml", b"<b/>")), 64))
    assert "zip file version 6.4" in exc.reason


def test_bomb_by_ratio() -> None:
    exc = rejected(make_zip(("bomb.xml", b"\0" * 5_000_000)), max_total_bytes=10_000_000)
    assert exc.reason == "compression ratio above [limits] max_zip_ratio (100)"
    assert exc.where == "bomb.xml"


def test_bomb_by_declared_total_size() -> None:
    noise = random.Random(1).randbytes(400_000)  # incompressible: the ratio is fine
    data = make_zip(("a.bin", noise), ("b.bin", noise))
    exc = rejected(data, max_total_bytes=600_000)
    assert exc.reason == "zip unpacks to more than [limits] max_zip_bytes (600000 bytes)"
    assert exc.where == "b.bin"


def test_only_unpacks_what_it_accepts_holding_the_rest_to_declared_sizes() -> None:
    """``only``: a lying entry not asked for is never decompressed (so not caught lying);
    one whose declared size is over a limit refuses the zip all the same."""
    liar = _patch(make_zip(("files/liar.bin", b"\0" * 20_000_000), ("m.xml", b"<m/>")),
                  22, 24, "<I", 1000)
    assert safe_unzip(liar, **{**LIMITS, "max_total_bytes": 2000},
                      only=lambda name: name == "m.xml") == {"m.xml": b"<m/>"}
    bomb = make_zip(("m.xml", b"<m/>"), ("files/bomb.bin", b"\0" * 5_000_000))
    with pytest.raises(InputRejected, match="max_zip_ratio"):
        safe_unzip(bomb, **{**LIMITS, "max_total_bytes": 10_000_000},
                   only=lambda name: name == "m.xml")


def _patch(data: bytes, local_offset: int, central_offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field of the first entry's local and central headers."""
    out = bytearray(data)
    struct.pack_into(fmt, out, out.find(b"PK\x03\x04") + local_offset, value)
    struct.pack_into(fmt, out, out.find(b"PK\x01\x02") + central_offset, value)
    return bytes(out)


def test_bomb_with_a_lying_header_is_stopped_while_streaming() -> None:
    # declares 1000 bytes uncompressed (under the ratio grace), holds 20 MB
    data = _patch(make_zip(("liar.xml", b"\0" * 20_000_000)), 22, 24, "<I", 1000)
    exc = rejected(data, max_total_bytes=2000)
    assert exc.where == "liar.xml"


def test_too_many_entries() -> None:
    data = make_zip(*((f"f{i}.txt", b"x") for i in range(11)))
    assert rejected(data).reason == "zip has 11 entries, more than [limits] max_zip_entries (10)"


@pytest.mark.parametrize(
    "name", ["../evil.xml", "a/../../evil.xml", "/etc/passwd", "C:/evil.xml", "a\\..\\evil.xml"])
def test_escaping_names(name: str) -> None:
    assert rejected(make_zip((name, b"x"))).where == name


def test_symlink_entry() -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert "symbolic link" in rejected(make_zip((info, b"/etc/passwd"))).reason


def test_duplicate_entries() -> None:
    assert "duplicate" in rejected(make_zip(("a.xml", b"1"), ("a.xml", b"2"))).reason


@pytest.mark.parametrize(("names", "shown"), [
    (["files/Scan.pdf", "files/scan.pdf"], "'files/Scan.pdf' and 'files/scan.pdf'"),
    (["files/\u00e9.pdf", "files/e\u0301.pdf"], "'files/\\xe9.pdf' and 'files/e\\u0301.pdf'"),
    (["files/STRASSE.pdf", "files/stra\u00dfe.pdf"],
     "'files/STRASSE.pdf' and 'files/stra\\xdfe.pdf'"),
], ids=["case", "NFC and NFD", "sharp s"])
def test_names_that_differ_only_in_case_or_normalisation(names: list[str], shown: str) -> None:
    """Forwarded as they came, the recipient unpacking them on Windows or macOS got one
    file in the place of two: the documents of a message mixed up."""
    error = rejected(make_zip(("message.xml", b"<a/>"), *((n, n.encode()) for n in names)))
    assert error.reason == (f"entry names differ only in case or Unicode normalisation ({shown}):"
                            " one file would overwrite the other")
    assert error.where == names[1]


@pytest.mark.parametrize("name", ["files/a\nb.pdf", "files/\x1b[2Jx.pdf", "files/a\x85.pdf"])
def test_control_characters_in_names(name: str) -> None:
    error = rejected(make_zip(("message.xml", b"<a/>"), (name, b"%PDF")))
    assert (error.reason, error.where) == ("control character in entry name", ascii(name))


def test_encrypted_entry() -> None:
    data = _patch(make_zip(("secret.xml", b"x")), 6, 8, "<H", 0x1)  # general purpose flag
    assert "encrypted" in rejected(data).reason
