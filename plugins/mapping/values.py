"""Reading one value for a target: its table, its type, its checks."""

from __future__ import annotations

import json
import re
from abc import ABCMeta, abstractmethod
from collections.abc import Hashable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.api import vn_check_digit_ok, vn_shaped
from plugins.mapping.spec import TARGETS, FieldSpec, MappingSpec, allowed_codes

_RELIGION = re.compile(r"^[0-9]{3,6}$")
#: A whole number, perhaps written as a float with a zero fraction (``8400.0``): exports
#: made with pandas write a column of numbers with gaps so.
_WHOLE = re.compile(r"([0-9]+)(?:\.0+)?")
#: A VN written as a number with a zero fraction (``7561234567897.0``), as pandas writes a
#: column of VNs with gaps: 13 digits, none lost.
_VN_NUMBER = re.compile(r"([0-9]{13})\.0+")
#: A number in scientific notation as Excel writes it (``7.56566E+12``, ``7,56566E+12``).
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?E\+?[0-9]+", re.IGNORECASE)
#: Characters XML 1.0 cannot carry.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Runs of what xs:token collapses to one space (a quoted CSV cell may span lines).
_SPACES = re.compile("[ \t\r\n]+")


#: The forms exports commonly write dates in, tried in turn on a date the mapping's format
#: does not read, to say which one does. ``%d.%m.%y`` last: a two-digit year is named,
#: not offered (see :data:`TWO_DIGIT_YEAR`).
COMMON_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S",
                       "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S%z",
                       "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M",
                       "%d.%m.%y")
#: The time a date-time with a UTC offset (``%z``) is read in before its date is taken.
SWISS_TIME = "Europe/Zurich"
#: Why a date format with a two-digit year is not read: the century is a guess.
TWO_DIGIT_YEAR = "01.01.30 would be read as 2030, a birth in 1930 as one in the future"


class Mismatch(ValueError, metaclass=ABCMeta):
    """A value that shows the export written otherwise than the mapping reads it (its
    dates in another form, its text in another encoding): the mismatches of one
    :attr:`kind` in a row (if :attr:`together`) or in every row of a file are said once,
    together (:meth:`said`), with the key to set."""

    #: What of the value the reason shows (the date; the sign, not the name it is in).
    raw: str

    @property
    @abstractmethod
    def kind(self) -> Hashable:
        """What the mismatch is, whatever the value."""

    @property
    def together(self) -> bool:
        """Whether a row says its mismatches of this kind together (else each on its own)."""
        return True

    @abstractmethod
    def said(self, raws: Sequence[str]) -> str:
        """What is wrong with ``raws`` (the :attr:`raw` of mismatches of this kind)."""


class DateMismatch(Mismatch):
    """A date not of the form ``expected``; ``written``: the common form it is of, if one;
    ``key``: the mapping key that sets the form (``date_format``, ``fields.X.format``).

    Mismatches of the same kind (:attr:`kind`) in a row or a file are said once; in a
    row, only those of a common form.
    """

    def __init__(self, raw: str, expected: str, written: str | None, key: str) -> None:
        self.raw, self.expected, self.written, self.key = raw, expected, written, key
        super().__init__(self.said([raw]))

    @property
    def kind(self) -> tuple[str, str | None, str]:
        """What the mismatch is, whatever the date: expected form, written form, key."""
        return self.expected, self.written, self.key

    @property
    def together(self) -> bool:
        """Dates of a common form, said with the key that reads them; others each alone."""
        return self.written is not None

    def said(self, raws: Sequence[str]) -> str:
        """What is wrong with the dates ``raws`` (this one, or several of its kind, the
        first shown), and what to set to read them."""
        one = len(raws) == 1
        shown = repr(raws[0]) if one else f"{raws[0]!r}, ..."
        if self.written is None:
            return (f"{shown} is not a date of the form {self.expected}" if one
                    else f"dates not of the form {self.expected} ({shown})")
        if "%y" in self.written:
            what = (f"{shown} has a two-digit year ({self.written})" if one
                    else f"dates with two-digit years ({self.written}: {shown})")
            return (f"{what}, not of the form {self.expected}; the gateway does not guess the"
                    f" century ({TWO_DIGIT_YEAR}): have the export write years with four"
                    " digits")
        what = (f"{shown} is written {self.written}" if one
                else f"dates written {self.written} ({shown})")
        return (f"{what}, not {self.expected} (set {self.key} = {json.dumps(self.written)} in"
                " the mapping if the export writes its dates so)")


def written_as(raw: str, expected: str) -> str | None:
    """The first of :data:`COMMON_DATE_FORMATS` other than ``expected`` that reads ``raw``."""
    for fmt in COMMON_DATE_FORMATS:
        try:
            if fmt != expected and datetime.strptime(raw, fmt):
                return fmt
        except ValueError:
            continue
    return None


def date_of(moment: datetime) -> date:
    """The date of ``moment`` in Swiss time: a date-time read with its UTC offset (``%z``)
    is converted first, for midnight in Zurich is written ``T23:00:00Z`` (in summer
    ``T22:00:00Z``) of the day before; one without an offset is taken as written.

    :raises zoneinfo.ZoneInfoNotFoundError: the system has no time zone database.
    """
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(ZoneInfo(SWISS_TIME)).date()


