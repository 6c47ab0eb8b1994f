"""Bare numbers written for durations and sizes: refused unless their meaning is plain.

``keep = 90`` reads as 90 seconds, however surely days were meant: a duration
needs its unit (``"90d"``), 0 aside, which means the same in every unit. A
size without unit is bytes, but one below :data:`MIN_BARE_BYTES` is surely a
forgotten unit (``max_document_bytes = 10``): it is refused too, and
``"10B"`` says bytes are meant.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ByteSize
from pydantic.fields import FieldInfo

from gateway.config._durations import TypeLabel

#: The smallest size a bare number may give; smaller ones need a unit.
MIN_BARE_BYTES = 1024
_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def bare_number_problem(value: Any, field: FieldInfo) -> str | None:
    """Why ``value``, written for ``field``, needs a unit; ``None`` if it does not."""
    kind = _unit_kind(field)
    number = _bare(value)
    if kind not in ("duration", "size") or number is None or number <= 0:  # (below 0: validation says why)
        return None
    shown = str(int(number)) if number.is_integer() else str(number)
    if kind == "size":
        if number >= MIN_BARE_BYTES:
            return None
        return (f"{shown} has no unit and would be {shown} bytes: did you mean"
                f' "{shown}KiB" or "{shown}MiB"? (a size below {MIN_BARE_BYTES} bytes takes a'
                f' unit: "{shown}B" if bytes are meant)')
    first, second = _units_near(number, field.default)
    return (f'{shown} has no unit and would be {shown} seconds: did you mean "{shown}{first}"'
            f' or "{shown}{second}"? (durations take a unit: "500ms", "30s", "5m", "2h", "7d";'
            " 0 needs none)")


def _unit_kind(field: FieldInfo) -> str | None:
    """``"duration"``, ``"size"``, or another label or ``None`` for other fields."""
    return _label(field.metadata) or _kind_of(field.annotation)


def _label(metadata: Iterable[Any]) -> str | None:
    return next((m.name for m in metadata if isinstance(m, TypeLabel)), None)


def _kind_of(annotation: Any) -> str | None:
    if annotation is ByteSize:
        return "size"
    if get_origin(annotation) is Annotated:
        return _label(annotation.__metadata__) or _kind_of(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return next((k for k in map(_kind_of, get_args(annotation)) if k is not None), None)
    return None


def _bare(value: Any) -> float | None:
    """``value`` as a number if it is one without unit (``90``, ``"90"``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return None


def _units_near(number: float, default: Any) -> tuple[str, str]:
    """The unit that makes ``number`` closest to the field's default (``90`` for a default
    of 90 days: d), then seconds (what it reads as now; else the next closest). Without a
    default: days, then seconds."""
    if not isinstance(default, (int, float)) or isinstance(default, bool) or default <= 0:
        return "d", "s"
    ranked = sorted(_SECONDS, key=lambda unit: abs(math.log(number * _SECONDS[unit] / default)))
    return ranked[0], "s" if ranked[0] != "s" else ranked[1]
