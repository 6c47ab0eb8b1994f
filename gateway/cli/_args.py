"""Argument types the commands share."""

from __future__ import annotations

import argparse

from gateway.person_state import parse_key
from gateway.vn import vn_check_digit_ok


def limit(text: str) -> int:
    """``--limit N``: a whole number of at least 1 (SQLite takes a negative one as no limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def person(text: str) -> str:
    """A person on the command line (``--person``, ``persons show``'s argument): a VN or a
    local id; a VN with a wrong check digit is refused, a usage error (exit 2) whatever the
    command (mistyped, most likely: nobody, and no registry, knows a person by it)."""
    [key] = parse_key(text)
    if key.startswith("vn:") and not vn_check_digit_ok(key.removeprefix("vn:")):
        raise argparse.ArgumentTypeError(f"{text} has a wrong check digit, so it is no VN"
                                         " (mistyped?)")
    return text
