"""Namespaces and element helpers for reading eCH-0020 v3 deliveries.

Elements are found by local name: the eCH-0020 XSD declares some children in
the namespace of the schema that declares them, not of their type (DOMAIN.md
§5.1: ``marriage`` has ``eCH-0020:maritalStatus``, ``divorce`` ``eCH-0011:maritalStatus``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from lxml import etree

from gateway.api import InputRejected, ech0223

NS_0020 = "http://www.ech.ch/xmlns/eCH-0020/3"
E20 = f"{{{NS_0020}}}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

Element = etree._Element
#: The value of an xs:token's text (blanks collapsed), as the eCH-0223 reader takes it too.
_collapse = ech0223.collapse

#: Local names by Clark tag: a delivery has a few dozen tags, each read again and again.
_LOCAL: dict[Any, str] = {}
#: Tags beyond this many (input of unusual variety) are not remembered.
_LOCAL_MAX = 2048


def _local_name(tag: Any) -> str:
    """The local name of a Clark ``tag`` (``""`` for a comment's or processing instruction's)."""
    name = _LOCAL.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCAL) < _LOCAL_MAX:
            _LOCAL[tag] = name
    return name


def local(el: Element) -> str:
    """The local name of ``el`` (``""`` for comments and processing instructions)."""
    return _local_name(el.tag)


def where(el: Element) -> str:
    """The element's path by local names, e.g. ``/delivery/move/movePerson/vn``."""
    names = [local(a) for a in el.iterancestors()][::-1]
    return "/" + "/".join([*names, local(el)])


def named(el: Element) -> list[tuple[str, Element]]:
    """The child elements of ``el`` with their local names, in document order."""
    found = []
    for child in el:
        tag = child.tag
        name = _LOCAL.get(tag) or _local_name(tag)
        if name:
            found.append((name, child))
    return found


def children(el: Element) -> dict[str, Element]:
    """The child elements of ``el`` by local name (the first of each name)."""
    return dict(reversed(named(el)))  # the first of each name is the one left


def all_named(el: Element, name: str) -> list[Element]:
    """Every child element of ``el`` with local name ``name``, in document order."""
    return [child for found, child in named(el) if found == name]


def missing(parent: Element, name: str) -> InputRejected:
    """The rejection of ``parent`` for lacking its required child ``name``."""
    return InputRejected(f"missing required element {name}", f"{where(parent)}/{name}")


def text(el: Element) -> str:
    """The whitespace-collapsed text of a simple element (``ech0223.collapse``: the value of
    the xs:token types read so, and blanks around a code or date are no part of it); empty
    text is rejected."""
    value = _collapse(el.text or "")
    if not value:
        raise InputRejected(f"empty element {local(el)}", where(el))
    return value


def date_of(el: Element) -> date:
    """An ``xs:date`` (a time zone suffix is allowed and ignored)."""
    value = text(el)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InputRejected(f"{local(el)} is not a date: {value[:40]!r}", where(el)) from None


def datetime_of(el: Element) -> datetime:
    """An ``xs:dateTime``."""
    value = text(el)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputRejected(f"{local(el)} is not a date and time: {value[:40]!r}", where(el)) from None
