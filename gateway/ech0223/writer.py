"""Write the eCH-0223 model as XML, reproducing the lexical forms it was read with."""

from __future__ import annotations

from typing import Any

from lxml import etree

from ._base import EchModel
from ._binding import E223, TEXT_FIELD, XSI, Layout
from ._message_xml import DOCUMENT, EVENT_REPORT, PERSON_EVENT_MESSAGE
from ._xsd import Scalar
from .document import Document
from .message import EventReport, PersonEventMessage
from .namespaces import NSMAP

_XSI_NIL = XSI + "nil"


def write_message(message: PersonEventMessage | EventReport, *, pretty_print: bool = False) -> bytes:
    """Serialise a message as UTF-8 XML with declaration; all prefixes sit on the root."""
    if isinstance(message, EventReport):
        root = etree.Element(E223 + "eventReport", nsmap=NSMAP)
        _fill(root, message, EVENT_REPORT)
    else:
        root = etree.Element(E223 + "personEventMessage", nsmap=NSMAP)
        _fill(root, message, PERSON_EVENT_MESSAGE)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=pretty_print)


def document_element(document: Document) -> etree._Element:
    """One eCH-0223 ``content/document`` element, to add to a message's tree."""
    el = etree.Element(E223 + "document", nsmap=NSMAP)
    _fill(el, document, DOCUMENT)
    return el


def _fill(el: etree._Element, model: EchModel, layout: Layout[Any]) -> None:
    """Add the attributes, text and children of ``model`` to ``el`` in schema order."""
    for attr in layout.attrs:
        value = getattr(model, attr.field)
        if value is not None:
            el.set(attr.name, _text(model, attr.field, value, attr.codec))
    if layout.text is not None:
        el.text = _text(model, TEXT_FIELD, getattr(model, TEXT_FIELD), layout.text)
    sub = etree.SubElement
    for tag, field, codec, occurs, inner, nillable in layout.items:
        value = getattr(model, field)
        if inner is not None:
            if value:
                wrapper = sub(el, tag)
                for item in value:
                    _put(wrapper, inner, item, codec)
        elif occurs == "*" or occurs == "+":
            for item in value:
                _put(el, tag, item, codec)
        elif value is None:
            if nillable:
                sub(el, tag, {_XSI_NIL: model.lexical(field) or "true"})
        elif isinstance(codec, Layout):
            _fill(sub(el, tag), value, codec)
        elif codec.parse is None:
            sub(el, tag).text = value
        else:
            sub(el, tag).text = _text(model, field, value, codec)


def _put(parent: etree._Element, tag: str, value: Any, codec: Scalar | Layout[Any]) -> None:
    """One of several occurrences: repeated simple elements are plain strings."""
    if isinstance(codec, Layout):
        _fill(etree.SubElement(parent, tag), value, codec)
    else:
        etree.SubElement(parent, tag).text = value


def _text(model: EchModel, field: str, value: Any, codec: Scalar) -> str:
    """The text of a simple value: as read if still valid, else the canonical form."""
    if codec.parse is None:
        return str(value)
    if not codec.exact:
        lexical = model.lexical(field)
        if lexical is not None:
            return lexical
    return codec.format(value)
