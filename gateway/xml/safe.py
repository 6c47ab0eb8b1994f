"""Parse XML that comes from outside the gateway.

Every document a partner, a drop folder or a sedex client hands us goes
through :func:`parse_untrusted`. It refuses what a well-behaved eCH message
never contains and what XML attacks need: DTDs (so no entity expansion, no
external entities, no "billion laughs"), network access and oversized input.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

from gateway.errors import InputRejected

__all__ = ["parse_untrusted"]

# Byte order marks and BOM-less first bytes of encodings that are not ASCII-compatible.
_WIDE_ENCODINGS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)

_local = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser (lxml parsers must not be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
        )
        _local.parser = parser
    return parser


def _ascii_view(data: bytes) -> bytes:
    """``data`` re-encoded as UTF-8 if it is UTF-16/32, so the prolog can be scanned bytewise."""
    for prefix, codec in _WIDE_ENCODINGS:
        if data.startswith(prefix):
            return data.decode(codec, errors="replace").encode("utf-8")
    return data


def _declaration_offset(data: bytes) -> int | None:
    """Offset of a ``<!...`` declaration (DOCTYPE) before the root element, else ``None``.

    Only the prolog is scanned: XML declaration, processing instructions,
    comments and whitespace are skipped; the first other tag ends the scan.
    """
    pos = 0
    while (lt := data.find(b"<", pos)) >= 0:
        if data.startswith(b"<?", lt):
            end, skip = data.find(b"?>", lt + 2), 2
        elif data.startswith(b"<!--", lt):
            end, skip = data.find(b"-->", lt + 4), 3
        elif data.startswith(b"<!", lt):
            return lt
        else:
            return None
        if end < 0:
            return None  # unterminated: the parser reports it as malformed
        pos = end + skip
    return None


_LXML_POSITION = re.compile(r", line \d+, column \d+$")


def parse_untrusted(data: bytes, *, max_bytes: int) -> etree._ElementTree:
    """Parse ``data`` safely or raise :class:`InputRejected` saying why not.

    Refused: empty input, input longer than ``max_bytes`` (checked before
    parsing), any DOCTYPE or other markup declaration, and malformed XML (the
    reason gives lxml's line and column). Entities are never expanded and
    nothing is ever fetched from the network.
    """
    if len(data) > max_bytes:
        raise InputRejected(f"input is {len(data)} bytes, more than the limit of {max_bytes}")
    if not data or data.isspace():
        raise InputRejected("empty input")
    view = _ascii_view(data)
    offset = _declaration_offset(view)
    if offset is not None:
        line = view.count(b"\n", 0, offset) + 1
        raise InputRejected("DOCTYPE and entity declarations are not allowed", f"line {line}")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        detail = _LXML_POSITION.sub("", exc.msg)  # lxml repeats the position at the end
        raise InputRejected(f"malformed XML at line {line}, column {column}: {detail}") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:  # a DOCTYPE in an encoding the scan cannot read
        raise InputRejected("DOCTYPE and entity declarations are not allowed")
    return tree
