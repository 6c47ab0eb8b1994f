"""The normaliser: an export file splits into its rows; each row becomes a message.

A source that takes exports names the mapping file in each input's metadata
(:data:`MAPPING_META`; the folder source does so for its ``mapping`` option).
The file itself becomes ``kind="export"`` with one part per good row and one
rejected part per bad row; each part comes back here (:data:`ROW_META`) and
becomes a complete ``personEventMessage``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.api import (
    ConfigError,
    InputRejected,
    NormaliseContext,
    Normalised,
    PersonEventMessage,
    PersonState,
    RawInput,
    parse_untrusted,
    person_keys,
    validate,
    write_message,
)
from plugins.mapping.decoding import reread
from plugins.mapping.loading import load_mapping
from plugins.mapping.records import Record, read_records
from plugins.mapping.rows import Origin, RowError, map_record, shared_problems
from plugins.mapping.spec import MappingSpec

#: The input's metadata key naming its mapping file (absolute path).
MAPPING_META = "mapping"
#: The metadata key of a row part: the row's number in its file.
ROW_META = "mapping_row"
#: The key of a row part's body saying its messageId is what the row maps to
#: (:func:`plugins.mapping.rows.message_id`): a row repeated in the file or in a later
#: export has the same, and the core takes the second as a duplicate of the first.
IDS = "ids"
#: The key of a part stored before :data:`IDS`, whose id was its file's digest and row,
#: naming the earlier row of its file it repeats: its message takes that row's id.
SAME_AS = "same_as"

#: Why an export without rows is not relevant.
NO_ROWS = "the export has no rows (a header alone, or an empty list): nothing to send"

#: An eCH namespace in a schema message, shortened to its prefix.
_NAMESPACE = re.compile(r"\{http://www\.ech\.ch/xmlns/(eCH-\d{4})/\d+\}")

#: Events whose message states a nationality the person did not have before.
NATIONALITY_BEFORE = {"naturalizeForeigner": "foreign", "undoSwiss": "swiss"}

_loaded: dict[Path, tuple[tuple[int, int], MappingSpec]] = {}


def normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """An export split into rows, a row made a message; ``None`` for input without a mapping."""
    path = raw.meta.get(MAPPING_META)
    if path is None:
        return None
    if len(raw.data) > context.max_bytes:
        raise InputRejected(f"the export of {len(raw.data)} bytes is larger than the limit of"
                            f" {context.max_bytes} bytes ([limits] max_document_bytes)")
    spec = mapping(Path(path))
    part = _unpack(raw, spec.encoding) if ROW_META in raw.meta else None
    if part is not None:
        return row_message(part, spec, context)
    # an export; also a corrected file resubmitted for a row (it keeps the row's metadata)
    return split(raw, spec)


def mapping(path: Path) -> MappingSpec:
    """The mapping file at ``path``, read again only when it changed.

    :raises InputRejected: the file is missing or invalid (the input waits in
        quarantine for the fixed mapping and a reprocess).
    """
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        known = _loaded.get(path)
        if known is not None and known[0] == version:
            return known[1]
        spec = load_mapping(path)
    except OSError as exc:
        raise InputRejected(f"mapping file {path} cannot be read: {exc.strerror}") from None
    except ConfigError as exc:
        problems = "; ".join(f"{key}: {reason}" for _file, key, reason in exc.problems)
        raise InputRejected(f"mapping file {path} is invalid: {problems}") from None
    _loaded[path] = (version, spec)
    return spec


def split(raw: RawInput, spec: MappingSpec) -> Normalised:
    """The export as parts: one per row that maps, one rejected part per row that does not
    (or that repeats an earlier row: the event is sent once).

    An export without rows (a header alone, an empty list: a day without mutations)
    is not relevant: there is nothing to send, and nothing is wrong. The warnings say
    what was skipped before a CSV header; when no row maps, the rejected parts' warning
    (``rejected_warnings``) what every row has wrong (a date format, say) once for the
    file: it holds while every row stays rejected for the reason it was given.
    """
    export = read_records(raw.data, spec)
    if not export.records:
        return Normalised(kind="export", message_id=None, xml=b"", tree=None,
                          not_relevant=NO_ROWS, warnings=export.notes)
    origin = Origin(raw.source, hashlib.sha256(raw.data).hexdigest(),
                    datetime.now(UTC).replace(microsecond=0))
    parts: list[RawInput] = []
    rejected: list[tuple[RawInput, str]] = []
    errors: list[RowError] = []
    first: dict[str, Record] = {}  # a record's values -> the first record with them
    for record in export.records:
        same = first.setdefault(json.dumps([record.values, record.problem], sort_keys=True),
                                record)
        if same is not record:
            rejected.append((_part(raw, record, origin),
                             f"row {record.row}{_where(record)}: the same as row"
                             f" {same.row}{_where(same)}, which is sent once"))
            continue
        part = _part(raw, record, origin)
        try:
            invalid = schema_problems(map_record(spec, record, origin))
        except RowError as exc:
            rejected.append((part, _reason(record, exc)))
            errors.append(exc)
            continue
        if invalid is not None:
            rejected.append((part, f"row {record.row}{_where(record)}: {invalid}"))
        else:
            parts.append(part)
    shared = shared_problems(errors) if len(errors) == len(export.records) else None
    return Normalised(kind="export", message_id=None, xml=b"", tree=None, parts=tuple(parts),
                      rejected_parts=tuple(rejected), warnings=export.notes,
                      rejected_warnings=() if shared is None else (
                          f"all {len(errors)} rows are rejected; what they have in common:"
                          f" {shared}",))


def _part(raw: RawInput, record: Record, origin: Origin) -> RawInput:
    body = {"file": raw.ref, "file_sha256": origin.file_sha256,
            "taken": origin.taken.isoformat(), "row": record.row, "where": record.where,
            "record": record.values, "problem": record.problem, "encoding": record.encoding,
            IDS: "content"}
    data = json.dumps(body, ensure_ascii=False, indent=1).encode()
    meta = {**raw.meta, "content_type": "application/json", ROW_META: str(record.row)}
    return RawInput(raw.source, f"{raw.ref} row {record.row}", data, meta)


def schema_problems(message: PersonEventMessage) -> str | None:
    """Why the message is not valid eCH-0223 1.5 (lengths, patterns the model leaves to the XSD)."""
    report = validate(write_message(message))
    if report.valid:
        return None
    problems = [_NAMESPACE.sub(r"\1:", e.message) for e in report.errors[:3]]
    return "not valid eCH-0223 1.5: " + "; ".join(problems)


def _where(record: Record) -> str:
    return f" ({record.where})" if record.where else ""


def _reason(record: Record, exc: RowError) -> str:
    return f"row {record.row}{_where(record)}: {exc}"


def row_message(part: tuple[Record, Origin, int | None], spec: MappingSpec,
                context: NormaliseContext) -> Normalised:
    """The eCH-0223 message of one row part (its record, where it comes from, and for a
    part stored before :data:`IDS` the row whose file-and-row id it takes).

    A row read in another encoding than the mapping now names (changed as a reason
    asked: the export is ISO-8859-15, not Windows-1252) is read again as the mapping
    says, from the bytes its values came from.

    :raises InputRejected: the row does not map (with row, field and reason).
    """
    record, origin, id_row = part
    try:
        if record.encoding is not None and record.encoding != spec.encoding:
            record = _read_again(record, spec.encoding)
        message = map_record(spec, record, origin, id_row=id_row)
    except RowError as exc:
        raise InputRejected(_reason(record, exc)) from None
    xml = write_message(message)
    content = message.content
    person = person_state(message)
    return Normalised(
        kind="personEventMessage", message_id=message.header.message_id, xml=xml,
        tree=parse_untrusted(xml, max_bytes=max(context.max_bytes, len(xml))),
        action=message.header.action, subject=tuple(person_keys(content.person_identification)),
        persons=(person,),
        facts=row_facts(spec, content.person_event, record.row),
        sender_id=message.header.sender_id,
    )


def row_facts(spec: MappingSpec, event: str | None, row: int) -> dict[str, Any]:
    """What rules may match on besides the core's facts (``fields`` of a rule)."""
    facts: dict[str, Any] = {"format": spec.format, "person_event": event, "mapping": spec.name,
                             "row": row}
    before = NATIONALITY_BEFORE.get(event or "")
    if before is not None:  # the message states the nationality after the event
        facts["nationality_before"] = before
    return facts


