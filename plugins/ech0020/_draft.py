"""The draft of one eCH-0223 message: finished once the person's last known state is at hand."""

from __future__ import annotations

from typing import Any

from gateway.api import InputRejected, Normalised, PersonState, ech0223, parse_untrusted

from . import _message, _state
from ._events import PERMIT_CASE, EventData, read_event
from ._header import header as read_header
from ._permit import describe, permit_change
from ._xml import local

#: Events that still go out for a person the gateway knows nothing of (without personData):
#: the change of permit or nationality is itself what the migration office needs.
_WITHOUT_STATE = frozenset({"changeResidencePermit", "correctResidencePermit", "changeNationality",
                            "correctNationality", "naturalizeForeigner", "undoSwiss"})
_XSD_NAMES = {"name_data": "nameData", "birth_data": "birthData", "nationality_data": "nationalityData",
              "marital_data": "maritalData", "residence_permit_data": "residencePermitData",
              "residence_address": "residenceAddress", "municipality": "municipality",
              "religion_data": "religionData"}


class EventDraft:
    """An eCH-0020 event on its way to an eCH-0223 ``personEventMessage``.

    Normalising reads the delivery's header and the event's data. The core
    keeps a draft in the worker process that made it and completes it there;
    a worker that does not hold it normalises the delivery again. Where a
    draft does cross processes it pickles as the delivery's bytes: pickling
    the read models costs more than reading them again.

    :param source: the eCH-0020 delivery, as received.
    :param person_event: the eCH-0223 personEvent, ``PERMIT_CASE`` (decided from the
        permits) or ``None`` (eCH-0223 1.5 has none: sent without).
    :param header: the eCH-0223 header, if already made in this process.
    :param event: the event's data, if already read in this process.
    """

    __slots__ = ("_event", "_header", "facts", "person_event", "source", "subject")

    def __init__(self, source: bytes, person_event: str | None, subject: tuple[str, ...],
                 facts: dict[str, Any], header: ech0223.Header | None = None,
                 event: EventData | None = None) -> None:
        self.source = source
        self.person_event = person_event
        self.subject = subject
        self.facts = facts
        self._header = header
        self._event = event

    def __reduce__(self) -> tuple[type[EventDraft], tuple[Any, ...]]:
        return EventDraft, (self.source, self.person_event, self.subject, self.facts)

    def read(self) -> tuple[ech0223.Header, EventData]:
        """The eCH-0223 header and the event's data, read on first use in this process.

        :raises InputRejected: the event's data is malformed (the reason names the field).
        """
        if self._header is None or self._event is None:
            root = parse_untrusted(self.source, max_bytes=len(self.source), keep_blank_text=False).getroot()
            header, element = (child for child in root if local(child))
            self._header, self._event = read_header(header), read_event(element)
        return self._header, self._event

    def complete(self, person: PersonState | None) -> Normalised:
        """The finished message, given the person's state before the event.

        :raises InputRejected: the person is unknown and the event alone cannot make
            a ``personData`` (an identification-only event; the reason names the person element).
        """
        header, ev = self.read()
        as_of = header.event_date or header.message_date.date()
        state = _state.after(ev, person, as_of)
        warnings = list(ev.notes)
        person_event, comment = self.person_event, None
        if person_event == PERMIT_CASE:
            person_event, comment, late = permit_change(person, ev.parts["residence_permit_data"], as_of)
            warnings += [late] if late else []
        elif ev.event == "correctResidencePermit":
            comment = _corrected_permit(ev)
        elif person_event is None:
            warnings.append(f"eCH-0223 1.5 has no {ev.event}: sent without personEvent")
        data = state.person_data(comes_from=ev.comes_from, goes_to=ev.goes_to)
        if data is None:
            if person is None and ev.event not in _WITHOUT_STATE:
                raise InputRejected(f"{ev.event} of a person the gateway has no state of: personData"
                                    " cannot be completed (needs the person's state, e.g. from a"
                                    " baseDelivery)", ev.person_path)
            unknown = ", ".join(_XSD_NAMES.get(name, name) for name in state.missing())
            warnings.append(f"sent without personData: {unknown} not known")
        warnings += _event_warnings(ev, person)
        xml, tree = _message.write(header, state.identification, person_event, data, comment)
        facts = {**self.facts, "person_event": person_event,
                 "nationality_before": _state.nationality_before(ev, person)}
        return Normalised(
            kind="personEventMessage", message_id=header.message_id, xml=xml, tree=tree,
            reference_message_id=header.reference_message_id, action=header.action,
            subject=self.subject, persons=(state,), facts=facts, warnings=tuple(warnings),
            sender_id=header.sender_id)


def _corrected_permit(ev: EventData) -> str:
    permit = ev.parts.get("residence_permit_data")
    stated = f"now {describe(permit)}" if permit is not None else "without new permit data"
    return (f"eCH-0020 correctResidencePermit: the residence permit data was corrected ({stated});"
            " eCH-0223 has no event for correcting a permit")


def _event_warnings(ev: EventData, person: PersonState | None) -> list[str]:
    if ev.event == "changeResidenceType":
        return ["eCH-0020 changeResidenceType does not say whether the residence is now the main or a"
                " secondary one; eCH-0223 does not state it either"]
    if ev.event == "naturalizeForeigner" and person is not None and person.nationality_data is not None:
        return ["eCH-0020 naturalizeForeigner does not say whether the former nationality is kept;"
                " personData states it beside the Swiss one"]
    if (ev.separation is not None or ev.separation_till is not None) and (
            person is None or person.marital_data is None):
        return [f"{ev.event}: the separation data is not in personData (marital data unknown)"]
    return []
