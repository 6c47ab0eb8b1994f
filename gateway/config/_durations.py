"""Durations in configuration: text like ``"30s"``; code passes seconds as a number.

A bare number in a configuration file or variable is refused by the loader
(:mod:`gateway.config._units`): ``keep = 90`` may have meant days.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, Field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_HINT = 'use a number with a unit: "500ms", "30s", "5m", "2h", "7d"'


@dataclass(frozen=True, slots=True)
class TypeLabel:
    """Marks an annotated type with the name the reference page shows for it."""

    name: str


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds: a number of seconds or text like ``"500ms"``.

    >>> parse_duration("5m")
    300.0
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not a duration: {value!r}; {_HINT}")
    if isinstance(value, str):
        match = _TEXT.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"not a duration: {value!r}; {_HINT}")
        return float(match[1]) * _UNITS[match[2] or "s"]
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a duration must be a finite number of seconds >= 0: {value!r}")
    return float(value)


def format_duration(seconds: float) -> str:
    """The shortest exact text form of ``seconds`` (``3600`` → ``"1h"``)."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


#: A duration field: accepts seconds or text, holds seconds as ``float``.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0), TypeLabel("duration")]
