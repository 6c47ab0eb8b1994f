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


def exactly_one(model: EchModel, owner: str, *fields: str) -> None:
    """Check an ``xs:choice``: exactly one of the ``fields`` of ``model`` is given (not None)."""
    values = vars(model)  # one attribute lookup (pydantic's __getattr__ makes each costly)
    count = 0
    for field in fields:  # counted in a loop: validators run for every model made
        count += values[field] is not None
    if count != 1:
        given = _given(values, fields)
        raise ValueError(f"{owner} needs exactly one of {', '.join(fields)}; got {given or 'none'}")


def at_most_one(model: EchModel, owner: str, *fields: str) -> None:
    """Check an optional ``xs:choice``: at most one of the ``fields`` of ``model`` is given."""
    values = vars(model)
    count = 0
    for field in fields:
        count += values[field] is not None
    if count > 1:
        raise ValueError(f"{owner} allows only one of {', '.join(_given(values, fields))}")


def requires(model: EchModel, owner: str, needed: str, *dependants: str) -> None:
    """Check an optional ``xs:sequence`` group of ``model``: its optional members need its head."""
    values = vars(model)
    if values[needed] is None:
        present = _given(values, dependants)
        if present:
            raise ValueError(f"{owner}: {', '.join(present)} given without {needed}")


def _given(values: Mapping[str, Any], fields: tuple[str, ...]) -> list[str]:
    """Those of ``fields`` whose value is not None."""
    return [field for field in fields if values[field] is not None]
