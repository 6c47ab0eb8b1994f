"""A mapping file: how one vendor's JSON or CSV export becomes eCH-0223.

The file is TOML, read and checked by :func:`plugins.mapping.loading.load_mapping`.
The targets
(the keys of ``[fields]``) are a fixed vocabulary, listed in :data:`TARGETS`
with what each becomes in the message.
"""

from __future__ import annotations

import codecs
import functools
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, field_validator, model_validator

from gateway.api import PersonEventMessage, PluginOptions

#: The targets a mapping may fill, with their kind: text, date, code (a value table's
#: result must be one of the eCH codes), country (looked up in ``[countries]``), number, vn.
TARGETS: dict[str, tuple[str, str]] = {
    "event": ("code", "content/personEvent, e.g. moveIn"),
    "event_date": ("date", "header/eventDate; the default arrival and departure date"),
    "vn": ("vn", "the 13-digit AHV number (dots allowed), check digit verified"),
    "local_id": ("text", "localPersonId/personId"),
    "local_id_category": ("text", "localPersonId/personIdCategory, e.g. MU.261"),
    "official_name": ("text", "officialName"),
    "first_name": ("text", "firstName"),
    "original_name": ("text", "originalName"),
    "call_name": ("text", "nameData/callName"),
    "sex": ("code", "sex: 1 male, 2 female, 3 unknown"),
    "date_of_birth": ("date", "dateOfBirth"),
    "birth_country": ("country", "placeOfBirth: the country (Switzerland: a Swiss town)"),
    "birth_town": ("text", "placeOfBirth: the town"),
    "nationality": ("country", "nationalityData/countryInfo"),
    "marital_status": ("code", "maritalData/maritalStatus"),
    "marital_status_date": ("date", "maritalData/dateOfMaritalStatus"),
    "permit": ("code", "residencePermitData/residencePermit (eCH-0006); empty: none"),
    "permit_valid_from": ("date", "residencePermitValidFrom"),
    "permit_valid_till": ("date", "residencePermitValidTill"),
    "entry_date": ("date", "residencePermitData/entryDate"),
    "street": ("text", "residenceAddress/street"),
    "house_number": ("text", "residenceAddress/houseNumber"),
    "zip_code": ("number", "residenceAddress/swissZipCode"),
    "town": ("text", "residenceAddress/town"),
    "municipality_id": ("number", "municipality/municipalityId (BFS number)"),
    "municipality_name": ("text", "municipality/municipalityName"),
    "canton": ("code", "municipality/cantonAbbreviation"),
    "religion": ("code", "religionData/religion (eCH-0011 code, e.g. 111)"),
    "comes_from_town": ("text", "comesFrom/municipalityName"),
    "comes_from_country": ("country", "comesFrom/countryNameShort"),
    "arrival_date": ("date", "comesFrom/arrivalDate (default: event_date)"),
    "goes_to_town": ("text", "goesTo/municipalityName"),
    "goes_to_country": ("country", "goesTo/countryNameShort"),
    "departure_date": ("date", "goesTo/departureDate (default: event_date)"),
}
#: The text targets that name a person, a place or a street: a sign such as ¦ or ½ in
#: one shows an export read in the wrong encoding (see
#: :func:`plugins.mapping.decoding.mixed_encoding`). Not the local id and its category
#: (codes, not words), nor house_number (``12½`` is written).
NAMES = frozenset({"official_name", "first_name", "original_name", "call_name", "birth_town",
                   "street", "town", "municipality_name", "comes_from_town", "goes_to_town"})
#: Targets that may read several columns (or a JSON list): one value from each.
SEVERAL = ("nationality",)
#: Targets every mapping fills and every row must have.
REQUIRED = ("event", "official_name", "first_name", "sex", "date_of_birth", "nationality",
            "marital_status", "zip_code", "town", "municipality_name", "religion")
#: Where the code targets' allowed values are declared in the eCH-0223 model.
CODE_FIELDS: dict[str, tuple[str, ...]] = {
    "event": ("content", "person_event"),
    "sex": ("content", "person_identification", "sex"),
    "marital_status": ("content", "person_data", "marital_data", "marital_status"),
    "permit": ("content", "person_data", "residence_permit_data", "residence_permit"),
    "canton": ("content", "person_data", "municipality", "canton_abbreviation"),
}

Target = Literal[tuple(TARGETS)]  # type: ignore[valid-type]
#: What an export is written in: also its messages' ``facts["format"]``.
Format = Literal["csv", "json"]
FORMATS: tuple[str, ...] = get_args(Format)


class FieldSpec(PluginOptions):
    """Where one target's value comes from, and how it is read."""

    column: str | list[str] | None = Field(
        default=None, description="the CSV column, or the JSON path (person.name.last; a number"
        " picks a list item); nationality: also a list of them, or a path to a JSON list,"
        " one nationality each")
    value: str | None = Field(default=None, description="a fixed value instead of a column")
    table: str | None = Field(default=None, description="a [tables.<name>] translating the value")
    format: str | None = Field(default=None, description="date format, e.g. %d.%m.%Y (default:"
                               " the mapping's date_format)")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give either column or value")
        return self

    def sources(self) -> tuple[str, ...]:
        """The columns or JSON paths the value is read from; none for a fixed value."""
        if self.column is None:
            return ()
        return (self.column,) if isinstance(self.column, str) else tuple(self.column)

    def named(self) -> str:
        """The columns or paths as a reason names them: ``NAT1, NAT2``."""
        return ", ".join(self.sources())


