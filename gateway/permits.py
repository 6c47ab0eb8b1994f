"""Residence permits: their eCH-0006 categories, and the permits a person held as the gateway heard.

A person's state keeps the latest permit; an eCH-0020 ``changeResidencePermit`` is
a prolongation or conversion *of the permit before it* (DOMAIN.md §5.1). An event
that arrives after a newer one (a delivery held up) needs the permit valid before
its own date: each state keeps the last few permits it was told of, each with the
date of the input that stated it (:class:`DatedPermit`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict

from gateway.ech0223 import ResidencePermitData

#: Permit categories by the first two digits of the eCH-0006 code (DOMAIN.md §5.2).
PERMIT_CATEGORIES = {"02": "B", "03": "C", "04": "Ci", "05": "F", "06": "N", "07": "L",
                     "08": "G"}
#: How many permits a state remembers, its own included: deliveries are days late, not years.
KEPT = 5


def permit_category(code: str | None) -> str | None:
    """The permit category (``B``, ``C``, ``L``, ``F``...) of an eCH-0006 code."""
    if not code:
        return None
    return PERMIT_CATEGORIES.get(code[:2], "other")


class DatedPermit(BaseModel):
    """A permit the person held on ``known_on``: the date of the input that stated it (the
    earliest, where inputs in a row stated the same permit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    known_on: date
    permit: ResidencePermitData


def with_own(history: tuple[DatedPermit, ...], known_on: date | None,
             permit: ResidencePermitData | None) -> tuple[DatedPermit, ...]:
    """``history`` and ``permit`` as known on ``known_on`` (a state's own, if both are known)."""
    if known_on is None or permit is None:
        return history
    if history and history[-1].permit == permit and history[-1].known_on <= known_on:
        return history  # held since then: nothing to add
    return combined(history, (DatedPermit.model_construct(known_on=known_on, permit=permit),))


def holds(permits: tuple[DatedPermit, ...], older: tuple[DatedPermit, ...]) -> bool:
    """Whether ``permits`` already hold ``older``: combining them (``permits`` standing) adds none."""
    return not older or combined(older, permits) == permits


def combined(*histories: Iterable[DatedPermit]) -> tuple[DatedPermit, ...]:
    """The permits of all ``histories`` in date order, the last :data:`KEPT` of them.

    Of two permits on one date the later history's stands (a newer input's word); of the
    same permit on dates in a row only the first is kept (it was held since then). Each
    history is as this makes it: one alone, or the same one twice, is taken as it is.
    """
    known = [tuple(history) for history in histories if history]
    if not known or all(history == known[0] for history in known[1:]):
        return known[0] if known else ()
    by_date: dict[date, DatedPermit] = {}
    for history in histories:
        for entry in history:
            by_date[entry.known_on] = entry
    out: list[DatedPermit] = []
    for day in sorted(by_date):
        entry = by_date[day]
        if not out or out[-1].permit != entry.permit:
            out.append(entry)
    return tuple(out[-KEPT:])


def held_before(history: Iterable[DatedPermit], day: date) -> DatedPermit | None:
    """The permit last known before ``day`` (``None``: the gateway knows of none before it)."""
    found = None
    for entry in history:
        if entry.known_on < day and (found is None or entry.known_on > found.known_on):
            found = entry
    return found
