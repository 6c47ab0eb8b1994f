"""Whether a file's bytes are complete: the check for files written in place.

A writer that writes under the final name leaves, for a while, an empty
file, an XML document without its end, a zip without its directory, JSON
without its closing bracket, a CSV row without its last cells. This check
recognises those shapes from the bytes alone; whether the input is *valid*
is for later steps.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re

_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SIZE = 22
_BOMS = (b"\xef\xbb\xbf",)
_UTF16 = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")
_SPACE = frozenset(b" \t\r\n")
#: Where an element name ends.
_NAME_END = re.compile(rb"[\s/>]")
#: A root element's start tag cut off by the end of the input.
_ROOT_CUT = re.compile(rb"""<[^\s/>!?]*(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*"""
                       rb"""\s*(?:[^\s=/>]+\s*(?:=\s*(?:"[^"]*|'[^']*)?)?)?/?""")
#: How far into the input the root element's start is looked for.
_HEAD = 1 << 16
#: What is left after the place a JSON parser fails at when the input ends in a token:
#: nothing, or part of a literal, a number or an escape (``nu``, ``1.``, ``\\u00``).
_TOKEN_CUT = re.compile(r'[-+.\w\\"]{0,12}')
#: The delimiters a CSV export may use; the header line's most frequent one is taken.
_DELIMITERS = (b";", b",", b"\t", b"|")
#: What a blank line of CSV holds (Excel writes an empty row as its delimiters).
_BLANK = b" \t\r" + b"".join(_DELIMITERS)
#: Excel's line naming the delimiter (``sep=;``), which some exports write before the header.
_SEP_LINE = re.compile(rb"sep=.\r?", re.IGNORECASE)


def unfinished(data: bytes, *, settled: bool = False) -> str | None:
    """What shows that ``data`` is not completely written yet, or ``None``.

    Empty input; a zip without its end-of-central-directory record; XML
    without the end tag of its root element (XML declared with a DOCTYPE, or
    in UTF-16, is left for the normaliser to judge); a JSON object or list
    that ends before it is closed; text in lines with delimiters (CSV) that
    ends inside a quoted cell, or without a line end in a row with fewer
    cells than the first line, or in its first line. Anything else counts as
    finished: whether it is *valid* is for later steps.

    :param settled: the file has not changed for the reader's ``grace``: a CSV
        line alone without its line end then counts as finished, for a
        finished file may end so too (a header alone, from a writer that ends
        no line with a line end: an export without rows).
    """
    if not data:
        return "it is empty"
    if data.startswith(_ZIP_STARTS):
        return _zip_unfinished(data)
    body = data[3:] if data.startswith(_BOMS) else data
    if body.startswith(_UTF16):
        return None
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        return _json_unfinished(stripped, len(data))
    if stripped[:1] != b"<":
        return _csv_unfinished(body, len(data), settled)
    start = _prolog_end(body)
    if start >= len(body):
        return f"XML without a root element yet (it ends after {len(data)} bytes)"
    if not body.startswith(b"<", start) or body.startswith(b"<!", start):
        return None  # not XML, or a DOCTYPE: refused later with a reason of its own
    return _xml_unfinished(body, start, len(data))


def _prolog_end(body: bytes) -> int:
    """Where the prolog (white space, XML declaration, PIs, comments) ends; the length if cut."""
    i, n = 0, len(body)
    while i < min(n, _HEAD):
        if body[i] in _SPACE:
            i += 1
        elif body.startswith(b"<?", i) or body.startswith(b"<!--", i):
            close = b"?>" if body[i + 1] == ord("?") else b"-->"
            j = body.find(close, i + 2)
            if j < 0:
                return n
            i = j + len(close)
        else:
            break
    return i


def _json_unfinished(body: bytes, size: int) -> str | None:
    """JSON that ends before its outermost object or list is closed (``body``: from its start)."""
    cut = f"JSON that ends before its outermost {chr(body[0])} is closed (after {size} bytes)"
    try:
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return cut if exc.reason == "unexpected end of data" else None
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated") or (
                exc.msg != "Extra data" and _TOKEN_CUT.fullmatch(exc.doc[exc.pos:].rstrip())):
            return cut
    except (ValueError, RecursionError):
        pass  # too deep, a huge number: the normaliser says why
    return None  # whole, or malformed before its end (the normaliser says why)


def _csv_unfinished(body: bytes, size: int, settled: bool) -> str | None:
    """A CSV export cut inside a quoted cell or inside its last row (no line end yet)."""
    if b"\0" in body[:_HEAD]:
        return None  # not text
    if b"\n" not in body:  # old Mac line ends, CR alone (as a CSV reader takes them)
        body = body.replace(b"\r", b"\n")
    first = next((line for line in body[:_HEAD].split(b"\n")
                  if line.strip(_BLANK) and not _SEP_LINE.fullmatch(line)), b"")  # the header
    delimiter = max(_DELIMITERS, key=first.count)
    if not first.count(delimiter):
        return None  # not delimited text
    ended = body.endswith((b"\n", b"\r"))
    if b'"' not in body:
        inside, start = False, body.rfind(b"\n") + 1
    elif ended and not body.count(b'"') % 2:
        return None  # (the usual finished export, told without reading it cell by cell)
    else:  # a quote inside a cell (5" floppy) is text, not the start of a quoted cell
        inside, start = _csv_end(body, delimiter)
    if inside:
        return f"CSV that ends inside a quoted cell (after {size} bytes)"
    if ended:
        return None
    if not start:
        return None if settled else f"CSV of one line without its line end (after {size} bytes)"
    header, last = (next(csv.reader(io.StringIO(line.decode("latin-1"), newline=""),
                                    delimiter=delimiter.decode()), [])
                    for line in (first.rstrip(b"\r"), body[start:]))
    if len(last) < len(header):
        return (f"CSV whose last row has {len(last)} of the header's {len(header)} cells and no"
                f" line end (after {size} bytes)")
    return None


@functools.cache
def _quoted_cell(delimiter: bytes) -> re.Pattern[bytes]:
    """A quoted cell of CSV with ``delimiter``: a quote that starts a cell, up to the quote
    that closes it (group 1) or the end of the input (still open)."""
    return re.compile(rb'(?:\A|(?<=[' + re.escape(delimiter) + rb'\r\n]))"(?:[^"]+|"")*(?:(")|\Z)')


def _csv_end(body: bytes, delimiter: bytes) -> tuple[bool, int]:
    """Whether ``body`` ends inside a quoted cell, and where its last row starts.

    As a CSV reader sees it: a quote opens a quoted cell only at the start of a
    cell; elsewhere it is part of the text. Line ends inside quoted cells do not
    end rows.
    """
    inside, start, at = False, 0, 0
    for cell in _quoted_cell(delimiter).finditer(body):
        start = max(start, body.rfind(b"\n", at, cell.start()) + 1)
        at, inside = cell.end(), cell.group(1) is None
    return inside, max(start, body.rfind(b"\n", at) + 1)


def _zip_unfinished(data: bytes) -> str | None:
    at = data.rfind(_ZIP_END, max(0, len(data) - _ZIP_END_SIZE - 0xFFFF))
    while at >= 0:
        if len(data) >= at + _ZIP_END_SIZE:
            comment = int.from_bytes(data[at + 20:at + 22], "little")
            if at + _ZIP_END_SIZE + comment == len(data):
                return None
        at = data.rfind(_ZIP_END, max(0, len(data) - _ZIP_END_SIZE - 0xFFFF), at)
    return f"a zip without its end-of-central-directory record (it ends after {len(data)} bytes)"


def _xml_unfinished(body: bytes, start: int, size: int) -> str | None:
    found = _NAME_END.search(body, start + 1, start + _HEAD)
    if found is None:
        return f"XML that ends inside its root element's start tag (after {size} bytes)"
    name = body[start + 1:found.start()]
    end = len(body.rstrip())
    while True:  # trailing comments and processing instructions
        opener = b"<!--" if body.endswith(b"-->", 0, end) else (
            b"<?" if body.endswith(b"?>", 0, end) else None)
        cut = -1 if opener is None else body.rfind(opener, start, end)
        if cut <= start:
            break
        end = len(body[:cut].rstrip())
    if body.endswith(b">", 0, end):
        close = body.rfind(b"</", start, end)
        if close > start and body[close + 2:end - 1].rstrip() == name:
            return None
        if body.endswith(b"/>", 0, end) and body.find(b"<", start + 1, end) < 0:
            return None  # the root element closes itself
    if _ROOT_CUT.fullmatch(body, start):
        return f"XML that ends inside its root element's start tag (after {size} bytes)"
    return (f"XML without the end tag of its root element <{name.decode('utf-8', 'replace')}>"
            f" (it ends after {size} bytes)")
