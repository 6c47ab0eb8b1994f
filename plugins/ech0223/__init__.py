"""The eCH-0223 normaliser: input that already is eCH-0223 (XML, or a zip with ``files/``)."""

from __future__ import annotations

from gateway.api import (
    Attachment,
    InputRejected,
    NormaliseContext,
    Normalised,
    RawInput,
    hookimpl,
    parse_untrusted,
    safe_unzip,
)

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
NS_HEADER = "http://www.ech.ch/xmlns/eCH-0039/3"
ROOTS = {f"{{{NS}}}personEventMessage": "personEventMessage", f"{{{NS}}}eventReport": "eventReport"}
_HEADER = f"{{{NS}}}header"
_MESSAGE_ID = f"{{{NS_HEADER}}}messageId"
_REFERENCE_ID = f"{{{NS_HEADER}}}referenceMessageId"
_ACTION = f"{{{NS_HEADER}}}action"


@hookimpl
def gateway_normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """Take eCH-0223 as it is; decline XML in any other namespace."""
    xml, attachments = _unpack(raw.data, context)
    tree = parse_untrusted(xml, max_bytes=context.max_bytes)
    root = tree.getroot()
    kind = ROOTS.get(root.tag)
    if kind is None:
        if root.tag.startswith(f"{{{NS}}}"):
            raise InputRejected(f"unknown eCH-0223 root element {root.tag!r};"
                                " expected personEventMessage or eventReport", "line 1")
        return None
    header = root.find(_HEADER)
    return Normalised(
        kind=kind,
        message_id=_text(header, _MESSAGE_ID),
        xml=xml,
        tree=tree,
        version=root.get("version", "1.0"),
        attachments=attachments,
        reference_message_id=_text(header, _REFERENCE_ID),
        action=_text(header, _ACTION),
    )


def _unpack(data: bytes, context: NormaliseContext) -> tuple[bytes, tuple[Attachment, ...]]:
    if not data.startswith(b"PK\x03\x04"):
        return data, ()
    files = safe_unzip(data, max_entries=context.max_zip_entries,
                       max_total_bytes=context.max_zip_bytes, max_ratio=context.max_zip_ratio)
    messages = [n for n in files if "/" not in n and n.lower().endswith(".xml")]
    if len(messages) != 1:
        raise InputRejected(f"a zip payload needs exactly one XML message at its root,"
                            f" found {len(messages)}")
    strays = [n for n in files if n not in messages and not n.startswith("files/")]
    if strays:
        raise InputRejected("zip entries outside files/", ", ".join(sorted(strays)[:5]))
    attachments = tuple(Attachment(n.removeprefix("files/"), files[n])
                        for n in sorted(files) if n.startswith("files/") and not n.endswith("/"))
    return files[messages[0]], attachments


def _text(parent: object, tag: str) -> str | None:
    if parent is None:
        return None
    el = parent.find(tag)  # type: ignore[attr-defined]
    return el.text.strip() if el is not None and el.text else None
