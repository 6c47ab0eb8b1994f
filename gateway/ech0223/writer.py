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

from ._base import EchModel, remembered
from ._binding import E223, TEXT_FIELD, XSI, Layout, per_layout
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
#: What XML text cannot hold: control characters, and surrogates (undecodable input).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
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
    _writer(layout)(out, name, model, extra)


_Writer = Callable[[list[str], str, EchModel, str], None]
def _compile(layout: Layout[Any]) -> _Writer:
    """A function writing an element of ``layout``, one straight-line step per attribute and child.

    Messages from other formats are written element by element here; a function made
    for the layout costs about half of walking its table for every model written, and
    a child of a complex type calls its own layout's function directly.
    """
    names: dict[str, Any] = {"_escape": _escape, "_text": _text, "_attribute": _attribute,
                             "_search": _SPECIAL_TEXT.search, "_remembered": remembered}
    lines = ["def write(out, name, model, extra=''):", "    v = model.__dict__", "    add = out.append",
             "    head = f'<{name}{extra}'"]
    if any(isinstance(item.codec, Scalar) and not item.codec.exact for item in layout.items):
        lines.insert(1, "    texts = _remembered(model)  # what lexical() looks in, mostly empty")
    for index, attr in enumerate(layout.attrs):
        names[f"a{index}"] = attr.codec
        lines += [f"    x = v[{attr.field!r}]", "    if x is not None:",
                  f"        head += ' {_qname(attr.name)}=\"' + _attribute(_text(model, {attr.field!r}, x,"
                  f" a{index})) + '\"'"]
    lines += ["    add(head)", "    start = len(out)"]
    if layout.text is not None:
        names["t"] = layout.text
        lines.append(f"    add(_escape(_text(model, {TEXT_FIELD!r}, v[{TEXT_FIELD!r}], t)))")
    for index, (tag, field, codec, occurs, inner, nillable) in enumerate(layout.items):
        name, ref = _qname(tag), f"c{index}"
        names[ref] = _writer(codec) if isinstance(codec, Layout) else codec
        lines.append(f"    x = v[{field!r}]")
        if inner is not None or occurs in ("*", "+"):
            each = _qname(inner) if inner is not None else name
            put = (f"{ref}(out, {each!r}, item)" if isinstance(codec, Layout)
                   else _add(each, "_escape(item)"))
            if inner is None:
                lines.append(f"    for item in x: {put}")
            else:
                lines += ["    if x:", f"        add({'<' + name + '>'!r})",
                          f"        for item in x: {put}", f"        add({'</' + name + '>'!r})"]
            continue
        if isinstance(codec, Layout):
            body = f"{ref}(out, {name!r}, x)"
        elif codec.exact and codec.format is str:  # the value is its text (TEXT, TOKEN, codes)
            body = _add(name, "x if _search(x) is None else _escape(x)")
        else:
            names[ref] = codec.format
            if codec.plain:  # only a remembered text may need escaping
                text = f"{ref}(x)" if codec.exact else f"({ref}(x) if s is None else _escape(s))"
            else:
                text = f"_escape({ref}(x))" if codec.exact else f"_escape({ref}(x) if s is None else s)"
            body = _add(name, text)
            if not codec.exact:
                body = f"s = model.lexical({field!r}) if texts else None\n        {body}"
        lines += ["    if x is not None:", f"        {body}"]
        if nillable:
            lines += ["    else:", f"        add('<{name} {_NIL}=\"' + _attribute(model.lexical({field!r})"
                      f" or 'true') + '\"/>')"]
    lines += ["    if len(out) == start:", "        out[start - 1] = head + '/>'", "    else:",
              "        out[start - 1] = head + '>'", "        add(f'</{name}>')"]
    exec(compile("\n".join(lines), f"<writer of {layout.model.__name__}>", "exec"), names)
    writer: _Writer = names["write"]
    return writer


#: The layout's own writer, compiled on first use.
_writer = per_layout(_compile)


def _add(name: str, text: str) -> str:
    """The statement appending element ``name`` with the text of expression ``text``.

    One f-string: the element is made in one allocation, not two concatenations.
    """
    return f"add(f'<{name}>{{{text}}}</{name}>')"


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


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be XML text (its first control character, named), or ``None``."""
    bad = _NOT_XML.search(text)
    if bad is None:
        return None
    return f"contains the control character U+{ord(bad.group()):04X}, which XML cannot carry"


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
