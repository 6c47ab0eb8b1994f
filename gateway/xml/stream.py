"""Parse a large untrusted XML document a piece at a time, never holding its whole tree.

A registry's ``baseDelivery`` states every resident in one document: 90 MB
for a town of 20,000 foreign residents, whose tree took lxml about 340 MiB
more (``bench/base_big.py``). :class:`StreamedDocument` parses with the same
parser settings and the same checks as :func:`~gateway.xml.safe.parse_untrusted`
and hands out the elements at one depth as each ends, removing each from the
tree once the reader asks for the next: what stays is the document without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from lxml import etree

from gateway.xml.safe import SAFE_OPTIONS, parse_untrusted, refuse_before_parsing, refuse_doctype

__all__ = ["StreamedDocument"]

#: How much of the document is given to the parser at a time.
_PIECE = 1 << 20


class StreamedDocument:
    """``data`` parsed as :func:`~gateway.xml.safe.parse_untrusted` parses it, the elements
    at ``depth`` (the root's children are at depth 1) with the local name ``name`` handed
    out as each ends (others stay where they are).

    Iterate over it once: each element comes with its ancestors and what precedes it
    in the document (but not the elements at ``depth`` handed out before it), and is
    removed from its parent when the next is asked for. Then :attr:`root` is the
    document without them. What ``parse_untrusted`` refuses is refused with its reason:
    before the first element for what is checked before parsing, else when the parser
    reaches it (malformed XML late in the document: after the elements before it; the
    reason is then ``parse_untrusted``'s own, which parses the document again).
    """

    def __init__(self, data: bytes, *, max_bytes: int, depth: int, name: str,
                 keep_blank_text: bool = True, setting: str | None = None) -> None:
        refuse_before_parsing(data, max_bytes, setting)
        self._data = data
        self._depth = depth
        self._name = name
        self._keep_blank_text = keep_blank_text
        self._root: etree._Element | None = None

    @property
    def root(self) -> etree._Element:
        """The root element, once the iteration ended: the document without the
        elements handed out."""
        if self._root is None:
            raise RuntimeError("the document was not parsed yet")
        return self._root

    def __iter__(self) -> Iterator[etree._Element]:
        # the parser reports only the ends of elements so named: an event per element in
        # Python took longer than parsing the whole tree
        parser = etree.XMLPullParser(events=("end",), tag=f"{{*}}{self._name}", **SAFE_OPTIONS,
                                     remove_blank_text=not self._keep_blank_text)
        data = self._data
        try:
            for start in range(0, len(data), _PIECE):
                parser.feed(data[start:start + _PIECE])
                for _event, item in parser.read_events():
                    el = cast(etree._Element, item)  # events of elements only
                    parent = el.getparent()
                    if parent is None or sum(1 for _ in el.iterancestors()) != self._depth:
                        continue
                    yield el
                    parent.remove(el)
            self._root = parser.close()
        except etree.XMLSyntaxError:
            # the reason, as parse_untrusted gives it: a piece at a time, lxml says some
            # things otherwise (an undefined entity, where a text grew too long)
            parse_untrusted(self._data, max_bytes=len(self._data),
                            keep_blank_text=self._keep_blank_text)
            raise  # not reached: the same parser refuses the same bytes
        refuse_doctype(self._root.getroottree())
