"""Argument types the commands share."""

from __future__ import annotations

import argparse


def limit(text: str) -> int:
    """``--limit N``: a whole number of at least 1 (SQLite takes a negative one as no limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
