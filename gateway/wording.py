"""Counts and sizes in words, for log lines and the CLI: ``1 person``, ``2 persons``, ``38.0 MiB``."""

from __future__ import annotations


def noun(n: int, one: str, many: str | None = None) -> str:
    """``one`` if ``n`` is 1, else ``many`` (default: ``one`` + ``s``)."""
    return one if n == 1 else many or f"{one}s"


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and its :func:`noun`: ``1 delivery``, ``3 deliveries``."""
    return f"{n} {noun(n, one, many)}"


def size_text(n: int) -> str:
    """``n`` bytes in GiB from 1 GiB on, else in MiB: ``78.2 GiB``, ``38.0 MiB``."""
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"
