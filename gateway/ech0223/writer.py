"""Write the eCH-0223 model as XML, reproducing the lexical forms it was read with.

The text is built directly from the binding tables, as lxml would serialise the
same tree (prefixes from ``NSMAP`` on the root, escaping, ``<a/>`` for an element
without content): building an lxml tree first cost three times as much, and every
message the gateway makes from another format is written here.
"""

from __future__ import annotations

import functools
import re
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


#: How each child of a layout is written: wrapped list, repeated, complex, plain text, typed text.
_WRAPPED, _REPEATED, _COMPLEX, _PLAIN, _TYPED = range(5)
_Step = tuple[str, str, Any, int, str, bool]
_PLANS: dict[int, tuple[Layout[Any], tuple[_Step, ...]]] = {}


def _plan(layout: Layout[Any]) -> tuple[_Step, ...]:
    """The children of ``layout`` with their prefixed names and how to write them (computed once)."""
    known = _PLANS.get(id(layout))
    if known is not None and known[0] is layout:
        return known[1]
    steps = []
    for tag, field, codec, occurs, inner, nillable in layout.items:
        if inner is not None:
            how = _WRAPPED
        elif occurs == "*" or occurs == "+":
            how = _REPEATED
        elif isinstance(codec, Layout):
            how = _COMPLEX
        else:
            how = _PLAIN if codec.parse is None else _TYPED
        steps.append((_qname(tag), field, codec, how, _qname(inner) if inner else "", nillable))
    _PLANS[id(layout)] = (layout, tuple(steps))
    return tuple(steps)


def _children(out: list[str], model: EchModel, layout: Layout[Any]) -> None:
    values = model.__dict__
    for name, field, codec, how, inner, nillable in _plan(layout):
        value = values[field]
        if how == _WRAPPED:
            if value:
                out.append("<" + name + ">")
                for item in value:
                    _put(out, inner, item, codec)
                out.append("</" + name + ">")
        elif how == _REPEATED:
            for item in value:
                _put(out, name, item, codec)
        elif value is None:
            if nillable:
                out.append(f'<{name} {_NIL}="{_attribute(model.lexical(field) or "true")}"/>')
        elif how == _COMPLEX:
            _element(out, name, value, codec)
        elif how == _PLAIN:
            out.append(f"<{name}>{_escape(value)}</{name}>")
        else:
            out.append(f"<{name}>{_escape(_text(model, field, value, codec))}</{name}>")


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
