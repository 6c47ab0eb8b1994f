"""Suggesting the name an operator probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Collection


def did_you_mean(name: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is one of ``known`` in other case, or looks like a
    typo of one; else ``""``."""
    ordered = sorted(known)
    close = ([k for k in ordered if k.casefold() == name.casefold()]
             or difflib.get_close_matches(name, ordered, n=1, cutoff=0.6))
    return f" (did you mean {close[0]!r}?)" if close else ""
