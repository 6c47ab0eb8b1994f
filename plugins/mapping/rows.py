"""One record of an export → an eCH-0223 ``personEventMessage``, or what is wrong with it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from gateway.api import PersonEventMessage, vn_check_digit_ok
from plugins.mapping.records import Record, lookup
from plugins.mapping.spec import REQUIRED, TARGETS, CountrySpec, FieldSpec, MappingSpec, allowed_codes

#: The eCH-0223 namespace, the header's messageType (DOMAIN.md section 6).
MESSAGE_TYPE = "http://www.ech.ch/xmlns/eCH-0223/1"
#: The BFS id of Switzerland: a person born there has a Swiss town as place of birth.
SWITZERLAND = 8100
_RELIGION = re.compile(r"^\d{3,6}$")
#: Characters XML 1.0 cannot carry.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Where a message id of a row comes from: the file's digest and the row number.
_ID_SPACE = uuid.UUID("6d1b8f4e-2f0a-4a53-9a49-0c7b1f3e8a21")


class RowError(Exception):
    """A record that cannot become a message: every (field, reason) found."""

    def __init__(self, row: int, problems: list[tuple[str, str]]) -> None:
        self.row = row
        self.problems = problems
        super().__init__(f"row {row}: " + "; ".join(f"field {f}: {r}" for f, r in problems))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record comes from, for its message id and date."""

    file_sha256: str
    taken: datetime


def message_id(origin: Origin, row: int) -> str:
    """The same id for the same row of the same file, however often it is mapped."""
    return str(uuid.uuid5(_ID_SPACE, f"{origin.file_sha256}:{row}"))


def map_record(spec: MappingSpec, record: Record, origin: Origin) -> PersonEventMessage:
    """The message ``record`` states.

    :raises RowError: naming each field that is missing, unmappable or invalid.
    """
    if record.problem is not None:
        raise RowError(record.row, [("(row)", record.problem)])
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
        if moved and not (values.get(day) or values.get("event_date")):
            reader.fail(day, f"missing: {prefix} needs it (or event_date)")
    if reader.problems:
        raise RowError(record.row, reader.problems)
    try:
        return PersonEventMessage.model_validate(_message(spec, values, origin, record.row))
    except ValidationError as exc:
        raise RowError(record.row, [(".".join(str(p) for p in e["loc"]), e["msg"])
                                    for e in exc.errors()]) from None


class _Reader:
    """Reads targets from one record, collecting every problem."""

    def __init__(self, spec: MappingSpec, record: Record) -> None:
        self.spec = spec
        self.record = record
        self.problems: list[tuple[str, str]] = []
        self.failed: set[str] = set()

    def fail(self, target: str, reason: str) -> None:
        field = self.spec.field(target)
        named = f"{target} ({field.column})" if field and field.column else target
        self.problems.append((named, reason))
        self.failed.add(target)

    def read(self, target: str) -> Any:
        """The target's value in its Python type, None when empty or wrong (then noted)."""
        field = self.spec.field(target)
        assert field is not None
        raw = self._raw(target, field)
        if raw is None:
            return None
        if field.table is not None:
            table = self.spec.tables[field.table]
            if raw not in table:
                self.fail(target, f"value {raw!r} has no entry in the {field.table} table")
                return None
            raw = table[raw]
        try:
            return _convert(self.spec, target, field, raw)
        except ValueError as exc:
            self.fail(target, str(exc))
            return None

    def _raw(self, target: str, field: FieldSpec) -> str | None:
        if field.value is not None:
            value: Any = field.value
        else:
            assert field.column is not None
            value = (lookup(self.record.values, field.column) if self.spec.format == "json"
                     else self.record.values.get(field.column))
        if isinstance(value, dict | list):
            self.fail(target, f"{field.column} holds a {type(value).__name__}, not a value")
            return None
        if value is None:
            return None
        text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
        bad = _NOT_XML.search(text)
        if bad is not None:
            self.fail(target, f"contains the control character U+{ord(bad.group()):04X}")
            return None
        return text or None


def _convert(spec: MappingSpec, target: str, field: FieldSpec, raw: str) -> Any:
    kind = TARGETS[target][0]
    if kind == "date":
        fmt = field.format or spec.date_format
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            partial = partial_date(raw, fmt) if target == "date_of_birth" else None
            if partial is None:
                raise ValueError(f"{raw!r} is not a date of the form {fmt}") from None
            return partial
    if kind == "vn":
        digits = raw.replace(".", "").replace(" ", "")
        if not (digits.isdigit() and len(digits) == 13 and digits.startswith("756")):
            raise ValueError("not a VN: 13 digits starting with 756")
        if not vn_check_digit_ok(digits):
            raise ValueError("the VN's check digit is wrong")
        return int(digits)
    if kind == "number":
        if not raw.isdigit():
            raise ValueError(f"{raw!r} is not a number")
        return int(raw)
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


def partial_date(raw: str, fmt: str) -> dict[str, str] | None:
    """A date of birth known only in part (eCH-0044): ``1980``, ``03.1980`` or ``00.03.1980``.

    The parts are told by the format's fields; a day (and month) of ``00`` is unknown.
    """
    if re.fullmatch(r"\d{4}", raw):
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
    if not (re.fullmatch(r"\d{4}", year) and month.isdigit() and int(month) <= 12):
        return None
    return {"year": year} if int(month) == 0 else {"year_month": f"{year}-{int(month):02d}"}


def _birth_date(value: date | dict[str, str]) -> dict[str, Any]:
    return {"year_month_day": value} if isinstance(value, date) else value


def _country(country: CountrySpec) -> dict[str, Any]:
    return {"country_id": country.id, "country_id_iso2": country.iso2,
            "country_name_short": country.name}


def _message(spec: MappingSpec, v: dict[str, Any], origin: Origin, row: int) -> dict[str, Any]:
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
            "message_id": message_id(origin, row), "message_type": MESSAGE_TYPE,
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
    nationality: CountrySpec = v["nationality"]
    return {
        "name_data": {"official_name": v["official_name"], "first_name": v["first_name"],
                      "original_name": v.get("original_name"), "call_name": v.get("call_name")},
        "birth_data": {"date_of_birth": _birth_date(v["date_of_birth"]),
                       "place_of_birth": _birth_place(v), "sex": v["sex"]},
        "nationality_data": {"nationality_status": "2",
                             "country_info": [{"country": _country(nationality)}]},
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
