"""Write the eCH-0223 model as XML, reproducing the lexical forms it was read with.

The text is built directly from the binding tables, as lxml would serialise the
same tree (prefixes from ``NSMAP`` on the root, escaping, ``<a/>`` for an element
without content): building an lxml tree first cost three times as much, and every
message the gateway makes from another format is written here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from ._base import EchModel
from ._binding import E223, TEXT_FIELD, XSI, Layout
from ._message_xml import DOCUMENT, EVENT_REPORT, PERSON_EVENT_MESSAGE
from ._xsd import Scalar
from .document import Document
from .message import EventReport, PersonEventMessage
from .namespaces import NSMAP

_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
_PREFIXES = {uri: prefix for prefix, uri in NSMAP.items()}
_NAMESPACES = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in NSMAP.items())
#: Characters XML 1.0 cannot hold (lxml refuses them too), and those that need escaping.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPECIAL_TEXT = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPECIAL_ATTR = re.compile('[&<>"\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;",
                               "\n": "&#10;", "\t": "&#9;"})


def write_message(message: PersonEventMessage | EventReport, *, pretty_print: bool = False) -> bytes:
    """Serialise a message as UTF-8 XML with declaration; all prefixes sit on the root.

    :raises ValueError: a text holds a character XML cannot carry (a control character).
    """
    out: list[str] = [_DECLARATION]
    if isinstance(message, EventReport):
        _element(out, _qname(E223 + "eventReport"), message, EVENT_REPORT, _NAMESPACES)
    else:
        _element(out, _qname(E223 + "personEventMessage"), message, PERSON_EVENT_MESSAGE, _NAMESPACES)
    data = "".join(out).encode("utf-8")
    if pretty_print:
        root = etree.fromstring(data)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data


def document_element(document: Document) -> etree._Element:
    """One eCH-0223 ``content/document`` element, to add to a message's tree."""
    out: list[str] = []
    _element(out, _qname(E223 + "document"), document, DOCUMENT, _NAMESPACES)
    return etree.fromstring("".join(out).encode("utf-8"))


@functools.cache
def _qname(clark: str) -> str:
    """``{uri}name`` as ``prefix:name`` with the root's prefixes (a name without namespace as is)."""
    if not clark.startswith("{"):
        return clark
    uri, _, name = clark[1:].partition("}")
    return f"{_PREFIXES[uri]}:{name}"


_NIL = _qname(XSI + "nil")


def _element(out: list[str], name: str, model: EchModel, layout: Layout[Any], extra: str = "") -> None:
    """Append ``model`` as element ``name``: attributes, text and children in schema order."""
    head = "<" + name + extra
    for attr in layout.attrs:
        value = getattr(model, attr.field)
        if value is not None:
            head += f' {_qname(attr.name)}="{_attribute(_text(model, attr.field, value, attr.codec))}"'
    out.append(head)
    start = len(out)
    if layout.text is not None:
        out.append(_escape(_text(model, TEXT_FIELD, getattr(model, TEXT_FIELD), layout.text)))
    _children(out, model, layout)
    if len(out) == start:
        out[start - 1] = head + "/>"
    else:
        out[start - 1] = head + ">"
        out.append("</" + name + ">")


_Writer = Callable[[list[str], EchModel], None]
_WRITERS: dict[int, tuple[Layout[Any], _Writer]] = {}


def _children(out: list[str], model: EchModel, layout: Layout[Any]) -> None:
    """Append the children of ``model`` in schema order, with the layout's own writer."""
    known = _WRITERS.get(id(layout))
    if known is None or known[0] is not layout:
        known = (layout, _compile(layout))
        _WRITERS[id(layout)] = known
    known[1](out, model)


def _compile(layout: Layout[Any]) -> _Writer:
    """A function writing the children of ``layout``, one straight-line step per child.

    Messages from other formats are written child by child here; a function made for
    the layout costs about half of walking its table for every model written.
    """
    names: dict[str, Any] = {"_element": _element, "_put": _put, "_escape": _escape, "_text": _text,
                             "_attribute": _attribute, "_search": _SPECIAL_TEXT.search}
    lines = ["def write(out, model):", "    v = model.__dict__", "    add = out.append"]
    for index, (tag, field, codec, occurs, inner, nillable) in enumerate(layout.items):
        name, codec_ref = _qname(tag), f"c{index}"
        names[codec_ref] = codec
        lines.append(f"    x = v[{field!r}]")
        if inner is not None:
            lines += ["    if x:", f"        add({'<' + name + '>'!r})",
                      f"        for item in x: _put(out, {_qname(inner)!r}, item, {codec_ref})",
                      f"        add({'</' + name + '>'!r})"]
            continue
        if occurs in ("*", "+"):
            lines.append(f"    for item in x: _put(out, {name!r}, item, {codec_ref})")
            continue
        if isinstance(codec, Layout):
            body = f"_element(out, {name!r}, x, {codec_ref})"
        elif codec.parse is None:
            body = (f"add({'<' + name + '>'!r} + (x if _search(x) is None else _escape(x))"
                    f" + {'</' + name + '>'!r})")
        else:
            body = (f"add({'<' + name + '>'!r} + _escape(_text(model, {field!r}, x, {codec_ref}))"
                    f" + {'</' + name + '>'!r})")
        lines += ["    if x is not None:", f"        {body}"]
        if nillable:
            lines += ["    else:", f"        add('<{name} {_NIL}=\"' + _attribute(model.lexical({field!r})"
                      f" or 'true') + '\"/>')"]
    exec(compile("\n".join(lines), f"<writer of {layout.model.__name__}>", "exec"), names)
    writer: _Writer = names["write"]
    return writer


def _put(out: list[str], name: str, value: Any, codec: Scalar | Layout[Any]) -> None:
    """One of several occurrences: repeated simple elements are plain strings."""
    if isinstance(codec, Layout):
        _element(out, name, value, codec)
    else:
        _simple(out, name, value)


def _simple(out: list[str], name: str, text: str) -> None:
    out.append(f"<{name}>{_escape(text)}</{name}>")


def _escape(text: str) -> str:
    if _SPECIAL_TEXT.search(text) is None:
        return text
    _refuse_invalid(text)
    return text.translate(_TEXT_ESCAPES)


def _attribute(text: str) -> str:
    if _SPECIAL_ATTR.search(text) is None:
        return text
    _refuse_invalid(text)
    return text.translate(_ATTR_ESCAPES)


def _refuse_invalid(text: str) -> None:
    if _INVALID.search(text) is not None:
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or"
                         " control characters")


def _text(model: EchModel, field: str, value: Any, codec: Scalar) -> str:
    """The text of a simple value: as read if still valid, else the canonical form."""
    if codec.parse is None:
        return str(value)
    if not codec.exact:
        lexical = model.lexical(field)
        if lexical is not None:
            return lexical
    return codec.format(value)
