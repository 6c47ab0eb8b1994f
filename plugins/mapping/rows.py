"""One record of an export → an eCH-0223 ``personEventMessage``, or what is wrong with it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from gateway.api import PersonEventMessage, value_at
from plugins.mapping.decoding import mixed_encoding
from plugins.mapping.records import Record
from plugins.mapping.spec import (
    NAMES,
    REQUIRED,
    SEVERAL,
    CountrySpec,
    HeaderSpec,
    MappingSpec,
)
from plugins.mapping.values import Mismatch, text, translate

#: The eCH-0223 namespace, the header's messageType (DOMAIN.md section 6).
MESSAGE_TYPE = "http://www.ech.ch/xmlns/eCH-0223/1"
#: The BFS id of Switzerland: a person born there has a Swiss town as place of birth.
SWITZERLAND = 8100
#: Where a message id of a row came from in parts stored before ids named the row's
#: content: the file's digest and the row number (see :func:`file_row_id`).
_ID_SPACE = uuid.UUID("6d1b8f4e-2f0a-4a53-9a49-0c7b1f3e8a21")
#: Where a message id of a row comes from: its source and what it maps to (see
#: :func:`message_id`).
_CONTENT_ID_SPACE = uuid.UUID("0c3f5a9e-7d41-4b8e-b2c6-5e1f0a7d9c34")


#: A problem of a row: the field as a reason names it (``sex (GESCHLECHT)``), what is wrong.
Problem = tuple[str, str | Mismatch]


class RowError(Exception):
    """A record that cannot become a message: every (field, reason) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(describe(problems))


def describe(problems: Sequence[Problem]) -> str:
    """The problems as a reason says them, ``field F: reason``; the mismatches of a row
    of one kind together (dates written in one other common form; signs of one wrong
    encoding), what to set said once."""
    said: list[str | list[tuple[str, Mismatch]]] = []
    kinds: dict[Hashable, list[tuple[str, Mismatch]]] = {}
    for named, reason in problems:
        if not isinstance(reason, Mismatch) or not reason.together:
            said.append(f"field {named}: {reason}")
        elif reason.kind in kinds:
            kinds[reason.kind].append((named, reason))
        else:
            said.append(kinds.setdefault(reason.kind, [(named, reason)]))
    return "; ".join(clause if isinstance(clause, str) else _together(
        [named for named, _m in clause], [m.raw for _n, m in clause], clause[0][1])
        for clause in said)


def _together(fields: list[str], raws: list[str], mismatch: Mismatch) -> str:
    return (f"{'fields' if len(fields) > 1 else 'field'} {', '.join(fields)}:"
            f" {mismatch.said(raws)}")


def shared_problems(errors: Sequence[RowError]) -> str | None:
    """What every one of ``errors`` (rows of one file, at least two) has, said once: the
    same reason for the same field, or mismatches of one kind in any field (dates of the
    same wrong form, signs of the same wrong encoding); None when they have nothing in
    common."""
    if len(errors) < 2:
        return None

    def kinds(error: RowError) -> set[Hashable]:
        return {reason.kind if isinstance(reason, Mismatch) else (named, reason)
                for named, reason in error.problems}

    shared = set.intersection(*(kinds(error) for error in errors))
    said: list[str] = []
    for named, reason in errors[0].problems:
        if not isinstance(reason, Mismatch) and (named, reason) in shared:
            said.append(f"field {named}: {reason}")
        elif isinstance(reason, Mismatch) and reason.kind in shared:
            shared.discard(reason.kind)
            alike = [(field, other) for error in errors for field, other in error.problems
                     if isinstance(other, Mismatch) and other.kind == reason.kind]
            said.append(_together(list(dict.fromkeys(field for field, _m in alike)),
                                  [m.raw for _f, m in alike], reason))
    return "; ".join(said) or None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record comes from (its source, file and when the file was taken), for its
    message id and date."""

    source: str
    file_sha256: str
    taken: datetime


def message_id(origin: Origin, header: HeaderSpec, values: dict[str, Any]) -> str:
    """The id of the message a row maps to: the same for every row of the source that maps
    to the same message, in whatever file and row (exports of overlapping windows list a
    row again: the core takes the second as a duplicate of the first), however often it is
    mapped. What the row maps to: each target's value (an empty one left out, so that a
    target added to the mapping changes no row without it) and the header's sender,
    recipients and test flag; not the messageDate nor the sending application. A row whose
    message differs in anything else (another date, say) is another event."""
    said = {target: value for target, value in values.items() if value is not None}
    basis = json.dumps([origin.source, header.sender_id, header.recipient_id,
                        header.test_delivery, said],
                       sort_keys=True, ensure_ascii=False, default=_plain)
    return str(uuid.uuid5(_CONTENT_ID_SPACE, basis))


def _plain(value: object) -> object:
    """A mapped value JSON has no type for, as JSON: a date, a country."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, CountrySpec):
        return value.model_dump()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def file_row_id(origin: Origin, row: int) -> str:
    """The id of a row part stored before ids named the row's content: from the file's
    digest and the row (a row that repeated an earlier one: that row's), as its
    siblings were sent with."""
    return str(uuid.uuid5(_ID_SPACE, f"{origin.file_sha256}:{row}"))