class CountrySpec(PluginOptions):
    """A country as eCH-0008 states it: BFS id, ISO code, short name."""

    id: int = Field(ge=8100, le=8999, description="BFS country id (8100: Switzerland)")
    iso2: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2 code")
    name: str = Field(min_length=1, description="short name, e.g. Deutschland")


class HeaderSpec(PluginOptions):
    """What the eCH-0223 header says of every message made from this export."""

    sender_id: str = Field(min_length=1, description="our sedex participant id, e.g. 1-261-1")
    recipient_id: list[str] = Field(default_factory=list, description="the canton's sedex id(s)")
    test_delivery: bool = Field(False, description="mark the messages as test data")
    manufacturer: str = Field("unknown", description="the registry software's maker")
    product: str = Field("unknown", description="the registry software")
    product_version: str = Field("unknown", description="its version")


class MappingSpec(PluginOptions):
    """The whole mapping file."""

    name: str = Field(min_length=1, description="what the export is, e.g. Kommunalsoft Nova")
    format: Format
    encoding: str = Field("utf-8", description="the export's text encoding, as Python names"
                          " it: utf-8, windows-1252, iso-8859-15, latin-1 ...")
    delimiter: Literal[";", ",", "\t", "|"] = ";"
    records: str = Field("", description="JSON: path of the list of records (empty: the"
                         " document is the list)")
    date_format: str = "%Y-%m-%d"
    max_rows: int = Field(100_000, ge=1, description="most rows one file may have")
    header: HeaderSpec
    fields: dict[Target, str | list[str] | FieldSpec]  # type: ignore[valid-type]
    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    countries: dict[str, CountrySpec] = Field(default_factory=dict)

    @field_validator("encoding", mode="after")
    @classmethod
    def _encoding(cls, value: str) -> str:
        return text_encoding(value)

    @field_validator("fields", mode="after")
    @classmethod
    def _columns(cls, value: dict[str, str | list[str] | FieldSpec]) -> dict[str, FieldSpec]:
        return {k: v if isinstance(v, FieldSpec) else FieldSpec(column=v)
                for k, v in value.items()}

    def field(self, target: str) -> FieldSpec | None:
        """How ``target`` is filled, if the mapping fills it."""
        spec = self.fields.get(target)
        assert spec is None or isinstance(spec, FieldSpec)
        return spec

    def columns(self) -> dict[str, tuple[str, ...]]:
        """Each target read from the export, with its columns or paths."""
        return {t: s.sources() for t, s in self.fields.items()
                if isinstance(s, FieldSpec) and s.column is not None}


@functools.cache
def allowed_codes(target: str) -> tuple[str, ...]:
    """The eCH codes a code target may take, read from the eCH-0223 model; () if any text."""
    path = CODE_FIELDS.get(target)
    if path is None:
        return ()
    annotation: Any = PersonEventMessage
    for name in path:
        model = next(a for a in (annotation, *get_args(annotation)) if hasattr(a, "model_fields"))
        annotation = model.model_fields[name].annotation
    literal = next(a for a in (annotation, *get_args(annotation)) if get_origin(a) is Literal)
    return tuple(str(code) for code in get_args(literal))


#: Bytes every encoding the gateway reads must decode as ASCII does: the delimiters,
#: quotes, line ends and digits a CSV or JSON reader looks for.
_ASCII = bytes(range(0x20, 0x7F)) + b"\t\r\n"
#: What a reason offers instead of an encoding the gateway cannot read.
ENCODING_EXAMPLES = '"utf-8", "windows-1252", "iso-8859-15" or "latin-1"'


def text_encoding(name: str) -> str:
    """``name`` as Python's codec registry names it (``Windows-1252`` → ``cp1252``,
    ``latin-1`` → ``iso8859-1``); ``utf-8-sig`` is ``utf-8`` (a byte order mark is
    skipped whatever the encoding).

    :raises ValueError: no such encoding, or one that does not write ASCII as ASCII
        (UTF-16, EBCDIC, base64): the reader would not find a delimiter or line end.
    """
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}; e.g. {ENCODING_EXAMPLES}") from None
    try:
        readable = _ASCII.decode(codec.name) == _ASCII.decode("ascii")
    except LookupError:  # a codec of bytes to bytes
        raise ValueError(f"{name!r} is no text encoding; e.g. {ENCODING_EXAMPLES}") from None
    except UnicodeDecodeError:
        readable = False
    if not readable:
        raise ValueError(f"{name!r} does not write the characters of ASCII as ASCII bytes"
                         " (as UTF-16, UTF-32 and EBCDIC do not), so the reader would find no"
                         f" delimiter and no line end; e.g. {ENCODING_EXAMPLES}")
    return "utf-8" if codec.name == "utf-8-sig" else codec.name
