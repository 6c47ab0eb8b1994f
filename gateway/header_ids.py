"""The eCH-0223 header's messageId and senderId of an input a source quarantines itself.

A source sets some inputs aside before any processing (:meth:`Intake.quarantine
<gateway.contracts.Intake.quarantine>`): a sedex pair addressed to another
participant, one with a broken envelope. Such an input keeps the ids its
eCH-0223 header gives, as one quarantined by processing does, so that the
operator finds it by the messageId the sender quotes (``messages show``). They
are read here, for every source, from the input's own bytes: never from what a
transport says of it (the sedex envelope's messageId is another one).

What it costs: a search for the eCH-0223 namespace in the bytes (any other
input costs no more: 1 to 3 µs for 6 to 13 KB), then one parse of the document
with :func:`~gateway.xml.safe.parse_untrusted`, without the indentation (20 µs
for a 1.5 KB message, 70 µs for 13 KB, growing with the document: 140 ms for
5 MB of elements); of a zip, its directory and the one message entry unpacked,
never its files (140 µs with 10 MB of files). Evidence of an input over its
limit costs nothing.
"""

from __future__ import annotations

from lxml import etree

from gateway.archive import safe_unzip
from gateway.contracts import NormaliseContext, RawInput
from gateway.ech0223.namespaces import NS
from gateway.errors import InputRejected
from gateway.fileio import KEPT_BYTES
from gateway.xml.safe import parse_untrusted

_ROOTS = frozenset(f"{{{NS.ECH_0223}}}{name}" for name in ("personEventMessage", "eventReport"))
_HEADER = f"{{{NS.ECH_0223}}}header"
_MESSAGE_ID = f"{{{NS.ECH_0039}}}messageId"
_SENDER_ID = f"{{{NS.ECH_0039}}}senderId"
_NAMESPACE = NS.ECH_0223.encode()
_ZIP = b"PK\x03\x04"

#: No messageId, no senderId.
_NONE: tuple[None, None] = (None, None)


def header_ids(raw: RawInput, limits: NormaliseContext) -> tuple[str | None, str | None]:
    """The ``messageId`` and ``senderId`` of ``raw``'s eCH-0223 header (``None`` for one
    it does not give), as the eCH-0223 normaliser reads them.

    Neither when the header cannot be read safely: ``raw`` is evidence of an
    input over its limit (its first bytes only, :class:`~gateway.fileio.Evidence`:
    never read as a document); it is no eCH-0223 (no such namespace in it: UTF-16 is
    not looked into either); :func:`~gateway.xml.safe.parse_untrusted` refuses it
    (hostile, malformed, cut short, over ``[limits] max_document_bytes``); or it is
    a zip without exactly one XML file at its root, or one
    :func:`~gateway.archive.safe_unzip` refuses.
    """
    if KEPT_BYTES in raw.meta:
        return _NONE
    try:
        data = _message_in_zip(raw.data, limits) if raw.data.startswith(_ZIP) else raw.data
        if data is None or _NAMESPACE not in data:
            return _NONE
        root = parse_untrusted(data, max_bytes=limits.max_bytes, keep_blank_text=False).getroot()
    except InputRejected:
        return _NONE
    return header_ids_of(root)


def header_ids_of(root: etree._Element) -> tuple[str | None, str | None]:
    """The ``messageId`` and ``senderId`` of the eCH-0223 header of the parsed document whose
    root is ``root``; ``None`` for one it does not give (or gives blank), both ``None`` for
    a document that is no ``personEventMessage`` or ``eventReport``.

    The eCH-0223 normaliser reads them with it too, for every input: 2 µs (a child found
    with ``iterchildren`` takes half the time of ``find``).
    """
    header = next(root.iterchildren(_HEADER), None) if root.tag in _ROOTS else None
    if header is None:
        return _NONE
    return (_text(next(header.iterchildren(_MESSAGE_ID), None)),
            _text(next(header.iterchildren(_SENDER_ID), None)))


def _message_in_zip(data: bytes, limits: NormaliseContext) -> bytes | None:
    """The XML file at the root of the zip ``data``, if it has exactly one (an eCH-0223
    zip's message), unpacked alone."""
    found = safe_unzip(data, max_entries=limits.max_zip_entries,
                       max_total_bytes=limits.max_zip_bytes, max_ratio=limits.max_zip_ratio,
                       only=_at_root_xml)
    return next(iter(found.values())) if len(found) == 1 else None


def _at_root_xml(name: str) -> bool:
    return "/" not in name and name.lower().endswith(".xml")


def _text(el: etree._Element | None) -> str | None:
    """The element's text without surrounding blanks; ``None`` for none."""
    return (el.text.strip() or None) if el is not None and el.text else None
