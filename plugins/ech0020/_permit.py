"""Which eCH-0223 event an eCH-0020 ``changeResidencePermit`` is, from the old and the new permit.

eCH-0020 carries only the new permit; the old one comes from the person's
last known state (DOMAIN.md §5.1). Categories follow eCH-0006 (§5.2). An event
dated before that state (a delivery held up) changed the permit held before its
own date, which the state remembers among its last few permits.
"""

from __future__ import annotations

from datetime import date

from gateway.api import PersonState, ech0223, permit_category

OTHER_CASE = "othercaseOfMigration"
#: A permit of the same category valid for longer: its prolongation.
_PROLONGATION = {"B": "prolongationB", "C": "prolongationC", "L": "prolongationL"}


def permit_change(person: PersonState | None, after: ech0223.ResidencePermitData,
                  day: date) -> tuple[str, str | None, str | None]:
    """:func:`permit_case` of the permit ``person`` held before ``day`` (the event's date), and a
    warning where the event arrived after a newer permit (``None`` otherwise).

    An event dated before the state is compared with the permit known before its date, not
    with the newer one; where the gateway knows none that early, the change cannot be told.
    """
    current = person.residence_permit_data if person is not None else None
    if person is None or person.as_of is None or day >= person.as_of:
        return (*permit_case(current, after), None)
    earlier = person.permit_before(day)
    if earlier is not None and earlier.permit == current:
        return (*permit_case(current, after), None)  # no newer permit: nothing arrived out of turn
    late = (f"changeResidencePermit of {day.isoformat()} arrived after a newer permit"
            f" ({describe(current) if current else 'no permit'} as of {person.as_of.isoformat()})")
    if earlier is None:
        return OTHER_CASE, (f"eCH-0020 changeResidencePermit of {day.isoformat()} to {describe(after)}:"
                            f" the gateway knows no permit of this person before {day.isoformat()},"
                            " so the kind of change cannot be decided"), (
            f"{late}: the gateway knows no permit before it, so it goes as {OTHER_CASE}")
    event, comment = permit_case(earlier.permit, after)
    return event, comment, (f"{late}: compared with the permit held before it ({describe(earlier.permit)},"
                            f" known on {earlier.known_on.isoformat()})")


def permit_case(before: ech0223.ResidencePermitData | None,
                after: ech0223.ResidencePermitData) -> tuple[str, str | None]:
    """The eCH-0223 personEvent and, for ``othercaseOfMigration``, a businessComment saying why.

    The same permit (code and validity) again: ``duplicateOfPermit``; B, C or L valid longer: its
    prolongation; B to C: ``conversionBtoC``; anything else, and any change the
    gateway has no earlier permit for: ``othercaseOfMigration``. A permit without end of
    validity (a C, whose card had no control date) is valid for good: an end date set on it is
    not "valid longer", whatever the date, and goes as ``othercaseOfMigration`` saying so.
    """
    new = describe(after)
    if before is None or before.residence_permit is None:
        return OTHER_CASE, (f"eCH-0020 changeResidencePermit to {new}: the gateway knows no earlier"
                            " permit of this person, so the kind of change cannot be decided")
    old_category = permit_category(before.residence_permit)
    new_category = permit_category(after.residence_permit)
    same_validity = (before.residence_permit_valid_from == after.residence_permit_valid_from
                     and before.residence_permit_valid_till == after.residence_permit_valid_till)
    if before.residence_permit == after.residence_permit and same_validity:
        return "duplicateOfPermit", None
    old_till, new_till = before.residence_permit_valid_till, after.residence_permit_valid_till
    if (old_category == new_category and old_category in _PROLONGATION
            and old_till is not None and new_till is not None and new_till > old_till):
        return _PROLONGATION[old_category], None
    if old_category == "B" and new_category == "C":
        return "conversionBtoC", None
    why = "no eCH-0223 event for this change of permit"
    if old_category == new_category and old_category in _PROLONGATION:
        why = ("no prolongation that can be told: the earlier permit had no end of validity"
               if old_till is None else "no prolongation: the new permit has no end of validity"
               if new_till is None else "no prolongation: not valid longer than the earlier permit")
    return OTHER_CASE, f"eCH-0020 changeResidencePermit from {describe(before)} to {new}: {why}"


def describe(permit: ech0223.ResidencePermitData) -> str:
    """``permit B (0202) valid till 2027-11-14``, as far as known."""
    code = permit.residence_permit
    text = f"permit {permit_category(code)} ({code})" if code else "no permit"
    till = permit.residence_permit_valid_till
    return f"{text} valid till {till.isoformat()}" if till else text
