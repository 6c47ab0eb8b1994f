"""What a registry's own eCH-0223 message says of its person: the person state after the event.

A registry that writes eCH-0223 itself (instead of eCH-0020) states the
person's identification and, in ``personData``, their data after the event.
Kept as the person's state, it lets the canton's answers find the resident
(the way back matches by VN, local id, names and date of birth) and gives
the rules the nationality and permit *before* the next event.
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
#: The parts of ``personData`` a person state keeps (``comesFrom``/``goesTo`` belong to the event).
_PARTS = tuple(name for name in ech0223.PersonData.model_fields if name in PersonState.model_fields)


def stated(root: Any) -> tuple[PersonState, ...]:
    """The state of the person of the ``personEventMessage`` ``root``; none when it cannot be read.

    A message whose parts do not read is not refused here: validation names
    its faults with their lines.
    """
    content = root.find(_CONTENT)
    ident_el = content.find(_IDENTIFICATION) if content is not None else None
    if ident_el is None:
        return ()
    try:
        ident = read_part(ident_el, ech0223.PersonIdentificationLight)
        data_el = content.find(_DATA)
        data = read_part(data_el, ech0223.PersonData) if data_el is not None else None
    except InputRejected:
        return ()
    parts = {name: getattr(data, name) for name in _PARTS} if data is not None else {}
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
