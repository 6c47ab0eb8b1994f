"""What a registry's own eCH-0223 message says of its person: the person state after the event.

A registry that writes eCH-0223 itself (instead of eCH-0020) states the
person's identification and, in ``personData``, their data after the event.
Kept as the person's state (identification, nationality, permit and
municipality), it lets the canton's answers find the resident (the way back
matches by VN, local id, names and date of birth) and gives the rules the
nationality and permit *before* the next event.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.api import InputRejected, PersonState, ech0223, read_part

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
_E39 = "{http://www.ech.ch/xmlns/eCH-0039/3}"
_CONTENT = f"{{{NS}}}content"
_IDENTIFICATION = f"{{{NS}}}personIdentification"
_DATA = f"{{{NS}}}personData"
_HEADER = f"{{{NS}}}header"
#: The parts of ``personData`` a state keeps: what matching and the rules read (nationality,
#: permit, municipality). Reading the whole ``personData`` costs about three times as much as
#: the rest of normalising an eCH-0223 message; the next eCH-0020 event or baseDelivery fills in
#: the rest.
_PARTS: dict[str, tuple[str, type[Any]]] = {
    f"{{{NS}}}nationalityData": ("nationality_data", ech0223.NationalityData),
    f"{{{NS}}}residencePermitData": ("residence_permit_data", ech0223.ResidencePermitData),
    f"{{{NS}}}municipality": ("municipality", ech0223.SwissMunicipality)}


def stated(root: Any) -> tuple[PersonState, ...]:
    """The state of the person of the ``personEventMessage`` ``root``; none when it cannot be read.

    A message whose parts do not read is not refused here: validation names
    its faults with their lines.
    """
    content = root.find(_CONTENT)
    ident_el = content.find(_IDENTIFICATION) if content is not None else None
    if ident_el is None:
        return ()
    data_el = content.find(_DATA)
    try:
        ident = read_part(ident_el, ech0223.PersonIdentificationLight)
        parts: dict[str, Any] = {}
        for el in data_el if data_el is not None else ():
            found = _PARTS.get(el.tag)
            if found is not None:
                parts[found[0]] = read_part(el, found[1])
    except InputRejected:
        return ()
    return (PersonState(identification=ident, as_of=_event_date(root), **parts),)


def _event_date(root: Any) -> date | None:
    """The header's ``eventDate``, else the day of its ``messageDate``."""
    header = root.find(_HEADER)
    if header is None:
        return None
    for tag, length in (("eventDate", 10), ("messageDate", 10)):
        text = (header.findtext(_E39 + tag) or "").strip()[:length]
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    return None
