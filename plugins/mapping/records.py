"""Reading an export: its bytes as numbered records, or InputRejected saying why not."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.api import InputRejected, value_at
from plugins.mapping.csv_header import Lines, csv_reader, find_header, unreadable
from plugins.mapping.decoding import export_text
from plugins.mapping.spec import MappingSpec
from plugins.mapping.values import json_kind

if TYPE_CHECKING:
    from _csv import Reader

#: Where the mapping's ``records`` path leads nowhere (told from a JSON null there).
_NOWHERE = object()


@dataclass(frozen=True, slots=True)
class Record:
    """One row of an export: its number (1 = the first record), where it is, its values.

    :param where: the CSV line the row starts on; empty for JSON (the row number says it).

    :param problem: what makes the row unreadable as a whole (a cell beyond the header
        that is not empty, a line the CSV reader cannot read, a JSON record that is not
        an object or gives a key twice).

    :param encoding: the mapping's encoding its values were read in; None when a UTF-8
        byte order mark said the file's (see :func:`plugins.mapping.decoding.export_text`).
    """

    row: int
    where: str
    values: dict[str, Any]
    problem: str | None = None
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class Export:
    """The records of an export, and notes on what was skipped to reach them."""

    records: list[Record]
    notes: tuple[str, ...] = ()


def read_records(data: bytes, spec: MappingSpec) -> Export:
    """The records of an export, checked against what the mapping reads; none for a
    header alone or an empty list. A CSV header below a title is found, the lines
    before it noted (see :func:`plugins.mapping.csv_header.find_header`).

    The bytes are read as :func:`plugins.mapping.decoding.export_text` says.

    A JSON record that gives a key more than once is a record with a problem (naming
    the key and the fields it feeds), not one whose last value silently wins.

    :raises InputRejected: a spreadsheet workbook (xlsx, xls); not text in the mapping's
        encoding (see ``export_text``); not CSV (a quoted cell the reader fails in over
        several lines) or not JSON; no list (or null) at the ``records`` path, a JSON key
        given more than once outside the records, no header with the mapped columns (or
        two), more rows than ``max_rows``.
    """
    text, encoding = export_text(data, spec.format, spec.encoding)
    return _csv(text, spec, encoding) if spec.format == "csv" else _json(text, spec, encoding)


def _csv(text: str, spec: MappingSpec, encoding: str | None) -> Export:
    header = find_header(text, spec)
    names, where = header.names, f"line {header.line}"
    twice = sorted({n for cs in spec.columns().values() for n in cs if names.count(n) > 1})
    if twice:
        raise InputRejected(f"the header names the mapped column(s) {', '.join(twice)}"
                            " more than once", where)
    lines = Lines(text)
    reader = csv_reader(lines, spec)
    for _record in range(header.records):  # read without fault by find_header
        next(reader)
    records: list[Record] = []
    for line, values, problem in _rows(reader, lines, names):
        if len(records) >= spec.max_rows:
            raise InputRejected(f"more than {spec.max_rows} rows (max_rows of the mapping)")
        records.append(Record(len(records) + 1, f"line {line}", values, problem, encoding))
    return Export(records, () if header.skipped is None else (header.skipped,))


#: The key under which a row the CSV reader cannot read keeps its line, as evidence.
_LINE = "(line)"


def _rows(reader: Reader, lines: Lines, names: list[str]
          ) -> Iterator[tuple[int, dict[str, str], str | None]]:
    """Each row that is not blank: the line it starts on, its cells by column, and what makes
    it unreadable as a whole (a cell beyond the header that is not empty, a quote the reader
    cannot read: then its line is kept as the row's values). Cells beyond the header that
    are empty (as Excel pads rows) are dropped; cells missing at the end of a row are
    empty (:func:`_cells`).

    :raises InputRejected: the reader fails in a quoted cell that spans lines: where the
        rows after it start is unknown.
    """
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num != line:
                raise InputRejected(unreadable(exc), f"line {reader.line_num}") from None
            yield line, {_LINE: lines.last.rstrip("\r\n")}, unreadable(exc)
            continue
        if any(cell.strip() for cell in cells):  # else a blank line, as most exports end with
            yield line, *_cells(names, cells)


def _cells(names: list[str], cells: list[str]) -> tuple[dict[str, str], str | None]:
    """A row's cells by column, a cell missing at its end empty (many tools leave out
    trailing empty cells), and why the row is unreadable if a cell beyond the header is
    not empty (as Excel pads rows, empty ones are dropped)."""
    values = dict(zip(names, cells, strict=False))
    values.update((name, "") for name in names[len(cells):])
    beyond = [n for n, cell in enumerate(cells[len(names):], len(names) + 1) if cell.strip()]
    if not beyond:
        return values, None
    which = (f"cell {beyond[0]}, beyond the header, is" if len(beyond) == 1 else
             f"cells {', '.join(map(str, beyond[:-1]))} and {beyond[-1]}, beyond the header, are")
    return values, (f"{len(cells)} cells where the header has {len(names)}: {which} not empty"
                    " (a delimiter in a cell without quotes?)")


def _null_on_the_way(document: Any, path: str) -> str | None:
    """The first part of the dotted ``path`` that is null in ``document``, if one is."""
    parts = path.split(".")
    for n in range(1, len(parts)):
        prefix = ".".join(parts[:n])
        if value_at(document, prefix, missing=_NOWHERE) is None:
            return prefix
    return None


#: Why a key given more than once is refused rather than one of its values taken.
_TWICE = "which value is meant is unknown"


class _Twice(dict[str, Any]):
    """A JSON object that gives keys more than once: the last value kept (as ``json`` does),
    the keys in :attr:`twice`. Objects without such keys stay plain dicts."""

    __slots__ = ("twice",)
    twice: tuple[str, ...]


def _json(text: str, spec: MappingSpec, encoding: str | None) -> Export:
    objects_twice: list[_Twice] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        counted: dict[str, int] = {}
        for key, _value in items:
            counted[key] = counted.get(key, 0) + 1
        twice = _Twice(obj)
        twice.twice = tuple(key for key, n in counted.items() if n > 1)
        objects_twice.append(twice)
        return twice

    try:
        document = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        if _json_lines(exc):
            raise InputRejected(
                "not one JSON document but JSON Lines, a record on each line (as .jsonl and"
                " .ndjson files are written): the gateway reads a list of records, [{...},"
                " {...}], or an object that holds one (records in the mapping); have the"
                " export written so") from None
        raise InputRejected(f"not JSON: {exc.msg}", f"line {exc.lineno} column {exc.colno}"
                            ) from None
    except RecursionError:
        raise InputRejected("not JSON the gateway reads: nested too deeply (a fixed limit of"
                            " the JSON reader, not a setting)") from None
    except ValueError:  # a number of more than 4300 digits
        raise InputRejected("not JSON the gateway reads: a number of more than"
                            f" {sys.get_int_max_str_digits()} digits (a fixed limit of the JSON"
                            " reader, not a setting)") from None
    items = document
    if spec.records:
        items = value_at(document, spec.records, missing=_NOWHERE)
        if items is _NOWHERE:
            null = _null_on_the_way(document, spec.records)
            why = f": {null!r} is null" if null else ""
            raise InputRejected(f"the document has no {spec.records!r} (records of the"
                                f" mapping){why}{_list_hint(document)}")
        if items is None:  # null is no empty list: the export may have failed to list them
            raise InputRejected(f"{spec.records!r} (records of the mapping) is null, not a list"
                                " of records; an export without rows gives an empty list")
    if not isinstance(items, list):
        where = repr(spec.records) if spec.records else "the document"
        raise InputRejected(f"{where} is not a list of records{_list_hint(document)}")
    if objects_twice:  # the envelope: all but the records
        envelope = _given_twice(document, items)
        if envelope:
            raise InputRejected(f"{_keys(envelope)} given more than once in the document:"
                                f" {_TWICE}")
    if len(items) > spec.max_rows:
        raise InputRejected(f"{len(items)} rows, more than {spec.max_rows} (max_rows of the mapping)")
    return Export([Record(n, "", item, _twice_in_record(item, spec) if objects_twice else None,
                          encoding)
                   if isinstance(item, dict) else
                   Record(n, "", {}, f"{json_kind(item)}, not an object", encoding)
                   for n, item in enumerate(items, 1)])


def _json_lines(exc: json.JSONDecodeError) -> bool:
    """Whether the JSON the parser stopped in is JSON Lines: an object on its first line,
    another on a line after it."""
    head = exc.doc[:exc.pos].lstrip()
    first = head.rstrip()
    return (exc.msg == "Extra data" and first.startswith("{") and "\n" not in first
            and "\n" in head and exc.doc.startswith("{", exc.pos))


#: How deep in objects a list is looked for, to name it for the mapping's ``records``.
_LIST_DEPTH = 4


def _list_hint(document: Any) -> str:
    """Where the document has a list of objects (the shallowest; an empty one too), as a
    value for ``records`` to try."""
    level: list[tuple[Any, str]] = [(document, "")]
    for _depth in range(_LIST_DEPTH):
        for value, path in level:
            if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                where = f"it has a list at {path!r}" if path else "the document is a list"
                return (f"; {where} (set records = {json.dumps(path)} in the mapping if it is"
                        " the list of records)")
        level = [(v, f"{path}.{k}" if path else k) for value, path in level
                 if isinstance(value, dict) for k, v in value.items()]
    return ""


def _given_twice(value: Any, skip: object = None) -> list[str]:
    """The dotted paths of the keys given more than once in ``value`` (not within ``skip``),
    in document order; iterative, so a document as deep as the parser allows is walked."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if item is skip:
            continue
        if isinstance(item, dict):
            if isinstance(item, _Twice):
                found += [path + key for key in item.twice]
            stack += reversed([(v, f"{path}{k}.") for k, v in item.items()])
        elif isinstance(item, list):
            stack += reversed([(v, f"{path}{n}.") for n, v in enumerate(item)])
    return found


def _twice_in_record(record: dict[str, Any], spec: MappingSpec) -> str | None:
    """Why a record that gives a key more than once is refused, naming the fields it feeds."""
    paths = _given_twice(record)
    if not paths:
        return None
    columns = spec.columns()
    named = []
    for path in paths:
        fields = [target for target, sources in columns.items() if any(
            column == path or column.startswith(f"{path}.") or path.startswith(f"{column}.")
            for column in sources)]
        named.append(f"{path!r} ({'fields' if len(fields) > 1 else 'field'} {', '.join(fields)})"
                     if fields else repr(path))
    return f"{_keys(named, quoted=True)} given more than once in the record: {_TWICE}"


def _keys(paths: list[str], *, quoted: bool = False) -> str:
    names = paths if quoted else [repr(p) for p in paths]
    return f"{'keys' if len(names) > 1 else 'key'} {', '.join(names)}"
