"""Read eCH-0223 1.5 XML into the model, keeping what the writer needs to reproduce it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree
from pydantic import ValidationError

from gateway.errors import InputRejected

from ._base import remember_lexical
from ._binding import E223, TEXT_FIELD, XSI, Layout, M
from ._message_xml import EVENT_REPORT, PERSON_EVENT_MESSAGE
from ._xsd import Scalar, parse_boolean
from .codes import EchVersion
from .message import EventReport, PersonEventMessage
from .namespaces import NS

SUPPORTED_VERSIONS: tuple[EchVersion, ...] = ("1.5",)
_XSI_NIL = XSI + "nil"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)


def read_message(data: bytes | etree._Element) -> PersonEventMessage | EventReport:
    """Read a ``personEventMessage`` or ``eventReport`` of eCH-0223 1.5.

    Checks structure (order, occurrence, namespaces), enumerations and the syntax of
    dates, booleans and numbers; lengths and patterns are left to XSD validation.

    :raises InputRejected: not well-formed, not eCH-0223 1.5, or not of the schema's
        shape; ``where`` is the path of the offending element.
    """
    root = _parse(data) if isinstance(data, bytes) else data
    if root.tag not in (E223 + "personEventMessage", E223 + "eventReport"):
        raise InputRejected(
            f"not an eCH-0223 message: root element is {etree.QName(root).text}, expected "
            f"personEventMessage or eventReport in namespace {NS.ECH_0223}",
            "/",
        )
    version = root.get("version")
    if version is None:
        raise InputRejected(
            "no version attribute: eCH-0223 1.0 to 1.4 are read after versions.upgrade() to 1.5",
            _where(root),
        )
    if version.strip(" \t\n\r") not in SUPPORTED_VERSIONS:
        raise InputRejected(
            f"unsupported eCH-0223 version {version!r} (supported: {', '.join(SUPPORTED_VERSIONS)})",
            _where(root),
        )
    if root.tag == E223 + "eventReport":
        return _read(root, EVENT_REPORT)
    return _read(root, PERSON_EVENT_MESSAGE)


def _parse(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InputRejected(f"not well-formed XML: {exc.msg}", f"line {exc.lineno}") from exc


def _read(el: etree._Element, layout: Layout[M]) -> M:
    """Read one element of a complex type; its children must follow the schema order."""
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    if layout.attrs or len(el.attrib):
        _read_attributes(el, layout, values, texts)
    if layout.text is not None:
        _read_text(el, el.text or "", TEXT_FIELD, layout.text, values, texts)
    positions = layout.positions
    last, required = -1, 0
    for child in el:
        found = positions.get(child.tag)
        if found is None:
            if not isinstance(child.tag, str):  # comment or processing instruction
                continue
            raise _unexpected(child)
        index, (_, field, codec, occurs, inner, nillable) = found
        repeated = occurs == "*" or occurs == "+"
        if index <= last:
            if index < last or not repeated:
                raise InputRejected(f"element {etree.QName(child).text} out of schema order", _where(child))
        elif occurs != "?" and occurs != "*":
            required += 1
        last = index
        if inner is not None:
            values[field] = _read_wrapper(child, inner, codec)
        elif isinstance(codec, Layout):
            value = _read(child, codec)
            if repeated:
                values.setdefault(field, []).append(value)
            else:
                values[field] = value
        elif len(child) or len(child.attrib):
            _read_unusual_leaf(child, field, nillable, values, texts)
        elif repeated:
            values.setdefault(field, []).append(child.text or "")
        elif codec.parse is None:
            values[field] = child.text or ""
        else:
            _read_text(child, child.text or "", field, codec, values, texts)
    if required != layout.required:
        missing = next(i for i in layout.items if i.occurs in ("1", "+") and i.field not in values)
        raise InputRejected(f"missing element {etree.QName(missing.tag).localname}", _where(el))
    try:
        model = layout.model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or layout.model.__name__}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputRejected(problems, _where(el)) from None
    remember_lexical(model, texts)
    return model


def _read_attributes(
    el: etree._Element, layout: Layout[Any], values: dict[str, Any], texts: dict[str, str]
) -> None:
    attrib = el.attrib
    known = {attr.name for attr in layout.attrs}
    for name in attrib:
        if name not in known:
            raise InputRejected(f"unexpected attribute {etree.QName(name).text}", _where(el))
    for attr in layout.attrs:
        text = attrib.get(attr.name)
        if text is not None:
            _read_text(el, text, attr.field, attr.codec, values, texts)
        elif attr.required:
            raise InputRejected(f"missing attribute {attr.name}", _where(el))


def _read_unusual_leaf(
    el: etree._Element, field: str, nillable: bool, values: dict[str, Any], texts: dict[str, str]
) -> None:
    """A simple-typed element with attributes or children: only ``xsi:nil`` is allowed."""
    if len(el):
        raise InputRejected("element content in a simple-typed element", _where(el))
    nil = el.get(_XSI_NIL)
    if not nillable or nil is None or len(el.attrib) > 1:
        raise _unexpected_attribute(el)
    if not _parse_text(el, nil, parse_boolean) or el.text:
        raise InputRejected("only xsi:nil='true' without content is supported", _where(el))
    values[field] = None
    if nil != "true":
        texts[field] = nil


def _read_text(
    el: etree._Element,
    text: str,
    field: str,
    codec: Scalar,
    values: dict[str, Any],
    texts: dict[str, str],
) -> None:
    """Store the value of ``text``, and ``text`` itself when it is not canonical."""
    if codec.parse is None:
        values[field] = text
        return
    value = values[field] = _parse_text(el, text, codec.parse)
    if not codec.exact and codec.format(value) != text:
        texts[field] = text


def _parse_text(el: etree._Element, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text)
    except ValueError as exc:
        raise InputRejected(str(exc), _where(el)) from None


def _read_wrapper(el: etree._Element, inner: str, codec: Scalar | Layout[Any]) -> list[Any]:
    """A wrapper such as ``titles``: one or more ``inner`` elements and nothing else."""
    if len(el.attrib):
        raise _unexpected_attribute(el)
    items = []
    for child in el.iterchildren(etree.Element):
        if child.tag != inner:
            raise _unexpected(child)
        items.append(_read(child, codec) if isinstance(codec, Layout) else child.text or "")
    if not items:
        raise InputRejected(f"missing element {etree.QName(inner).localname}", _where(el))
    return items


def _unexpected(el: etree._Element) -> InputRejected:
    return InputRejected(f"unexpected element {etree.QName(el).text}", _where(el))


def _unexpected_attribute(el: etree._Element) -> InputRejected:
    name = next(iter(el.attrib))
    return InputRejected(f"unexpected attribute {etree.QName(name).text}", _where(el))


def _where(el: etree._Element) -> str:
    """The element's path by local names, e.g. ``/personEventMessage/header/action``."""
    path = [etree.QName(a).localname for a in el.iterancestors()][::-1]
    return "/" + "/".join([*path, etree.QName(el).localname])
