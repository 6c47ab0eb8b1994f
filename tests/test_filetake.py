"""Taking files written in place: settled, finished, unchanged when moved away; odd entries."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from gateway.completeness import unfinished
from gateway.filestored import finish
from gateway.filetake import SET_ASIDE, FileTaker, TooLarge, Unfinished, Whole, display_name

WRITER = Path(__file__).parent / "writer.py"
DOC = b'<?xml version="1.0"?>\n<r:doc xmlns:r="urn:x">' + b"<p>text</p>" * 2000 + b"</r:doc>\n"


def zipped(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


ZIP = zipped({"m.xml": DOC, "files/a.pdf": os.urandom(5000)})
JSON = json.dumps({"export": {"persons": [{"id": str(i), "name": {"official": "Müller"}}
                                          for i in range(300)]}}, indent=1).encode()
CSV = ("PERS_NR;NAME;STRASSE\r\n" + "".join(f'{i};M\xfcller;"Weg; {i}"\r\n' for i in range(300))
       ).encode("windows-1252")


@pytest.mark.parametrize(("data", "what"), [
    (b"", "it is empty"),
    (b'<?xml version="1.0"?>\n', "XML without a root element yet"),
    (DOC[:500], "XML without the end tag of its root element <r:doc> (it ends after 500 bytes)"),
    (DOC[:-4], "XML without the end tag of its root element <r:doc>"),
    (b"<r:doc xmlns:r='urn:x' a='>'", "XML that ends inside its root element's start tag"),
    (ZIP[:-1], "a zip without its end-of-central-directory record"),
    (ZIP[:4000], "a zip without its end-of-central-directory record (it ends after 4000 bytes)"),
    (JSON[:2000], "JSON that ends before its outermost { is closed (after 2000 bytes)"),
    (JSON[:JSON.index(b"}") + 1], "JSON that ends before its outermost { is closed"),
    (b'{"a": "x}', "JSON that ends before its outermost { is closed"),
    (b'{"a": nu', "JSON that ends before its outermost { is closed"),
    (b'[1.', "JSON that ends before its outermost [ is closed"),
    (b'["\\u00', "JSON that ends before its outermost [ is closed"),
    (b"\xef\xbb\xbf [", "JSON that ends before its outermost [ is closed"),
    (CSV[:CSV.index(b"Weg; 7") + 2], "CSV that ends inside a quoted cell"),
    (CSV[:CSV.index(b"Weg; 7") - 3], "CSV whose last row has 2 of the header's 3 cells and no"
                                     " line end"),
    (b"A,B,C\n1,2", "CSV whose last row has 2 of the header's 3 cells"),
    (CSV[:15], "CSV of one line without its line end (after 15 bytes)"),
    (b'A;B;C\r\n1;"two\r\n', "CSV that ends inside a quoted cell"),
    (b'A;B;C\r\n1;"two\r\nlines"', "CSV whose last row has 2 of the header's 3 cells"),
    (b'A;B;C\r\n1;5" Diskette', "CSV whose last row has 2 of the header's 3 cells"),
    (b'A;B;C\r\n1;5" Diskette;"Weg; 7', "CSV that ends inside a quoted cell"),
    (b"A;B;C\r1;2", "CSV whose last row has 2 of the header's 3 cells"),
    # Excel's delimiter line and blank lines before the header are no header
    (b"sep=;\r\nA;B;C\r\n1;2", "CSV whose last row has 2 of the header's 3 cells"),
    (b"\r\n;;\r\nA;B;C\r\n1;2", "CSV whose last row has 2 of the header's 3 cells"),
    (b"\r\n\r\nA;B;C\r\n1;2", "CSV whose last row has 2 of the header's 3 cells"),
])
def test_unfinished_shapes_say_what_is_missing(data: bytes, what: str) -> None:
    found = unfinished(data)
    assert found is not None and found.startswith(what), found


@pytest.mark.parametrize("data", [
    DOC, DOC + b"<!-- trailer -->\n<?pi x?>\n", b"<r/>", b"\xef\xbb\xbf<a x='1'/>", ZIP,
    zipped({}), b"<a><b></a>",  # malformed, but finished: the normaliser says why
    b"<!DOCTYPE a><a>", b"%PDF-1.7 binary", "<ä>ü</ä>".encode(),
    JSON, JSON + b"\n\n", b"[]",
    b'{"a": 1} trailing', b'{"a": nul, "b": 2}', b'{"a": 1}\n{"b": 2}',  # malformed, but whole
    CSV, CSV.rstrip(), CSV[:CSV.index(b"\r\n", 100)],  # the last row whole, without line end
    b"PERS_NR;NAME;STRASSE\r\n", b"A;B\n1;\"two\nlines\"", b"plain text without delimiters",
    # a quote inside a cell is text (a CSV reader reads these rows), not an open quoted cell
    b'NAME;NOTIZ\r\nM\xfcller;5" Diskette\r\n', b'A;B;C\r\n1;5" Diskette;3',
    b'A;B\r\n1;Hans "Hansi"\r\n2;"Weg; 7"\r\n',
    CSV.rstrip().replace(b"\r\n", b"\r"),  # old Mac line ends (CR alone), the last row whole
    b"\r\n;;;;;\r\nA;B;C\r\n1;2;3",  # a blank row before the header is no header
])
def test_finished_input_passes(data: bytes) -> None:
    assert unfinished(data) is None


def test_after_grace_a_csv_line_alone_counts_as_finished_and_nothing_else() -> None:
    """A header alone, written without a line end, is all of an export without rows."""
    assert unfinished(CSV[:15], settled=True) is None
    cut = (CSV[:CSV.index(b"Weg; 7") + 2], CSV[:CSV.index(b"Weg; 7") - 3], JSON[:2000], DOC[:500],
           b'PERS_NR;"NAME')
    assert [unfinished(data, settled=True) is not None for data in cut] == [True] * len(cut)


def taker(folder: Path, settle: float = 0.1, grace: float = 60) -> FileTaker:
    folder.mkdir(exist_ok=True)
    return FileTaker(folder, ("*.xml", "*.zip"), settle, grace)


def test_a_file_is_ready_after_two_scans_and_the_settle_time(tmp_path: Path) -> None:
    t = taker(tmp_path / "in")
    (tmp_path / "in" / "a.xml").write_bytes(DOC)
    first = t.scan()
    assert first.ready == [] and first.pending == {"a.xml"}
    assert first.wake is not None and 0 < first.wake <= 0.1
    time.sleep(first.wake + 0.01)
    (ready,) = t.scan().ready
    got = t.read(ready, 1 << 20)
    assert isinstance(got, Whole) and got.data == DOC


def test_patterns_match_names_in_any_case(tmp_path: Path) -> None:
    """A registry on Windows writes EINWOHNER.CSV or EXPORT.XML; left lying there unseen, such a
    file would be lost without a word."""
    t = taker(tmp_path / "in", settle=0)
    for name in ("A.XML", "b.Zip", "c.xml", "d.txt"):
        (tmp_path / "in" / name).write_bytes(ZIP if "zip" in name.lower() else DOC)
    assert sorted(r.name for r in t.scan().ready) == ["A.XML", "b.Zip", "c.xml"]


def test_a_change_restarts_the_settle_time(tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0.2)
    path = tmp_path / "in" / "a.xml"
    path.write_bytes(DOC[:100])
    t.scan()
    time.sleep(0.15)
    with path.open("ab") as f:
        f.write(DOC[100:])
    time.sleep(0.1)
    assert t.scan().ready == [], "changed 0.1 s ago: not settled"
    time.sleep(0.15)
    assert [r.name for r in t.scan().ready] == ["a.xml"]


def test_files_written_in_chunks_with_pauses_are_read_only_whole(tmp_path: Path) -> None:
    """Pauses longer than ``settle``: the content check holds back the half-written files."""
    t = taker(tmp_path / "in", settle=0.05)
    sources = {"a.xml": DOC, "b.zip": ZIP, "c.xml": DOC.replace(b"text", b"more")}
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
    writer = subprocess.Popen([sys.executable, str(WRITER), "0.12", "5", *(
        f"{tmp_path / 'in' / name}={tmp_path / name}" for name in sources)])
    got: dict[str, bytes] = {}
    deadline = time.monotonic() + 10
    while writer.poll() is None or len(got) < len(sources):
        assert time.monotonic() < deadline, f"only {sorted(got)} taken"
        for ready in t.scan().ready:
            if ready.name in got:
                continue
            result = t.read(ready, 1 << 20)
            assert not isinstance(result, (Unfinished, TooLarge)), result
            if isinstance(result, Whole):
                got[ready.name] = result.data
        time.sleep(0.01)
    assert writer.wait() == 0
    assert got == sources


def test_an_unfinished_file_is_handed_over_only_after_grace(tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0, grace=0.2)
    (tmp_path / "in" / "a.xml").write_bytes(DOC[:300])
    (ready,) = t.scan().ready
    assert t.read(ready, 1 << 20) is None
    listing = t.scan()
    assert listing.ready == [] and listing.pending == {"a.xml"}, "not read again meanwhile"
    time.sleep(0.25)
    (ready,) = t.scan().ready
    got = t.read(ready, 1 << 20)
    assert isinstance(got, Unfinished) and got.data == DOC[:300]
    assert got.reason.startswith(f"unfinished file {tmp_path / 'in' / 'a.xml'}: XML without the"
                                 " end tag of its root element <r:doc> (it ends after 300 bytes)")


def test_a_file_rewritten_after_it_was_read_is_not_moved_and_is_taken_again(
        tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0)
    done = tmp_path / "done"
    path = tmp_path / "in" / "a.xml"
    path.write_bytes(DOC)
    (ready,) = t.scan().ready
    first = t.read(ready, 1 << 20)
    assert isinstance(first, Whole)
    path.write_bytes(DOC.replace(b"text", b"TEXT"))  # same size, other bytes
    (left,) = finish([([first.stored], done)])
    assert left.changed and left.names == ("a.xml",) and "same size, other bytes" in left.why
    assert "left in place to be taken again" in t.left([left])[0]
    assert path.exists() and not (done / "a.xml").exists()
    (ready,) = t.scan().ready
    second = t.read(ready, 1 << 20)
    assert isinstance(second, Whole) and b"TEXT" in second.data
    assert finish([([second.stored], done)]) == []
    assert (done / "a.xml").read_bytes() == second.data


def test_a_file_only_touched_after_it_was_read_is_moved(tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0)
    path = tmp_path / "in" / "a.xml"
    path.write_bytes(DOC)
    (ready,) = t.scan().ready
    got = t.read(ready, 1 << 20)
    assert isinstance(got, Whole)
    os.utime(path)  # new times, same bytes: the digest decides
    assert finish([([got.stored], tmp_path / "done")]) == []
    assert (tmp_path / "done" / "a.xml").read_bytes() == DOC


def test_symlinks_fifos_and_sockets_are_set_aside_once(tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0)
    folder = tmp_path / "in"
    (tmp_path / "secret").write_bytes(b"not for the gateway")
    (folder / "link.xml").symlink_to(tmp_path / "secret")
    os.mkfifo(folder / "pipe.xml")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock.xml"))
        (folder / "ok.xml").write_bytes(DOC)
        (folder / "sub.xml").mkdir()  # a folder is left alone
        listing = t.scan()
    assert [r.name for r in listing.ready] == ["ok.xml"]
    notes = sorted(listing.notes)
    assert len(notes) == 3
    assert notes[0] == (f"{folder}/link.xml is a symbolic link, not a regular file: not taken,"
                        f" set aside as {folder}/{SET_ASIDE}/link.xml")
    assert "pipe.xml is a named pipe (FIFO)" in notes[1] and "sock.xml is a socket" in notes[2]
    assert sorted(p.name for p in (folder / SET_ASIDE).iterdir()) == [
        "link.xml", "pipe.xml", "sock.xml"]
    assert (folder / SET_ASIDE / "link.xml").is_symlink()
    assert t.scan().notes == [], "reported once"


def test_names_that_are_not_utf8_are_shown_escaped(tmp_path: Path) -> None:
    t = taker(tmp_path / "in", settle=0)
    raw_name = os.path.join(os.fsencode(tmp_path / "in"), b"caf\xe9.xml")
    with open(raw_name, "wb") as f:
        f.write(DOC)
    (ready,) = t.scan().ready
    assert ready.shown == "caf\\xe9.xml" and ready.shown.encode("utf-8")
    assert display_name(ready.name) == ready.shown
    got = t.read(ready, 1 << 20)
    assert isinstance(got, Whole)
    assert finish([([got.stored], tmp_path / "done")]) == []
    assert os.listdir(os.fsencode(tmp_path / "done")) == [b"caf\xe9.xml"]
