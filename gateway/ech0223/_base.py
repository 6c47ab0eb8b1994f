"""Base class of the eCH-0223 models and helpers for their choice rules."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict


class EchModel(BaseModel):
    """A complex type of the eCH-0223 message.

    Fields hold Python values (``date``, ``datetime``, ``bool``, ``int``, ``str``). An
    instance read from XML also remembers, per field, the exact text of any value whose
    lexical form differs from the writer's canonical one (``0`` for false, ``+01:00``,
    nanoseconds, leading zeros, blanks around a token); the writer reuses that text for
    as long as the field still holds an equal value. The memory sits in a slot, outside
    the fields: equality, ``model_dump`` and ``model_copy`` see values only.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    # A slot instead of a pydantic PrivateAttr: the latter doubles construction time.
    __slots__ = ("_lexical",)

    def lexical(self, field: str) -> str | None:
        """Text ``field`` had in the document this was read from, if still valid for it."""
        entry = remembered(self).get(field)
        if entry is None:
            return None
        value = getattr(self, field)
        if type(value) is type(entry[0]) and value == entry[0]:
            return entry[1]
        return None


# The slot's descriptor: reading it directly skips pydantic's slow ``__getattr__``.
_LEXICAL = EchModel.__dict__["_lexical"]


_NOTHING: Mapping[str, tuple[Any, str]] = MappingProxyType({})


def remembered(model: EchModel) -> Mapping[str, tuple[Any, str]]:
    """The texts ``model`` remembers (field → value and text), empty for most models."""
    try:
        return _LEXICAL.__get__(model)
    except AttributeError:  # not read from XML: the slot was never set
        return _NOTHING


def remember_lexical(model: EchModel, texts: dict[str, str]) -> None:
    """Record the original texts of ``model``'s fields (the reader's side of ``lexical``).

    Called for every model read, with no texts too: reading the slot of a model that
    has it set costs far less than the exception for one that has not.
    """
    entries = {field: (getattr(model, field), text) for field, text in texts.items()} if texts else _NOTHING
    _LEXICAL.__set__(model, entries)


def exactly_one(owner: str, **alternatives: object) -> None:
    """Check an ``xs:choice``: exactly one of the alternatives is given (not None)."""
    given = [name for name, value in alternatives.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(alternatives)
        raise ValueError(f"{owner} needs exactly one of {names}; got {given or 'none'}")


def at_most_one(owner: str, **alternatives: object) -> None:
    """Check an optional ``xs:choice``: at most one of the alternatives is given."""
    given = [name for name, value in alternatives.items() if value is not None]
    if len(given) > 1:
        raise ValueError(f"{owner} allows only one of {', '.join(given)}")


def requires(owner: str, needed: str, value: object, **dependants: object) -> None:
    """Check an optional ``xs:sequence`` group: its optional members need its head."""
    if value is None:
        present = [name for name, member in dependants.items() if member is not None]
        if present:
            raise ValueError(f"{owner}: {', '.join(present)} given without {needed}")
