"""Building blocks of the XML binding tables in ``_person_xml`` and ``_message_xml``.

Reader and writer both walk these tables, so element order, namespaces and occurrences
are written down once. A tag is in the namespace of the schema that declares the element
(all schemas here have ``elementFormDefault="qualified"``), not always that of its type:
``birthData/dateOfBirth`` is eCH-0011 while its children are eCH-0044.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar, get_args

from ._base import EchModel
from ._xsd import TEXT, Scalar, string_enum, token_enum
from .namespaces import NS

M = TypeVar("M", bound=EchModel)
F = TypeVar("F")

#: Occurrence of a child: exactly once, optional, any number, at least once.
Occurs = Literal["1", "?", "*", "+"]

E223: Final = f"{{{NS.ECH_0223}}}"
E39: Final = f"{{{NS.ECH_0039}}}"
E58: Final = f"{{{NS.ECH_0058}}}"
E44: Final = f"{{{NS.ECH_0044}}}"
E11: Final = f"{{{NS.ECH_0011}}}"
E21: Final = f"{{{NS.ECH_0021}}}"
E10: Final = f"{{{NS.ECH_0010}}}"
E07: Final = f"{{{NS.ECH_0007}}}"
E08: Final = f"{{{NS.ECH_0008}}}"
XSI: Final = f"{{{NS.XSI}}}"


class Item(NamedTuple):
    """A child element: Clark tag, model field, codec, occurrence.

    With ``inner`` the element is a wrapper holding one or more ``inner`` elements and
    the field is their list; ``occurs`` then applies to the wrapper. A ``nillable``
    element maps ``xsi:nil`` to None.
    """

    tag: str
    field: str
    codec: Scalar | Layout[Any] = TEXT
    occurs: Occurs = "1"
    inner: str | None = None
    nillable: bool = False


class Attr(NamedTuple):
    """An attribute: Clark name, model field, codec, whether it must be present."""

    name: str
    field: str
    codec: Scalar
    required: bool = False


#: The model field that holds the simple content of a ``Layout`` with ``text``.
TEXT_FIELD: Final = "text"


@dataclass(frozen=True)
class Layout(Generic[M]):
    """The XML form of one model class; ``text`` is the codec of its simple content.

    ``positions`` (tag to index and item) and ``required`` (how many items must occur)
    are derived for the reader.
    """

    model: type[M]
    items: tuple[Item, ...] = ()
    attrs: tuple[Attr, ...] = ()
    text: Scalar | None = None
    positions: dict[str, tuple[int, Item]] = field(init=False, repr=False)
    required: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        positions = {item.tag: (index, item) for index, item in enumerate(self.items)}
        if len(positions) != len(self.items):
            raise ValueError(f"{self.model.__name__}: a tag occurs twice")
        for item in self.items:
            repeated = item.occurs in ("*", "+") or item.inner is not None
            if repeated and isinstance(item.codec, Scalar) and item.codec.parse is not None:
                raise ValueError(f"{item.tag}: repeated simple elements must be plain text")
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "required", sum(i.occurs in ("1", "+") for i in self.items))


def strings(name: str, alias: Any) -> Scalar:
    """Codec of a ``codes`` Literal whose XSD type restricts xs:string."""
    return string_enum(name, get_args(alias))


def tokens(name: str, alias: Any) -> Scalar:
    """Codec of a ``codes`` Literal whose XSD type restricts xs:token."""
    return token_enum(name, get_args(alias))


def per_layout(compile_layout: Callable[[Layout[Any]], F]) -> Callable[[Layout[Any]], F]:
    """``compile_layout``'s result for each layout, made on first use and kept.

    Layouts are module constants, told apart by identity; a compiled function
    looks up its child layouts' functions through the same accessor.
    """
    made: dict[int, tuple[Layout[Any], F]] = {}

    def get(layout: Layout[Any]) -> F:
        known = made.get(id(layout))
        if known is None or known[0] is not layout:
            known = made[id(layout)] = (layout, compile_layout(layout))
        return known[1]

    return get