def json_kind(value: Any) -> str:
    """What a JSON value is, as a reason names it: ``null``, ``a string``, ``an object`` ..."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a number"


def text(value: Any, *, tabled: bool) -> str | None:
    """A cell or JSON value as text, white space collapsed as xs:token does; None when empty.

    A JSON number with an integral value is written as an integer (``8400.0`` → ``8400``):
    writers such as Excel emit whole numbers as floats. A JSON ``true`` or ``false`` is
    text (``"true"``) only for a field whose table (``tabled``) translates it: a boolean
    where a name or a date belongs is the export's fault, not the name "true".

    :raises ValueError: an object or list where a value belongs, true or false without a
        table, or a character XML cannot carry.
    """
    if isinstance(value, dict | list):
        raise ValueError(f"holds {json_kind(value)}, not a value")
    if isinstance(value, bool) and not tabled:
        raise ValueError(f"holds {json_kind(value)}: only a field with a table reads true and"
                         " false")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    written = ("true" if value else "false") if isinstance(value, bool) else _SPACES.sub(
        " ", str(value).strip())
    bad = _NOT_XML.search(written)
    if bad is not None:
        raise ValueError(f"contains the control character U+{ord(bad.group()):04X}")
    return written or None


def translate(spec: MappingSpec, target: str, field: FieldSpec, raw: str) -> Any:
    """``raw`` through the field's table (if any), then in the target's type.

    :raises ValueError: no table entry, or a value of the wrong form.
    """
    if field.table is not None:
        table = spec.tables[field.table]
        if raw not in table:
            raise ValueError(f"value {raw!r} has no entry in the {field.table} table")
        raw = table[raw]
    return convert(spec, target, field, raw)


def convert(spec: MappingSpec, target: str, field: FieldSpec, raw: str) -> Any:
    """``raw`` (translated by the field's table) in the target's type.

    :raises ValueError: saying what is wrong with the value.
    """
    kind = TARGETS[target][0]
    if kind == "date":
        fmt = field.format or spec.date_format
        try:
            return date_of(datetime.strptime(raw, fmt))
        except ValueError as exc:
            partial = partial_date(raw, fmt) if target == "date_of_birth" else None
            if partial is not None:
                return partial
            if "does not match format" in str(exc) or "unconverted data" in str(exc):
                key = "date_format" if field.format is None else f"fields.{target}.format"
                raise DateMismatch(raw, fmt, written_as(raw, fmt), key) from None
            raise ValueError(f"{raw!r} is no date: {exc}") from None
    if kind == "vn":
        number = _VN_NUMBER.fullmatch(raw)
        digits = number.group(1) if number else raw.replace(".", "").replace(" ", "")
        if _SCIENTIFIC.fullmatch(raw):
            raise ValueError("not a VN: a number in scientific notation, as Excel saves a column"
                             " of long numbers, its last digits lost (open the export in Excel"
                             " with this column as text, or not at all)")
        if not vn_shaped(digits):
            raise ValueError(f"not a VN: {_vn_shape(digits)}; a VN is 13 digits starting with"
                             " 756 (dots and spaces allowed)")
        if not vn_check_digit_ok(digits):
            raise ValueError("the VN's check digit is wrong")
        return int(digits)
    if kind == "number":
        whole = _WHOLE.fullmatch(raw)
        if whole is None:
            raise ValueError(f"{raw!r} is not a whole number")
        return int(whole.group(1))
    if kind == "country":
        country = spec.countries.get(raw)
        if country is None:
            raise ValueError(f"value {raw!r} has no entry in [countries]")
        return country
    if kind == "code":
        codes = allowed_codes(target)
        if codes and raw not in codes:
            hint = "" if field.table else " (add a table translating the export's values)"
            raise ValueError(f"{raw!r} is not a {target} code{hint}")
    if target == "religion" and not _RELIGION.match(raw):
        raise ValueError(f"{raw!r} is not a religion code (3 to 6 digits)")
    return raw


def _vn_shape(digits: str) -> str:
    """What ``digits`` (a VN's cell without dots and spaces) has instead of a VN's shape,
    without the number itself (a reason may be logged)."""
    if not digits.isascii() or not digits.isdigit():
        return "it holds signs other than digits, dots and spaces"
    if len(digits) != 13:
        return f"{len(digits)} digits"
    return f"it starts with {digits[:3]}"


def partial_date(raw: str, fmt: str) -> dict[str, str] | None:
    """A date of birth known only in part (eCH-0044): ``1980``, ``03.1980`` or ``00.03.1980``.

    The parts are told by the format's fields; a day (and month) of ``00`` is unknown.
    """
    if re.fullmatch(r"[0-9]{4}", raw):
        return {"year": raw}
    fields, parts = re.split(r"[^%\w]+", fmt), re.split(r"\W+", raw)
    if not {"%d", "%m", "%Y"} <= set(fields):
        return None
    if len(parts) == len(fields) - 1:
        fields = [f for f in fields if f != "%d"]
        parts.insert(0, "00")
        fields.insert(0, "%d")
    if len(parts) != len(fields) or parts[fields.index("%d")] not in ("0", "00"):
        return None
    year, month = parts[fields.index("%Y")], parts[fields.index("%m")]
    if not (re.fullmatch(r"[0-9]{4}", year) and re.fullmatch(r"[0-9]{1,2}", month) and int(month) <= 12):
        return None
    return {"year": year} if int(month) == 0 else {"year_month": f"{year}-{int(month):02d}"}