def map_record(spec: MappingSpec, record: Record, origin: Origin, *,
               id_row: int | None = None) -> PersonEventMessage:
    """The message ``record`` states, its messageId what it maps to (:func:`message_id`).

    :param id_row: for a row part stored before ids named the content: the row whose
        file-and-row id (:func:`file_row_id`) the message takes, as its export's other
        rows were sent with.
    :raises RowError: naming each field that is missing, unmappable or invalid.
    """
    if record.problem is not None:
        raise RowError([("(row)", record.problem)])
    reader = _Reader(spec, record)
    values = {target: reader.read(target) for target in spec.fields}
    for target in REQUIRED:
        if target in spec.fields and values.get(target) is None and target not in reader.failed:
            reader.fail(target, "missing (required)")
    if values.get("vn") is None and values.get("local_id") is None and not (
            {"vn", "local_id"} & reader.failed):
        reader.fail("vn", "neither vn nor local_id is given")
    for prefix, day in (("comes_from", "arrival_date"), ("goes_to", "departure_date")):
        moved = values.get(f"{prefix}_town") or values.get(f"{prefix}_country")
        if moved and not (values.get(day) or values.get("event_date")) and not (
                {day, "event_date"} & reader.failed):  # else its own reason says what is wrong
            reader.fail(day, f"missing: {prefix} needs it (or event_date)")
    if values.get("house_number") and not values.get("street") and "street" not in reader.failed:
        reader.fail("street", "missing: house_number needs it")
    if reader.problems:
        raise RowError(reader.problems)
    said = (message_id(origin, spec.header, values) if id_row is None
            else file_row_id(origin, id_row))
    try:
        return PersonEventMessage.model_validate(_message(spec, values, origin, said))
    except ValidationError as exc:
        raise RowError([(".".join(str(p) for p in e["loc"]), e["msg"])
                        for e in exc.errors()]) from None


class _Reader:
    """Reads targets from one record, collecting every problem."""

    def __init__(self, spec: MappingSpec, record: Record) -> None:
        self.spec = spec
        self.record = record
        self.problems: list[Problem] = []
        self.failed: set[str] = set()

    def fail(self, target: str, reason: str | Mismatch) -> None:
        field = self.spec.field(target)
        named = f"{target} ({field.named()})" if field and field.column else target
        self.problems.append((named, reason))
        self.failed.add(target)

    def read(self, target: str) -> Any:
        """The target's value in its Python type, None when empty or wrong (then noted);
        for a target of :data:`SEVERAL`, the list of its values (each column's, each item
        of a JSON list), without repeats."""
        field = self.spec.field(target)
        assert field is not None
        values: list[Any] = [field.value] if field.value is not None else [
            value_at(self.record.values, column) if self.spec.format == "json"
            else self.record.values.get(column) for column in field.sources()]
        if target in SEVERAL:
            values = [item for value in values
                      for item in (value if isinstance(value, list) else [value])]
        try:
            encoding = self.record.encoding if target in NAMES and field.value is None else None
            read = [translate(self.spec, target, field,
                              raw if encoding is None else mixed_encoding(raw, encoding))
                    for raw in (text(value, tabled=field.table is not None) for value in values)
                    if raw is not None]
        except Mismatch as exc:
            self.fail(target, exc)
            return None
        except ValueError as exc:
            self.fail(target, str(exc))
            return None
        if target in SEVERAL:
            return [value for n, value in enumerate(read) if value not in read[:n]] or None
        return read[0] if read else None


