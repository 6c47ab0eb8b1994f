"""A person's state after an eCH-0020 event: the state before, updated by what the event says."""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.api import PersonState, ech0223

from ._events import EventData

#: Events that state the person's nationality as it was before them too (they do not change it).
_STATES_NATIONALITY = frozenset({"baseDelivery", "moveIn", "birth", "changeResidenceType", "adoption",
                                 "childRelationship"})

#: Events about a residence permit: only foreign nationals hold one (eCH-0006).
_PERMIT_EVENTS = frozenset({"changeResidencePermit", "correctResidencePermit"})


def stated(ev: EventData, as_of: date | None) -> PersonState:
    """What the event alone says of the person, as a (partial) state."""
    return PersonState(identification=ev.identification, as_of=as_of, **ev.parts)


def after(ev: EventData, before: PersonState | None, as_of: date | None) -> PersonState:
    """The person's state after ``ev``: ``before`` merged with what the event says.

    Separation dates, an added parent and a naturalisation amend the parts of
    ``before`` instead of replacing them. A correction (``correct*``) dated before
    ``before`` still corrects it: the state takes ``before``'s date, so that a later
    merge does not take the correction for older news (:meth:`PersonState.merged`).
    """
    parts: dict[str, Any] = dict(ev.parts)
    if (before is not None and ev.event.startswith("correct") and as_of is not None
            and before.as_of is not None and as_of < before.as_of):
        as_of = before.as_of  # a correction dated back corrects the state as it is now
    marital = before.marital_data if before is not None else None
    if marital is not None and (ev.separation is not None or ev.separation_till is not None):
        separation = ev.separation
        if separation is None:
            known = marital.separation_data or ech0223.SeparationData()
            separation = known.model_copy(update={"separation_valid_till": ev.separation_till})
        parts["marital_data"] = marital.model_copy(update={"separation_data": separation})
    parents = before.parental_relation if before is not None else None
    if parents is not None and "parental_relation" in parts:
        new = parts["parental_relation"]
        parts["parental_relation"] = ech0223.ParentalRelation(father=new.father or parents.father,
                                                              mother=new.mother or parents.mother)
    former = before.nationality_data if before is not None else None
    if ev.naturalized and former is not None:
        swiss = parts["nationality_data"]
        kept = [info for info in former.country_info if info.country.country_id != 8100]
        parts["nationality_data"] = swiss.model_copy(update={"country_info": [*swiss.country_info, *kept]})
    if before is None:
        return PersonState(identification=ev.identification, as_of=as_of, **parts)
    return before.updated(ev.identification, as_of, parts)


def nationality_before(ev: EventData, before: PersonState | None) -> str:
    """``foreign``, ``swiss``, ``stateless`` or ``unknown``: the person's nationality before ``ev``.

    A naturalisation implies a foreign national, ``undoSwiss`` a Swiss one, whatever
    the state says; events that describe the person (moveIn, birth...) state it. Of a
    person whose nationality is not known, a residence permit event implies a foreign
    national (the Swiss hold no permit): it goes out without personData, as it is.
    """
    if ev.event == "naturalizeForeigner":
        return "foreign"
    if ev.event == "undoSwiss":
        return "swiss"
    if before is not None and before.nationality() != "unknown":
        return before.nationality()
    if ev.event in _STATES_NATIONALITY:
        return stated(ev, None).nationality()
    if ev.event in _PERMIT_EVENTS:
        return "foreign"
    return "unknown"
