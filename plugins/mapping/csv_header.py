"""The header of a CSV export: the line that names the mapped columns, and what comes before.

Exports from Excel often start with a title ("Export Einwohnerkontrolle
01.12.2026") and a blank line above the header. The header is the first line
that is not blank, or else the one line among the first :data:`SEARCHED_LINES`
that names every mapped column; the lines before it are skipped and said so.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.api import InputRejected
from plugins.mapping.spec import MappingSpec

if TYPE_CHECKING:
    from _csv import Reader

#: A first line that names the delimiter of the lines after it, as Excel reads it.
_SEP = re.compile(r"sep=(.)", re.IGNORECASE)
#: How far down the header is looked for when the first line is not it.
SEARCHED_LINES = 20
#: How much of a skipped line a note quotes.
_QUOTED = 60


class Lines:
    """The lines of a CSV text as a reader takes them; :attr:`last`: the one taken last."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text, newline="")
        self.last = ""

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last


def csv_reader(lines: Lines, spec: MappingSpec) -> Reader:
    """A strict CSV reader of ``lines`` with the mapping's delimiter."""
    return csv.reader(lines, delimiter=spec.delimiter, strict=True)


@dataclass(frozen=True, slots=True)
class Header:
    """The header's column names, its line, how many records the reader yields up to and
    including it, and what was skipped before it (a note kept with the message), if
    more than blank lines and ``sep=``."""

    names: list[str]
    line: int
    records: int
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class _Candidate:
    names: list[str]
    line: int
    records: int
    text: str


def find_header(text: str, spec: MappingSpec) -> Header:
    """Where the header of the CSV ``text`` is: blank lines and a first line ``sep=;``
    (Excel's way of naming the delimiter, if it names the mapping's) skipped; the first
    other line, or if it lacks mapped columns the one line of the first
    :data:`SEARCHED_LINES` that has them all, lines before it skipped.

    :raises InputRejected: no header; a ``sep=`` line naming another delimiter; no line
        (or more than one) with every mapped column, naming the columns the likeliest
        line lacks.
    """
    lines = Lines(text)
    reader = csv_reader(lines, spec)
    wanted = {column for columns in spec.columns().values() for column in columns}
    seen: list[_Candidate] = []
    try:
        for records, cells in enumerate(reader, 1):
            declared = _SEP.fullmatch(lines.last.rstrip("\r\n")) if reader.line_num == 1 else None
            if declared is not None and declared[1] != spec.delimiter:
                raise InputRejected(
                    f"the file says its delimiter is {declared[1]!r} ({declared[0]}), the"
                    f" mapping says {spec.delimiter!r} (set delimiter = {json.dumps(declared[1])}"
                    " in the mapping if the export is written so)", "line 1")
            if declared is None and any(cell.strip() for cell in cells):
                names = [cell.strip() for cell in cells]
                seen.append(_Candidate(names, reader.line_num, records,
                                       " ".join(n for n in names if n)))
                if len(seen) == 1 and wanted <= set(names):
                    return Header(names, reader.line_num, records)  # the usual case
            if reader.line_num >= SEARCHED_LINES and seen:
                break
    except csv.Error as exc:
        if not seen:
            raise InputRejected(unreadable(exc), f"line {reader.line_num}") from None
        # a row further down the reader cannot read: the header is looked for above it
    if not seen:
        raise InputRejected("the export is empty")
    complete = [c for c in seen if wanted <= set(c.names)]
    if len(complete) > 1:
        raise InputRejected(f"lines {' and '.join(str(c.line) for c in complete)} both name"
                            " every mapped column: which is the header is unknown",
                            f"line {complete[0].line}")
    if not complete:
        folded = {column.casefold() for column in wanted}
        likeliest = max(seen, key=lambda c: len(folded & {n.casefold() for n in c.names}))
        raise InputRejected(_lacking(likeliest.names, wanted, spec), f"line {likeliest.line}")
    found = complete[0]
    title = seen[0].text
    quoted = repr(title if len(title) <= _QUOTED else title[:_QUOTED] + "…")
    before = "line 1" if found.line == 2 else f"lines 1 to {found.line - 1}"
    return Header(found.names, found.line, found.records,
                  f"the header is on line {found.line}; {before} before it skipped"
                  f" (line {seen[0].line}: {quoted})")


def _lacking(names: list[str], wanted: set[str], spec: MappingSpec) -> str:
    """Why ``names`` is no header: the mapped columns it lacks, and a hint at why."""
    missing = sorted(wanted - set(names))
    hint = ""
    folded = {column.casefold() for column in missing}
    other_case = [name for name in names if name.casefold() in folded]
    if other_case:
        hint = (f"; it has {', '.join(map(repr, other_case))}: column names must match the"
                " mapping exactly, case too")
    elif len(names) == 1:
        others = [d for d in (";", ",", "\t", "|") if d != spec.delimiter and d in names[0]]
        hint = (f"; the header has no {spec.delimiter!r}" +
                (f": is the delimiter {others[0]!r}?" if others else ""))
    return f"the header lacks the mapped column(s) {', '.join(missing)}{hint}"


#: The csv module's error for a cell over its fixed limit.
_FIELD_LIMIT = re.compile(r"field larger than field limit \((\d+)\)")


def unreadable(exc: csv.Error) -> str:
    """Why the CSV reader cannot read on, as the operator is told: a limit of the reader is
    named as one that is fixed (no setting raises it)."""
    over = _FIELD_LIMIT.fullmatch(str(exc))
    if over is not None:
        return (f"not readable as CSV: a cell longer than {over[1]} characters (a fixed limit"
                " of the CSV reader, not a setting)")
    return f"not readable as CSV: {exc}"