def _birth_date(value: date | dict[str, str]) -> dict[str, Any]:
    return {"year_month_day": value} if isinstance(value, date) else value


def _country(country: CountrySpec) -> dict[str, Any]:
    return {"country_id": country.id, "country_id_iso2": country.iso2,
            "country_name_short": country.name}


def _message(spec: MappingSpec, v: dict[str, Any], origin: Origin, said_id: str
             ) -> dict[str, Any]:
    """The message as the model's nested fields."""
    header = spec.header
    identification = {
        "vn": v.get("vn"),
        "local_person_id": {"person_id_category": v["local_id_category"],
                            "person_id": v["local_id"]} if v.get("local_id") else None,
        "official_name": v["official_name"], "first_name": v["first_name"],
        "original_name": v.get("original_name"), "sex": v["sex"],
        "date_of_birth": _birth_date(v["date_of_birth"]),
    }
    return {
        "header": {
            "sender_id": header.sender_id, "recipient_id": header.recipient_id,
            "message_id": said_id, "message_type": MESSAGE_TYPE,
            "sending_application": {"manufacturer": header.manufacturer,
                                    "product": header.product,
                                    "product_version": header.product_version},
            "message_date": origin.taken, "event_date": v.get("event_date"),
            "action": "1", "test_delivery_flag": header.test_delivery,
        },
        "content": {
            "person_identification": identification,
            "person_event": v["event"],
            "person_data": _person_data(v),
        },
    }


def _person_data(v: dict[str, Any]) -> dict[str, Any]:
    event_date: date | None = v.get("event_date")
    nationalities: list[CountrySpec] = v["nationality"]
    return {
        "name_data": {"official_name": v["official_name"], "first_name": v["first_name"],
                      "original_name": v.get("original_name"), "call_name": v.get("call_name")},
        "birth_data": {"date_of_birth": _birth_date(v["date_of_birth"]),
                       "place_of_birth": _birth_place(v), "sex": v["sex"]},
        "nationality_data": {"nationality_status": "2",
                             "country_info": [{"country": _country(c)} for c in nationalities]},
        "marital_data": {"marital_status": v["marital_status"],
                         "date_of_marital_status": v.get("marital_status_date")},
        "residence_permit_data": {
            "residence_permit": v.get("permit"),
            "residence_permit_valid_from": v.get("permit_valid_from"),
            "residence_permit_valid_till": v.get("permit_valid_till"),
            "entry_date": v.get("entry_date"),
        },
        "residence_address": {"street": v.get("street"), "house_number": v.get("house_number"),
                              "swiss_zip_code": v["zip_code"], "town": v["town"], "country": "CH"},
        "municipality": {"municipality_id": v.get("municipality_id"),
                         "municipality_name": v["municipality_name"],
                         "canton_abbreviation": v.get("canton")},
        "religion_data": {"religion": v["religion"]},
        "comes_from": _move(v, "comes_from", "arrival_date", event_date),
        "goes_to": _move(v, "goes_to", "departure_date", event_date),
    }


def _birth_place(v: dict[str, Any]) -> dict[str, Any]:
    country: CountrySpec | None = v.get("birth_country")
    town: str | None = v.get("birth_town")
    if country is None:
        return {"unknown": "0"}
    if country.id == SWITZERLAND and town:
        return {"swiss_town": {"municipality_name": town}}
    return {"foreign_country": {"country": _country(country), "town": town}}


def _move(v: dict[str, Any], prefix: str, date_target: str, event_date: date | None
          ) -> dict[str, Any] | None:
    town: str | None = v.get(f"{prefix}_town")
    country: CountrySpec | None = v.get(f"{prefix}_country")
    if country is None:
        if town is None:
            return None
        country_name = "Schweiz"  # a town without a country: a Swiss move
    else:
        country_name = country.name
    day = v.get(date_target) or event_date
    return {"municipality_name": town or country_name, date_target: day,
            "country_name_short": country_name}
