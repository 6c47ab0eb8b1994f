"""The argument mapping: which values go into which arguments of a SOAP operation.

The configuration maps argument names to value specs::

    [partners.canton.soap.arguments]
    message = "payload"            # a field of the delivery
    messageId = "message_id"
    sender = "const:3-GE-1"        # a constant
    "header.attempt" = "attempt"   # a dotted name fills a nested element

A spec names a field (:data:`ITEM_FIELDS` for the transport, :data:`SOURCE_FIELDS`
for the source) or is ``const:TEXT``. Where an argument takes the message
(``payload``), its form follows the WSDL type of the argument: bytes for
``xsd:base64Binary``, text for ``xsd:string`` (and types derived from it), the parsed XML for
``xsd:any``/``xsd:anyType`` (or an element whose only content is ``xsd:any``).
:func:`plan` checks the mapping against the operation once, at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from zeep.xsd.elements import Any as AnyElement
from zeep.xsd.types import AnyType, ComplexType
from zeep.xsd.types.builtins import Base64Binary, String
from zeep.xsd.types.simple import AnySimpleType

from gateway.api import parse_untrusted

#: The fields of an OutboundItem a transport argument may name.
ITEM_FIELDS = ("payload", "message_id", "attempt_ref", "delivery_id", "attempt", "partner",
               "event_date")
#: The values a source argument may name.
SOURCE_FIELDS = ("cursor", "ids")
CONST = "const:"
#: Fields whose values are XML documents (bytes), shaped by the argument's type.
XML_FIELDS = frozenset({"payload"})


def check_spec(spec: str, fields: tuple[str, ...]) -> None:
    """Refuse a spec that is neither a known field nor a constant."""
    if not spec.startswith(CONST) and spec not in fields:
        raise ValueError(f"{spec!r} is neither a field ({', '.join(fields)}) nor 'const:TEXT'")


@dataclass(frozen=True, slots=True)
class Argument:
    """One mapped argument: where it goes, what fills it, in which form.

    :param form: ``value`` (as is), ``base64`` (bytes), ``text`` (decoded),
        ``xml`` (an element) or ``wrapped`` (an element under ``wrap``).
    """

    path: tuple[str, ...]
    spec: str
    form: str = "value"
    wrap: str = ""


def plan(body: Any, arguments: Mapping[str, str], operation: str) -> list[Argument]:
    """Check ``arguments`` against the operation's input element ``body``.

    :raises ValueError: an argument the operation lacks, or a payload argument
        whose type cannot carry a message; the text names both.
    """
    planned = []
    for name, spec in arguments.items():
        path = tuple(name.split("."))
        element = _find(body, path, operation)
        form, wrap = "value", ""
        if spec in XML_FIELDS:
            form, wrap = _form(element, name, operation)
        planned.append(Argument(path, spec, form, wrap))
    return planned


def _find(body: Any, path: tuple[str, ...], operation: str) -> Any:
    element = body
    for depth, part in enumerate(path):
        children = dict(getattr(element.type, "elements", ()) or ())
        if part not in children:
            where = ".".join(path[:depth]) or operation
            known = ", ".join(children) or "none"
            raise ValueError(f"{where} has no argument {part!r} (it has: {known})")
        element = children[part]
    return element


def _form(element: Any, name: str, operation: str) -> tuple[str, str]:
    if isinstance(element, AnyElement):
        return "xml", ""
    kind = element.type
    if isinstance(kind, Base64Binary):
        return "base64", ""
    if isinstance(kind, String):
        return "text", ""
    if isinstance(kind, ComplexType):
        children = kind.elements
        if len(children) == 1 and isinstance(children[0][1], AnyElement):
            return "wrapped", children[0][0]
    elif type(kind) is AnyType:
        return "xml", ""
    elif type(kind) is AnySimpleType:
        return "text", ""
    raise ValueError(f"{operation}.{name} is of type {kind.name or repr(kind)}, which cannot carry"
                     " a message (base64Binary, string, anyType or xsd:any can)")


def build(planned: list[Argument], values: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """The keyword arguments of the call: ``values`` (field -> value) put in place and form."""
    kwargs: dict[str, Any] = {}
    for arg in planned:
        value = arg.spec[len(CONST):] if arg.spec.startswith(CONST) else values[arg.spec]
        value = _shape(value, arg, max_bytes)
        into = kwargs
        for part in arg.path[:-1]:
            into = into.setdefault(part, {})
        into[arg.path[-1]] = value
    return kwargs


def _shape(value: Any, arg: Argument, max_bytes: int) -> Any:
    if arg.form == "base64":
        return value
    if arg.form == "text":
        return value.decode("utf-8")
    if arg.form in ("xml", "wrapped"):
        root: etree._Element = parse_untrusted(value, max_bytes=max_bytes).getroot()
        return {arg.wrap: root} if arg.form == "wrapped" else root
    return value