def person_state(message: PersonEventMessage) -> PersonState:
    """What the message states of its person, as of its event date."""
    data = message.content.person_data
    parts: dict[str, Any] = {}
    if data is not None:
        parts = {name: getattr(data, name) for name in PersonState.model_fields
                 if name not in ("identification", "as_of") and hasattr(data, name)}
    return PersonState(identification=message.content.person_identification,
                       as_of=message.header.event_date, **parts)


def _read_again(record: Record, encoding: str) -> Record:
    """``record`` as ``encoding`` reads the bytes its values were read from.

    :raises RowError: ``encoding`` cannot read them (see :func:`reread`).
    """
    assert record.encoding is not None
    try:
        values = reread(record.values, record.encoding, encoding)
    except ValueError as exc:
        raise RowError([("(row)", str(exc))]) from None
    return replace(record, values=values, encoding=encoding)


def _unpack(raw: RawInput, encoding: str) -> tuple[Record, Origin, int | None] | None:
    """The record and origin a row part carries (see :func:`_part`), and the row whose
    file-and-row id a part stored before :data:`IDS` takes (its own, or the one it
    repeats: as its export's other rows were sent); None for other data. A part stored
    before parts said the encoding they were read in was read in ``encoding``, the
    mapping's."""
    try:
        body = json.loads(raw.data)
        record = Record(int(body["row"]), str(body["where"]), dict(body["record"]),
                        body.get("problem"), body.get("encoding", encoding))
        origin = Origin(raw.source, str(body["file_sha256"]),
                        datetime.fromisoformat(body["taken"]))
        id_row = (None if body.get(IDS) == "content"
                  else int(body.get(SAME_AS) or record.row))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return record, origin, id_row
