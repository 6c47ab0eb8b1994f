"""Lexical forms of the XML Schema simple types the eCH-0223 model uses.

A :class:`Scalar` turns element or attribute text into a Python value and back. The
writer's ``format`` gives one canonical text per value; when a document used another
valid text for the same value, the reader keeps that text (see ``EchModel.lexical``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

# XML whitespace only: str.strip() would also remove e.g. NO-BREAK SPACE.
_WS = " \t\n\r"
_TZ = r"(Z|[+-]\d\d:\d\d)?"
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)" + _TZ)
_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?" + _TZ)
_INTEGER = re.compile(r"[+-]?\d+")
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}
_BLANKS = re.compile(r"[ \t\n\r]+")


@dataclass(frozen=True, slots=True)
class Scalar:
    """Codec of one simple type.

    ``parse`` is None when the text itself is the value; ``exact`` says that every valid
    text is already canonical, so the reader need not compare it with ``format``;
    ``plain`` that ``format`` never makes a character XML needs escaped.
    """

    parse: Callable[[str], Any] | None = None
    format: Callable[[Any], str] = str
    exact: bool = True
    plain: bool = False


def _tz(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text == "Z":
        return UTC
    offset = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    return timezone(-offset if text[0] == "-" else offset)


def parse_date(text: str) -> date:
    """xs:date to ``date``; a time zone is accepted and dropped (the text keeps it)."""
    if len(text) == 10 and text[4] == "-" == text[7]:  # the usual YYYY-MM-DD, quicker
        with suppress(ValueError):  # anything else is for the pattern to judge
            return date.fromisoformat(text)
    m = _DATE.fullmatch(text.strip(_WS))
    if m is not None:
        with suppress(ValueError):  # no such day
            return date(int(m[1]), int(m[2]), int(m[3]))
    raise ValueError(f"not a supported xs:date: {text!r}")


def parse_datetime(text: str) -> datetime:
    """xs:dateTime to ``datetime``: fractions beyond microseconds are cut, 24:00 rolls over."""
    m = _DATETIME.fullmatch(text.strip(_WS))
    if m is None:
        raise ValueError(f"not a supported xs:dateTime: {text!r}")
    hour, fraction = int(m[4]), m[7] or ""
    midnight = hour == 24 and m[5] == m[6] == "00" and not fraction.strip("0")
    try:
        value = datetime(
            int(m[1]), int(m[2]), int(m[3]), 0 if midnight else hour, int(m[5]), int(m[6]),
            int(fraction[:6].ljust(6, "0")), _tz(m[8]),
        )  # fmt: skip
    except ValueError:  # no such day or time, or an offset beyond a day
        raise ValueError(f"not a valid xs:dateTime: {text!r}") from None
    return value + timedelta(days=1) if midnight else value


def format_datetime(value: datetime) -> str:
    """``datetime`` to xs:dateTime, UTC written as ``Z``."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_boolean(text: str) -> bool:
    """xs:boolean (``true``, ``false``, ``1``, ``0``) to ``bool``."""
    try:
        return _BOOLEAN[text.strip(_WS)]
    except KeyError:
        raise ValueError(f"not an xs:boolean: {text!r}") from None


def parse_integer(text: str) -> int:
    """xs:integer and its restrictions to ``int`` (sign and leading zeros allowed)."""
    if text.isascii() and text.isdigit():  # plain digits, quicker
        return int(text)
    stripped = text.strip(_WS)
    if _INTEGER.fullmatch(stripped) is None:
        raise ValueError(f"not an xs:integer: {text!r}")
    return int(stripped)


def collapse(text: str) -> str:
    """The value of ``text`` as an ``xs:token`` (whiteSpace="collapse"): tabs and line breaks
    become spaces, runs of them one, and none is left at either end.

    XML whitespace only: a no-break space is part of the value.
    """
    if text.isprintable() and "  " not in text and text.strip(" ") == text:
        return text  # nothing to collapse: most texts, found at the cost of three C calls
    return _BLANKS.sub(" ", text).strip(" ")


def string_enum(name: str, values: Iterable[str]) -> Scalar:
    """Enumeration restricting xs:string: the text must be one of ``values`` as is."""
    allowed = frozenset(values)

    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not a {name} value")
        return text

    return Scalar(parse)


def token_enum(name: str, values: Iterable[str]) -> Scalar:
    """Enumeration restricting xs:token: blanks around the value are allowed."""
    allowed = frozenset(values)

    def parse(text: str) -> str:
        value = text.strip(_WS)
        if value not in allowed:
            raise ValueError(f"{text!r} is not a {name} value")
        return value

    return Scalar(parse, exact=False)


TEXT = Scalar()
#: Free text whose XSD type derives from xs:token (names, towns, streets, ids): its value is
#: the collapsed text, and that is what is written (no memory of the blanks it was read with).
TOKEN = Scalar(collapse)
DATE = Scalar(parse_date, date.isoformat, exact=False, plain=True)
DATETIME = Scalar(parse_datetime, format_datetime, exact=False, plain=True)
BOOLEAN = Scalar(parse_boolean, lambda value: "true" if value else "false", False, plain=True)
INTEGER = Scalar(parse_integer, exact=False, plain=True)
#: eCH-0021 ``uidOrganisationIdType``: nine digits, written zero-padded.
UID_NUMBER = Scalar(parse_integer, "{:09d}".format, exact=False, plain=True)
