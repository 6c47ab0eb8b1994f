"""Which eCH-0223 event an eCH-0020 ``changeResidencePermit`` is, from the old and the new permit.

eCH-0020 carries only the new permit; the old one comes from the person's
last known state (DOMAIN.md §5.1). Categories follow eCH-0006 (§5.2).
"""

from __future__ import annotations

from gateway.api import ech0223, permit_category

OTHER_CASE = "othercaseOfMigration"
#: A permit of the same category valid for longer: its prolongation.
_PROLONGATION = {"B": "prolongationB", "C": "prolongationC", "L": "prolongationL"}


def permit_case(before: ech0223.ResidencePermitData | None,
                after: ech0223.ResidencePermitData) -> tuple[str, str | None]:
    """The eCH-0223 personEvent and, for ``othercaseOfMigration``, a businessComment saying why.

    The same permit (code and validity) again: ``duplicateOfPermit``; B, C or L valid longer: its
    prolongation; B to C: ``conversionBtoC``; anything else, and any change the
    gateway has no earlier permit for: ``othercaseOfMigration``.
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
    return OTHER_CASE, (f"eCH-0020 changeResidencePermit from {describe(before)} to {new}:"
                        " no eCH-0223 event for this change of permit")


def describe(permit: ech0223.ResidencePermitData) -> str:
    """``permit B (0202) valid till 2027-11-14``, as far as known."""
    code = permit.residence_permit
    text = f"permit {permit_category(code)} ({code})" if code else "no permit"
    till = permit.residence_permit_valid_till
    return f"{text} valid till {till.isoformat()}" if till else text
