"""Schema problems as a reason says them: the first few, an unknown eCH-0223 event in brief.

lxml words an unknown ``personEvent`` as an enumeration error that lists
every event of the schema (some forty); the reason needs the value found
and the version it is no event of.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: How many problems a reason names.
SHOWN = 3

_UNKNOWN_EVENT = re.compile(
    r"(?P<element>Element '\{http://www\.ech\.ch/xmlns/eCH-0223/1\}personEvent'): \[facet"
    r" 'enumeration'\] The value '(?P<value>.*)' is not an element of the set"
    r" \{(?P<events>[^}]*)\}\.?",
    re.DOTALL,
)


def brief(problem: str, version: str) -> str:
    """``problem`` (an lxml schema error, maybe after ``line N: ``) with an unknown
    personEvent said in brief: ``Element '{…}personEvent': 'MoveIn' is not an eCH-0223
    event of version 1.5 (did you mean 'moveIn'?)``; any other problem as it is.

    Only an event in other case is suggested: a near one is another event
    (``prolongationL`` is not ``prolongationB``).
    """

    def short(found: re.Match[str]) -> str:
        value = found["value"]
        same = [e for e in re.findall(r"'([^']*)'", found["events"])
                if e.casefold() == value.casefold()]
        return (f"{found['element']}: '{value}' is not an eCH-0223 event of version {version}"
                + (f" (did you mean '{same[0]}'?)" if same else ""))

    return _UNKNOWN_EVENT.sub(short, problem)


def problems_text(problems: Sequence[str], version: str) -> str:
    """The first :data:`SHOWN` of ``problems`` (found validating as eCH-0223 ``version``),
    each :func:`brief`, joined by ``; ``."""
    return "; ".join(brief(p, version) for p in problems[:SHOWN])
