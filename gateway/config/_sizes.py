"""Sizes in configuration: bytes as a number, or text like ``"32MiB"``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

from gateway.config._durations import TypeLabel

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
_TEXT = re.compile(r"(\d+)\s*([a-z]*)")
_HINT = 'use bytes or a number with a unit: "512KiB", "32MiB", "1GB"'


def parse_size(value: str | int) -> int:
    """Return ``value`` in bytes: a number of bytes or text like ``"32MiB"``.

    >>> parse_size("2KiB")
    2048
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"not a size: {value!r}; {_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must be >= 0 bytes: {value!r}")
        return value
    match = _TEXT.fullmatch(value.strip().lower())
    if match is None or match[2] not in _UNITS:
        raise ValueError(f"not a size: {value!r}; {_HINT}")
    return int(match[1]) * _UNITS[match[2]]


#: A size field: accepts bytes or text, holds bytes as ``int``.
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0), TypeLabel("size")]
