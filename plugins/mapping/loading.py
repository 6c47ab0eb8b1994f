"""Loading a mapping file: every problem as (file, key, reason), as ``check-config`` prints it."""

from __future__ import annotations

import difflib
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfoNotFoundError

from pydantic import ValidationError

from gateway.api import ConfigError
from plugins.mapping.spec import REQUIRED, SEVERAL, TARGETS, FieldSpec, MappingSpec, allowed_codes
from plugins.mapping.values import SWISS_TIME, TWO_DIGIT_YEAR, date_of, translate


def load_mapping(path: Path) -> MappingSpec:
    """Read and check the mapping file at ``path``.

    :raises ConfigError: every problem as (file, key, reason).
    """
    file = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([(file, "(file)", f"cannot read: {exc.strerror or exc}")]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([(file, "(file)", f"not valid TOML: {exc}")]) from None
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([(file, *_problem(e["loc"], e["msg"])) for e in exc.errors()]) from None
    problems = [(file, key, reason) for key, reason in _cross_check(spec)]
    if problems:
        raise ConfigError(problems)
    return spec


def _problem(loc: tuple[int | str, ...], message: str) -> tuple[str, str]:
    """A validation error as (key, reason); an unknown target is named with the closest ones."""
    if loc[:1] == ("fields",) and loc[-1:] == ("[key]",):
        target = str(loc[1])
        close = difflib.get_close_matches(target, list(TARGETS), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "see the README for the targets"
        return f"fields.{target}", f"unknown target; {hint}"
    return ".".join(str(p) for p in loc) or "(file)", message.removeprefix("Value error, ")


_DATE_HINT = ("{!r} does not read dates: write it with %d (day), %m (month) and %Y (year),"
              " e.g. %d.%m.%Y")
#: A moment whose day, month and year differ, to tell a format that reads all three (at
#: noon in UTC: the same day in Swiss time, for a format with ``%z``).
_PROBE = datetime(1987, 3, 14, 12, tzinfo=UTC)
#: A literal Z after the time (``%H:%M:%SZ``): the time is UTC, read without its offset.
_UTC_LETTER = re.compile(r"(?<=%[SfMH])Z")


def _date_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot read dates: it lacks day, month or year, or has a two-digit year."""
    if "%y" in fmt:
        return (f"{fmt!r} has a two-digit year (%y): {TWO_DIGIT_YEAR}; the export must write"
                " the year with four digits (%Y)")
    if _UTC_LETTER.search(fmt):
        return (f"{fmt!r} reads a time in UTC (Z) as if it were Swiss time: midnight in"
                " Zurich is written 23:00 (in summer 22:00) of the day before in UTC, and"
                f" that day would be sent; write %z for the Z ({_UTC_LETTER.sub('%z', fmt)!r})"
                " to take the date in Swiss time")
    try:
        if date_of(datetime.strptime(_PROBE.strftime(fmt), fmt)) == _PROBE.date():
            return None
    except ValueError:
        pass
    except ZoneInfoNotFoundError:
        return (f"{fmt!r} reads a UTC offset (%z), and the date is taken in Swiss time"
                f" ({SWISS_TIME}): this system has no time zone database (install tzdata)")
    return _DATE_HINT.format(fmt)


#: How many codes a reason lists in full; of a longer list, those of the value's family.
_LISTED = 12


def not_a_code(target: str, code: str, codes: tuple[str, ...]) -> str:
    """Why ``code`` is none of ``codes``, the valid ones of ``target``: the one meant if it
    differs in case or looks like a typo of one, and the codes (all if few, else those of
    its family, the same first two characters, as permits of one kind share: 08, 0804)."""
    family = [c for c in codes if c[:2] == code[:2]] if len(codes) > _LISTED else []
    close = ([c for c in codes if c.casefold() == code.casefold()]
             or difflib.get_close_matches(code, family, n=2, cutoff=0.6)
             or difflib.get_close_matches(code, codes, n=2, cutoff=0.6))
    meant = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    listed = (f"{target} codes starting {code[:2]!r}: {', '.join(sorted(family))}" if family
              else f"{target} codes: {', '.join(sorted(codes))}")
    return f"{code!r} is not a valid {target} code{meant}; {listed}"


def _cross_check(spec: MappingSpec) -> list[tuple[str, str]]:
    """What each key is valid alone but wrong together: missing targets, tables, codes."""
    problems = [("fields", f"required target {t!r} is not mapped")
                for t in REQUIRED if t not in spec.fields]
    if "vn" not in spec.fields and "local_id" not in spec.fields:
        problems.append(("fields", "map vn or local_id (or both): a person needs an id"))
    if ("local_id" in spec.fields) != ("local_id_category" in spec.fields):
        problems.append(("fields", "local_id and local_id_category go together"))
    if spec.format == "csv" and spec.records:
        problems.append(("records", "only a JSON export has a records path"))
    wrong = _date_format_problem(spec.date_format)
    if wrong is not None:
        problems.append(("date_format", wrong))
    for target, field in spec.fields.items():
        assert isinstance(field, FieldSpec)
        key, kind = f"fields.{target}", TARGETS[target][0]
        if isinstance(field.column, list) and not field.column:
            problems.append((key, "an empty list names no column"))
        elif isinstance(field.column, list) and target not in SEVERAL:
            problems.append((key, f"{target} is read from one column or path; only"
                             f" {', '.join(SEVERAL)} may list several"))
        if field.table is not None:
            if field.table not in spec.tables:
                known = ", ".join(sorted(spec.tables)) or "none"
                problems.append((f"{key}.table", f"no table {field.table!r}; tables: {known}"))
            elif kind == "code" and allowed_codes(target):
                codes = allowed_codes(target)
                problems += [(f"tables.{field.table}.{entry}", not_a_code(target, code, codes))
                             for entry, code in spec.tables[field.table].items()
                             if code not in codes]
        if field.format is not None and kind != "date":
            problems.append((f"{key}.format", f"{target} is not a date"))
        elif field.format is not None and (wrong := _date_format_problem(field.format)):
            problems.append((f"{key}.format", wrong))
        if kind == "country" and not spec.countries:
            problems.append(("countries", f"{target} is a country: list them in [countries]"))
        elif kind == "country" and field.table in spec.tables:
            problems += [(f"tables.{field.table}.{entry}", f"{country!r} is not in [countries]")
                         for entry, country in spec.tables[field.table].items()
                         if country not in spec.countries]
        if field.value is not None and (field.table is None or field.table in spec.tables):
            try:
                translate(spec, target, field, field.value)
            except ValueError as exc:
                problems.append((f"{key}.value", str(exc)))
    return problems
