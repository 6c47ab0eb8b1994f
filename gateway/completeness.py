"""Whether a file's bytes are complete: the check for files written in place.

A writer that writes under the final name leaves, for a while, an empty
file, an XML document without its end, a zip without its directory. This
check recognises those shapes from the bytes alone; whether the input is
*valid* is for later steps.
"""

from __future__ import annotations

import re

_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SIZE = 22
_BOMS = (b"\xef\xbb\xbf",)
_UTF16 = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")
#: Prolog items before the root element: XML declaration, PIs, comments, white space.
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)
#: The root element's start tag; group 2 is "/" when it closes itself.
_ROOT = re.compile(rb"""<([^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
#: A root element's start tag cut off by the end of the input.
_ROOT_CUT = re.compile(rb"""<[^\s/>!?]*(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*"""
                       rb"""\s*(?:[^\s=/>]+\s*(?:=\s*(?:"[^"]*|'[^']*)?)?)?/?""")
#: How much of the head is searched for the root element's start.
_HEAD = 1 << 16


def unfinished(data: bytes) -> str | None:
    """What shows that ``data`` is not completely written yet, or ``None``.

    Empty input; a zip without its end-of-central-directory record; XML
    without the end tag of its root element (XML declared with a DOCTYPE, or
    in UTF-16, is left for the normaliser to judge). Anything else counts as
    finished: whether it is *valid* is for later steps.
    """
    if not data:
        return "it is empty"
    if data.startswith(_ZIP_STARTS):
        return _zip_unfinished(data)
    body = data[3:] if data.startswith(_BOMS) else data
    if body.startswith(_UTF16):
        return None
    prolog = _PROLOG.match(body, 0, min(len(body), _HEAD))
    start = prolog.end() if prolog else 0
    if start == len(body):
        return f"XML without a root element yet (it ends after {len(data)} bytes)"
    if not body.startswith(b"<", start) or body.startswith(b"<!", start):
        return None  # not XML, or a DOCTYPE: refused later with a reason of its own
    return _xml_unfinished(body, start, len(data))


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
    root = _ROOT.match(body, start, min(len(body), start + _HEAD))
    if root is None:
        if _ROOT_CUT.fullmatch(body, start) is None:
            return None  # a start tag this check does not understand: not its business
        return f"XML that ends inside its root element's start tag (after {size} bytes)"
    name = root.group(1)
    end = len(body)
    while True:  # trailing white space, comments and processing instructions
        tail = body[:end].rstrip()
        end = len(tail)
        opener = b"<!--" if tail.endswith(b"-->") else b"<?" if tail.endswith(b"?>") else None
        if opener is None or (cut := tail.rfind(opener)) < root.end():
            break
        end = cut
    if root.group(2) and root.end() == end:
        return None
    if re.search(rb"</" + re.escape(name) + rb"\s*>\Z", body[max(0, end - len(name) - 64):end]):
        return None
    return (f"XML without the end tag of its root element <{name.decode('utf-8', 'replace')}>"
            f" (it ends after {size} bytes)")
