"""The mapping plugin: JSON and CSV exports split into rows, each row an eCH-0223 message.

Real files throughout: the shipped Nova example (mapping and exports), files
written here, the official eCH-0223 1.5 XSD as the oracle, and the real
command line for ``map-test`` and ``check-config``.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import plugins.mapping as mapping_plugin
from gateway.api import ConfigError, InputRejected, NormaliseContext, Normalised, RawInput
from gateway.cli import main
from gateway.cli._reprocess import Reprocessor
from gateway.config import write_initial_config
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, harness, running, states, until
from plugins.mapping.loading import load_mapping
from plugins.mapping.normaliser import MAPPING_META, NO_ROWS, ROW_META, normalise
from tests.official import official_schema_set

REPO = Path(__file__).resolve().parent.parent
MAPPINGS = REPO / "config" / "mappings"
EXAMPLES = REPO / "config" / "examples" / "nova"
CSV_SAMPLE = EXAMPLES / "einwohner-2026-12-01.csv"
JSON_SAMPLE = EXAMPLES / "einwohner-2026-12-01.json"
WRITER = Path(__file__).parent / "writer.py"
LIMITS = NormaliseContext(max_bytes=1 << 20, max_zip_entries=10, max_zip_bytes=1 << 20,
                          max_zip_ratio=10)
HEADER = ("PERS_NR;AHV_NR;NAME;VORNAME;GESCHLECHT;GEBURTSDATUM;GEBURTSLAND;GEBURTSORT;"
          "STAATSANGEHOERIGKEIT;ZIVILSTAND;ZIVILSTAND_SEIT;BEWILLIGUNG;BEWILLIGUNG_BIS;EINREISE;"
          "STRASSE;HAUSNR;PLZ;ORT;KONFESSION;EREIGNIS;EREIGNIS_DATUM;ZUZUG_ORT;ZUZUG_LAND;"
          "WEGZUG_ORT;WEGZUG_LAND")
GOOD = ("104211;756.5658.6706.52;Becker;Lukas;M;14.03.1991;DE;München;DE;ledig;;B-EU;"
        "31.10.2031;01.11.2026;Technikumstrasse;42;8400;Winterthur;rk;Zuzug;01.11.2026;"
        "München;DE;;")


def export(data: bytes, mapping: Path, ref: str = "export.csv") -> RawInput:
    """An export file as the folder source hands it over."""
    return RawInput("nova", ref, data, {"content_type": "text/csv", MAPPING_META: str(mapping)})


def split(data: bytes, mapping: Path = MAPPINGS / "nova.toml") -> Normalised:
    result = normalise(export(data, mapping), LIMITS)
    assert result is not None and result.kind == "export"
    return result


def rows(result: Normalised) -> list[Normalised]:
    """Each good part normalised again, as the core does."""
    messages = [normalise(part, LIMITS) for part in result.parts]
    assert all(m is not None for m in messages)
    return [m for m in messages if m is not None]


def utf8_mapping(tmp_path: Path, **changes: str) -> Path:
    """The Nova mapping reading UTF-8 (and other top-level keys changed)."""
    text = (MAPPINGS / "nova.toml").read_text(encoding="utf-8")
    text = text.replace('encoding = "windows-1252"', 'encoding = "utf-8"')
    for key, value in changes.items():
        if f"\n{key} = " in text:
            text = text.replace(f"\n{key} = ", f"\n{key} = {value}\n#{key} = ", 1)
        else:
            text = f"{key} = {value}\n{text}"
    path = tmp_path / "nova-utf8.toml"
    path.write_text(text, encoding="utf-8")
    return path


def csv_bytes(*lines: str, delimiter: str = ";") -> bytes:
    return ("\r\n".join(line.replace(";", delimiter) for line in (HEADER, *lines)) + "\r\n"
            ).encode("utf-8")


# -- the shipped example ---------------------------------------------------------------


@pytest.mark.parametrize(("sample", "mapping", "good"), [
    (CSV_SAMPLE, "nova.toml", 7), (JSON_SAMPLE, "nova-json.toml", 3)])
def test_every_sample_row_is_valid_against_the_official_xsd(sample: Path, mapping: str,
                                                            good: int) -> None:
    schemas = official_schema_set()
    messages = rows(split(sample.read_bytes(), MAPPINGS / mapping))
    assert len(messages) == good
    for message in messages:
        report = schemas.validate(message.xml)
        assert report.valid, (message.facts, [i.message for i in report.errors])
        assert message.kind == "personEventMessage"


def test_the_bad_sample_row_is_rejected_alone_with_row_field_and_reason() -> None:
    result = split(CSV_SAMPLE.read_bytes())
    assert [p.meta[ROW_META] for p in result.parts] == ["1", "2", "3", "4", "5", "6", "8"]
    [(part, reason)] = result.rejected_parts
    assert reason == ("row 7 (line 8): field permit (BEWILLIGUNG): value 'S' has no entry in"
                      " the permit table")
    assert part.meta[ROW_META] == "7"
    assert json.loads(part.data)["record"]["BEWILLIGUNG"] == "S"  # the row, kept as evidence


def test_a_row_message_states_the_person_and_its_keys() -> None:
    result = split(CSV_SAMPLE.read_bytes())
    first = rows(result)[0]
    assert first.subject == ("vn:7565658670652", "local:MU.230:104211")
    assert first.facts == {"format": "csv", "person_event": "moveIn", "row": 1,
                           "mapping": "Kommunalsoft Nova, Einwohnerexport 4.2"}
    [person] = first.persons
    assert person.permit() == "0201" and person.nationality() == "foreign"
    assert person.municipality is not None and person.municipality.municipality_id == 230
    assert str(person.as_of) == "2026-11-01"
    naturalised = rows(result)[-1]
    assert naturalised.facts["nationality_before"] == "foreign"  # the message says Swiss
    assert "foreign" in mapping_plugin.gateway_fact_values()["nationality_before"]
    assert naturalised.persons[0].nationality() == "swiss"
    assert naturalised.persons[0].permit() is None  # xsi:nil in the message


def test_message_ids_are_the_same_however_often_a_file_is_mapped() -> None:
    """Each row's id is what it maps to: the same in another file listing the same rows
    (see tests/test_mapping_overlap.py)."""
    data = CSV_SAMPLE.read_bytes()
    first = [m.message_id for m in rows(split(data))]
    again = [m.message_id for m in rows(split(data))]
    other = [m.message_id for m in rows(split(data + b"\r\n"))]
    assert first == again == other
    assert len(set(first)) == 7
    assert {m.sender_id for m in rows(split(data))} == {"T1-230-1"}  # [header] sender_id


def test_json_paths_reach_nested_fields_and_list_items() -> None:
    messages = rows(split(JSON_SAMPLE.read_bytes(), MAPPINGS / "nova-json.toml"))
    assert [m.facts["person_event"] for m in messages] == ["moveIn", "prolongationL", "moveIn"]
    assert {m.facts["format"] for m in messages} == {"json"}
    person = messages[1].persons[0]
    assert person.identification.first_name == "Camille"
    assert person.facts()["country"] == 8212  # person.nationalities: ["FR"]
    assert b"<eCH-0223:comesFrom><eCH-0223:municipalityName>Bern<" in messages[2].xml


def test_several_nationalities_from_a_json_list_or_several_csv_columns(tmp_path: Path) -> None:
    document = json.loads(JSON_SAMPLE.read_text(encoding="utf-8"))
    persons = document["export"]["persons"]
    persons[0]["person"]["nationalities"] = ["PL", "DE", "PL"]  # a repeat is stated once
    persons[1]["person"]["nationalities"] = ["FR", "ZZ"]
    result = split(json.dumps(document).encode(), MAPPINGS / "nova-json.toml")
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2: field nationality (person.nationalities): value 'ZZ' has no entry in [countries]"]
    first = rows(result)[0]
    countries = etree.fromstring(first.xml).findall(".//{*}nationalityData/{*}countryInfo")
    assert [c.findtext("{*}country/{*}countryIdISO2") for c in countries] == ["PL", "DE"]
    assert_official_1_5(first.xml)
    # CSV: a list of columns, an empty cell adding none; one Swiss makes the person Swiss
    mapping = utf8_mapping(tmp_path)
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        'nationality = "STAATSANGEHOERIGKEIT"',
        'nationality = ["STAATSANGEHOERIGKEIT", "STAATSANGEHOERIGKEIT_2"]'), encoding="utf-8")
    header = HEADER + ";STAATSANGEHOERIGKEIT_2"
    data = "\r\n".join((header, GOOD + ";CH", GOOD.replace("Lukas", "Lena") + ";")).encode()
    dual, single = rows(split(data + b"\r\n", mapping))
    assert dual.persons[0].nationality() == "swiss"
    assert [info.country.country_id for info in dual.persons[0].nationality_data.country_info
            ] == [8207, 8100]
    assert single.persons[0].nationality() == "foreign"
    assert len(single.persons[0].nationality_data.country_info) == 1
    assert_official_1_5(dual.xml)


def assert_official_1_5(xml: bytes) -> None:
    report = official_schema_set().validate(xml)
    assert report.valid, [i.message for i in report.errors]


# -- bad rows --------------------------------------------------------------------------


def test_each_kind_of_bad_row_is_rejected_alone(tmp_path: Path) -> None:
    mapping = utf8_mapping(tmp_path)
    data = csv_bytes(
        GOOD,
        GOOD.replace(";Becker;", ";;"),                      # a required field empty
        GOOD.replace("14.03.1991", "1991-03-14"),            # a date in another format
        GOOD.replace("14.03.1991", "29.02.1991"),            # a day the month lacks
        GOOD.replace("756.5658.6706.52", "756.5658.6706.53"),  # a wrong check digit
        GOOD.replace(";M;", ";X;"),                          # no entry in the sex table
        GOOD.replace(";DE;ledig;", ";ZZ;ledig;"),             # an unknown country
        GOOD.replace(";8400;", ";84OO;"),                    # not a number
        GOOD + ";extra",                                     # more cells than the header
        GOOD.replace("Lukas", "Lu\x00kas"),                  # a character XML cannot carry
        GOOD.replace(";Technikumstrasse;42;", ";;42;"),      # a house number without street
        GOOD.replace("104211;756.5658.6706.52", "104212;756.8659.8426.46"),  # another person
    )
    result = split(data, mapping)
    assert [p.meta[ROW_META] for p in result.parts] == ["1", "12"]
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2 (line 3): field official_name (NAME): missing (required)",
        "row 3 (line 4): field date_of_birth (GEBURTSDATUM): '1991-03-14' is written"
        ' %Y-%m-%d, not %d.%m.%Y (set date_format = "%Y-%m-%d" in the mapping if the export'
        " writes its dates so)",
        "row 4 (line 5): field date_of_birth (GEBURTSDATUM): '29.02.1991' is no date: day is"
        " out of range for month",
        "row 5 (line 6): field vn (AHV_NR): the VN's check digit is wrong",
        "row 6 (line 7): field sex (GESCHLECHT): value 'X' has no entry in the sex table",
        "row 7 (line 8): field nationality (STAATSANGEHOERIGKEIT): value 'ZZ' has no entry in"
        " [countries]",
        "row 8 (line 9): field zip_code (PLZ): '84OO' is not a whole number",
        "row 9 (line 10): field (row): 26 cells where the header has 25: cell 26, beyond the"
        " header, is not empty (a delimiter in a cell without quotes?)",
        "row 10 (line 11): field first_name (VORNAME): contains the control character U+0000",
        "row 11 (line 12): field street (STRASSE): missing: house_number needs it",
    ]
    assert len(rows(result)) == 2


OTHER = GOOD.replace("104211;756.5658.6706.52;Becker", "104212;756.8659.8426.46;Krasniqi")
#: A quoted cell with quotes inside it not doubled, as hand-made exports write them.
STRAY_QUOTE = GOOD.replace(";Technikumstrasse;", ';"Technikumstrasse "Alt"";')


def test_a_row_the_csv_reader_cannot_read_is_rejected_alone(tmp_path: Path) -> None:
    """A quote the reader cannot read, or a cell beyond its size limit, on the row's own line:
    the row is rejected, keeping its line; the rows after it are read as usual."""
    long_cell = GOOD.replace("Becker", "B" + "e" * 200_000).replace("104211", "104213")
    result = split(csv_bytes(GOOD, STRAY_QUOTE, long_cell, OTHER), utf8_mapping(tmp_path))
    assert [p.meta[ROW_META] for p in result.parts] == ["1", "4"]
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2 (line 3): field (row): not readable as CSV: ';' expected after '\"'",
        "row 3 (line 4): field (row): not readable as CSV: a cell longer than 131072 characters"
        " (a fixed limit of the CSV reader, not a setting)",
    ]
    part = result.rejected_parts[0][0]
    assert json.loads(part.data)["record"] == {"(line)": STRAY_QUOTE}


async def test_a_dropped_export_with_a_row_the_csv_reader_cannot_read_sends_the_others(
        tmp_path: Path) -> None:
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.csv"], "mapping": str(utf8_mapping(tmp_path))}
    async with harness(tmp_path, source_options=options) as h:
        h.feed("export.csv", csv_bytes(GOOD, STRAY_QUOTE, OTHER))
        await h.settled(2)
        await h.wait_for(lambda: len(h.messages()) == 4)
        by_ref = {m.ref: m for m in h.messages()}
    assert by_ref["export.csv"].state == "split"
    assert [by_ref[f"export.csv row {n}"].state for n in (1, 2, 3)] == [
        "routed", "quarantined", "routed"]
    assert by_ref["export.csv row 2"].reason == (
        "row 2 (line 3): field (row): not readable as CSV: ';' expected after '\"'")


def test_a_row_repeated_in_the_file_is_rejected_and_sent_once(tmp_path: Path) -> None:
    result = split(csv_bytes(GOOD, OTHER, GOOD, GOOD), utf8_mapping(tmp_path))
    assert [int(p.meta[ROW_META]) for p in result.parts] == [1, 2]
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 3 (line 4): the same as row 1 (line 2), which is sent once",
        "row 4 (line 5): the same as row 1 (line 2), which is sent once"]
    json_export = json.loads(JSON_SAMPLE.read_bytes())
    json_export["export"]["persons"].append(json_export["export"]["persons"][0])
    result = split(json.dumps(json_export).encode(), MAPPINGS / "nova-json.toml")
    assert len(result.parts) == 3
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 4: the same as row 1, which is sent once"]


def test_a_repeated_row_processed_again_has_the_messageid_of_the_row_it_repeats(
        tmp_path: Path) -> None:
    """Replayed (by id, or with its export), the repeat is the same event as the row it
    repeats: one messageId, so the core records whichever comes second as a duplicate."""
    result = split(csv_bytes(GOOD, OTHER, GOOD), utf8_mapping(tmp_path))
    [(repeat, _reason)] = result.rejected_parts
    first, other = rows(result)
    [again] = rows(result.replaced(parts=(repeat,)))
    assert again.message_id == first.message_id != other.message_id
    assert again.facts["row"] == 3
    assert again.xml == first.xml


def test_a_row_with_several_faults_names_each(tmp_path: Path) -> None:
    data = csv_bytes(GOOD.replace(";M;", ";?;").replace(";B-EU;", ";Z;"))
    [(_part, reason)] = split(data, utf8_mapping(tmp_path)).rejected_parts
    assert reason == ("row 1 (line 2): field sex (GESCHLECHT): value '?' has no entry in the sex"
                      " table; field permit (BEWILLIGUNG): value 'Z' has no entry in the permit"
                      " table")


def test_a_wrong_event_date_is_named_once_not_again_as_a_missing_arrival_date(
        tmp_path: Path) -> None:
    """The row moves in from München: its arrival date defaults to the event date, which
    is wrong itself; arrival_date, which the mapping does not map, is not blamed."""
    data = csv_bytes(GOOD.replace(";Zuzug;01.11.2026;", ";Zuzug;2026-11-01;"))
    [(_part, reason)] = split(data, utf8_mapping(tmp_path)).rejected_parts
    assert reason == ("row 1 (line 2): field event_date (EREIGNIS_DATUM): '2026-11-01' is"
                      ' written %Y-%m-%d, not %d.%m.%Y (set date_format = "%Y-%m-%d" in the'
                      " mapping if the export writes its dates so)")


@pytest.mark.parametrize("written", ["7.56566E+12", "7,56566E+12"])
def test_a_vn_excel_wrote_in_scientific_notation_is_rejected_saying_so(
        tmp_path: Path, written: str) -> None:
    """A VN column without dots is a number to Excel: saved as CSV, it is 7.56566E+12."""
    data = csv_bytes(GOOD.replace("756.5658.6706.52", written))
    [(_part, reason)] = split(data, utf8_mapping(tmp_path)).rejected_parts
    assert reason == ("row 1 (line 2): field vn (AHV_NR): not a VN: a number in scientific"
                      " notation, as Excel saves a column of long numbers, its last digits lost"
                      " (open the export in Excel with this column as text, or not at all)")


def test_a_row_part_that_no_longer_maps_is_rejected_with_its_reason(tmp_path: Path) -> None:
    mapping = utf8_mapping(tmp_path)
    [part] = split(csv_bytes(GOOD), mapping).parts
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('B-EU = "0201"', ""),
                       encoding="utf-8")
    with pytest.raises(InputRejected, match=r"^row 1 \(line 2\): field permit \(BEWILLIGUNG\):"
                       r" value 'B-EU' has no entry in the permit table$"):
        normalise(part, LIMITS)


# -- files that are not exports of this mapping ----------------------------------------


@pytest.mark.parametrize(("data", "reason"), [
    (b'<?xml version="1.0"?><a/>', "the header lacks the mapped column(s) AHV_NR, BEWILLIGUNG"),
    (b"\x00\x01\x02PK garbage", "the header lacks the mapped column(s)"),
    (csv_bytes(GOOD, delimiter=","), "the header has no ';': is the delimiter ','?"),
    (b"", "the export is empty"),
    # a quote left open swallows the lines after it: where the next row starts is unknown
    (csv_bytes(GOOD.replace(";Becker;", ';"Becker;'), GOOD), "not readable as CSV: unexpected"
     " end of data (at line 3)"),
])
def test_a_file_that_is_not_such_an_export_is_rejected_naming_what_is_missing(
        tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        split(data, utf8_mapping(tmp_path))
    assert reason in str(caught.value)


@pytest.mark.parametrize(("data", "mapping"), [
    (HEADER.encode() + b"\r\n", "nova.toml"), (HEADER.encode(), "nova.toml"),
    (b'{"export": {"created": "2026-12-01", "persons": []}}', "nova-json.toml"),
])
def test_an_export_without_rows_is_not_relevant(data: bytes, mapping: str) -> None:
    result = split(data, MAPPINGS / mapping)
    assert result.not_relevant == NO_ROWS and not result.parts and not result.rejected_parts


@pytest.mark.parametrize("line_end", [b"\r\n", b""])
async def test_a_dropped_export_without_rows_is_stored_as_not_relevant(
        tmp_path: Path, line_end: bytes) -> None:
    """A day without mutations: the vendor writes the header alone, with its line end or
    (a writer that ends no line) without: then it may still be being written, and is taken
    once it has not changed for grace."""
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "grace": "300ms", "pattern": ["*.csv"], "mapping": str(MAPPINGS / "nova.toml")}
    async with harness(tmp_path, source_options=options) as h:
        h.feed("leer.csv", HEADER.encode() + line_end)
        await h.wait_for(lambda: [m.state for m in h.messages()] == ["not_relevant"])
        [stored] = h.messages()
    assert (stored.ref, stored.reason) == ("leer.csv", NO_ROWS)
    assert (tmp_path / "done" / "leer.csv").is_file()


@pytest.mark.parametrize("before", [b"\r\n", b";;;\r\n\r\n", b"sep=;\r\n", b"SEP=;\r\n\r\n"])
def test_blank_lines_and_excel_s_sep_line_before_the_header_are_skipped(
        tmp_path: Path, before: bytes) -> None:
    """Excel reads a first line sep=; as the delimiter and some exports write it; blank
    lines are skipped before the header as between rows. Lines keep their numbers."""
    result = split(before + csv_bytes(GOOD, GOOD.replace(";M;", ";X;")), utf8_mapping(tmp_path))
    lines = before.count(b"\n")
    assert [p.meta[ROW_META] for p in result.parts] == ["1"]
    assert [reason for _part, reason in result.rejected_parts] == [
        f"row 2 (line {lines + 3}): field sex (GESCHLECHT): value 'X' has no entry in the sex"
        " table"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"sep=,\r\n" + csv_bytes(GOOD, delimiter=","), "the file says its delimiter is ','"
     ' (sep=,), the mapping says \';\' (set delimiter = "," in the mapping if the export is'
     " written so) (at line 1)"),
    (b"\r\n;;\r\n", "the export is empty"),
    (b"\r\n" + csv_bytes(GOOD).replace(b";NAME;", b";NAME_;"),
     "the header lacks the mapped column(s) NAME (at line 2)"),
])
def test_what_comes_before_the_header_is_named_when_it_refuses_the_file(
        tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        split(data, utf8_mapping(tmp_path))
    assert str(caught.value) == reason


def test_a_header_in_another_case_is_refused_naming_the_columns_it_has(tmp_path: Path) -> None:
    """A vendor update that writes the header in lower case: the reason says what the header
    has, not only that every column is missing."""
    data = csv_bytes(GOOD).replace(b"NAME;VORNAME", b"Name;Vorname")
    with pytest.raises(InputRejected) as caught:
        split(data, utf8_mapping(tmp_path))
    assert str(caught.value) == (
        "the header lacks the mapped column(s) NAME, VORNAME; it has 'Name', 'Vorname':"
        " column names must match the mapping exactly, case too (at line 1)")


def test_windows_1252_needs_saying_so(tmp_path: Path) -> None:
    data = CSV_SAMPLE.read_bytes()
    with pytest.raises(InputRejected, match=r'not utf-8 text: byte 0xfc .*encoding = "windows-1252"'):
        split(data, utf8_mapping(tmp_path))
    assert len(split(data).parts) == 7  # the shipped mapping says windows-1252


@pytest.mark.parametrize(("data", "mapping"), [
    (csv_bytes(GOOD).decode().replace(";", "\t").encode("utf-16"), "nova.toml"),
    (b"\xfe\xff" + JSON_SAMPLE.read_text(encoding="utf-8").encode("utf-16-be"), "nova-json.toml"),
])
def test_a_utf16_export_is_refused_saying_so(data: bytes, mapping: str) -> None:
    """Excel's "Unicode text" is UTF-16: its byte order mark says so beyond doubt, and a
    reason about the header or a byte 0xff would send the operator the wrong way."""
    with pytest.raises(InputRejected, match=r"^the export is UTF-16 text \(its byte order mark"
                       r" says so\); save it as UTF-8 or Windows-1252$"):
        split(data, MAPPINGS / mapping)


def workbook() -> bytes:
    """An Excel workbook's shape: a zip of XML parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", "<row><c>M\u00fcller</c></row>" * 200)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "what"), [
    (workbook(), "a zip file, as an Excel workbook (.xlsx) is"),
    (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(range(256)) * 8,
     "an Excel workbook of the old kind (.xls)"),
])
@pytest.mark.parametrize("mapping", ["nova.toml", "nova-utf8"])
def test_a_workbook_saved_as_the_export_is_refused_saying_so(
        tmp_path: Path, data: bytes, what: str, mapping: str) -> None:
    """Excel's own format under the export's name: no byte of it, nor the encoding, is the
    point (not 'byte 0x81', not 'set encoding = windows-1252')."""
    path = utf8_mapping(tmp_path) if mapping == "nova-utf8" else MAPPINGS / mapping
    with pytest.raises(InputRejected) as caught:
        split(data, path)
    assert str(caught.value) == (f"the export is {what}, not CSV text; save it as CSV (in Excel:"
                                 ' "CSV (Trennzeichen-getrennt)" or "CSV UTF-8")')


def test_a_byte_order_mark_is_no_part_of_the_first_column(tmp_path: Path) -> None:
    result = split(b"\xef\xbb\xbf" + csv_bytes(GOOD), utf8_mapping(tmp_path))
    assert len(result.parts) == 1 and not result.rejected_parts


async def test_a_byte_order_mark_makes_the_file_utf8_whatever_the_mapping_says(
        tmp_path: Path) -> None:
    """The shipped mapping says windows-1252; a file with a UTF-8 BOM is still read as UTF-8,
    and one whose bytes after the mark are not UTF-8 is quarantined saying so."""
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.csv"], "mapping": str(MAPPINGS / "nova.toml")}
    cp1252 = csv_bytes(GOOD).decode("utf-8").encode("windows-1252")
    async with harness(tmp_path, source_options=options) as h:
        h.feed("utf8.csv", b"\xef\xbb\xbf" + csv_bytes(GOOD))
        await h.settled(1)
        [sent] = h.collected
        h.feed("mixed.csv", b"\xef\xbb\xbf" + cp1252)
        await h.wait_for(lambda: len(h.messages()) == 3)
        by_ref = {m.ref: m for m in h.messages()}
    assert by_ref["utf8.csv"].state == "split"
    assert "München".encode() in sent.payload  # GEBURTSORT, read as UTF-8
    bad = by_ref["mixed.csv"]
    assert bad.state == "quarantined"
    assert bad.reason is not None and bad.reason.startswith(
        "not utf-8 text: byte 0xfc, yet the file starts with a UTF-8 byte order mark")


def test_map_test_reads_a_file_with_a_byte_order_mark_as_utf8(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)  # nova: the shipped windows-1252 mapping
    export_file = tmp_path / "bom.csv"
    export_file.write_bytes(b"\xef\xbb\xbf" + csv_bytes(GOOD))
    assert main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export_file)]) == 0
    assert capsys.readouterr().out.endswith(f"{export_file}: 1 row, 1 mapped, 0 rejected\n")


def test_the_delimiter_is_configurable(tmp_path: Path) -> None:
    mapping = utf8_mapping(tmp_path, delimiter='","')
    data = csv_bytes(GOOD.replace(";Technikumstrasse;", ';"Technikumstrasse, Hinterhaus";'),
                     delimiter=",").replace(b'"Technikumstrasse, Hinterhaus"',
                                            b'"Technikumstrasse; Hinterhaus"')
    [message] = rows(split(data, mapping))
    assert b"<eCH-0010:street>Technikumstrasse; Hinterhaus</eCH-0010:street>" in message.xml


def test_line_ends_and_tabs_within_a_cell_become_single_spaces(tmp_path: Path) -> None:
    """A quoted cell may span lines; eCH-0223's text is xs:token, whose value has none."""
    data = csv_bytes(GOOD.replace(";Technikumstrasse;", ';"Technikumstrasse\r\n\tHinterhaus";'))
    [message] = rows(split(data, utf8_mapping(tmp_path)))
    assert b"<eCH-0010:street>Technikumstrasse Hinterhaus</eCH-0010:street>" in message.xml


def test_limits_apply_to_the_file_and_its_rows(tmp_path: Path) -> None:
    small = NormaliseContext(max_bytes=100, max_zip_entries=1, max_zip_bytes=1, max_zip_ratio=1)
    with pytest.raises(InputRejected, match=r"^the export of 1642 bytes is larger than the limit"
                       r" of 100 bytes \(\[limits\] max_document_bytes\)$"):
        normalise(export(CSV_SAMPLE.read_bytes(), MAPPINGS / "nova.toml"), small)
    with pytest.raises(InputRejected, match=r"more than 2 rows \(max_rows of the mapping\)"):
        split(csv_bytes(GOOD, GOOD, GOOD), utf8_mapping(tmp_path, max_rows="2"))


@pytest.mark.parametrize(("document", "reason"), [
    (b'{"export": {"persons": [', "not JSON: Expecting value (at line 1 column 25)"),
    (b'{"export": {}}', "the document has no 'export.persons'"),
    (b'{"export": null}', "the document has no 'export.persons' (records of the mapping):"
     " 'export' is null"),
    (b'{"export": {"persons": null}}', "'export.persons' (records of the mapping) is null, not a"
     " list of records; an export without rows gives an empty list"),
    (b'{"export": {"persons": {"a": 1}}}', "'export.persons' is not a list of records"),
    # where the document has its list, if it has one: what records should say
    (b'[{"event": {"type": "moveIn"}}]', "the document has no 'export.persons' (records of the"
     ' mapping); the document is a list (set records = "" in the mapping if it is the list of'
     " records)"),
    (b'{"data": {"ids": [1], "persons": [{"id": 1}]}}', "the document has no 'export.persons'"
     " (records of the mapping); it has a list at 'data.persons' (set records ="
     ' "data.persons" in the mapping if it is the list of records)'),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply (a fixed limit of the JSON reader, not"
     " a setting)"),
])
def test_json_that_is_no_export_is_rejected(document: bytes, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        split(document, MAPPINGS / "nova-json.toml")
    assert reason in str(caught.value)


def test_a_json_record_that_is_no_object_or_holds_an_object_where_a_value_belongs() -> None:
    """The reasons name JSON's kinds of value, as the export's author knows them."""
    good = json.loads(JSON_SAMPLE.read_text(encoding="utf-8"))["export"]["persons"][0]
    bad = json.loads(json.dumps(good))
    bad["person"]["name"]["official"] = {"de": "Nowak"}
    listed = json.loads(json.dumps(good))
    listed["person"]["name"]["first"] = ["Katarzyna", "Anna"]
    document = {"export": {"persons": [good, "Nowak", bad, None, 7, [good], listed]}}
    result = split(json.dumps(document).encode(), MAPPINGS / "nova-json.toml")
    assert len(result.parts) == 1
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2: field (row): a string, not an object",
        "row 3: field official_name (person.name.official): holds an object, not a value",
        "row 4: field (row): null, not an object",
        "row 5: field (row): a number, not an object",
        "row 6: field (row): a list, not an object",
        "row 7: field first_name (person.name.first): holds a list, not a value",
    ]


def test_a_json_true_or_false_is_read_only_through_a_table(tmp_path: Path) -> None:
    """A boolean where a name belongs is the export's fault: the name is not "true"."""
    mapping = tmp_path / "nova-json.toml"
    mapping.write_text((MAPPINGS / "nova-json.toml").read_text(encoding="utf-8").replace(
        'female = "2"', 'female = "2"\n"false" = "2"'), encoding="utf-8")
    document = json.loads(JSON_SAMPLE.read_text(encoding="utf-8"))
    persons = document["export"]["persons"]
    persons[0]["person"]["name"]["official"] = True
    persons[1]["person"]["address"]["houseNumber"] = False
    persons[2]["person"]["sex"] = False  # the sex table translates it
    result = split(json.dumps(document).encode(), mapping)
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 1: field official_name (person.name.official): holds true: only a field with a"
        " table reads true and false",
        "row 2: field house_number (person.address.houseNumber): holds false: only a field with"
        " a table reads true and false",
    ]
    [message] = rows(result)
    assert b"<eCH-0044:sex>2</eCH-0044:sex>" in message.xml


def test_a_json_number_written_as_an_integral_float_is_read_as_the_integer() -> None:
    document = json.loads(JSON_SAMPLE.read_text(encoding="utf-8"))
    persons = document["export"]["persons"]
    persons[0]["person"]["address"].update(zip=8400.0, houseNumber=12.0)  # as Excel writes
    persons[1]["person"]["address"]["zip"] = 8400.5
    result = split(json.dumps(document).encode(), MAPPINGS / "nova-json.toml")
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2: field zip_code (person.address.zip): '8400.5' is not a whole number"]
    first = rows(result)[0]
    assert first.facts["row"] == 1
    assert b"<eCH-0010:houseNumber>12</eCH-0010:houseNumber>" in first.xml
    assert b"<eCH-0010:swissZipCode>8400</eCH-0010:swissZipCode>" in first.xml


def test_a_csv_number_written_with_a_zero_fraction_is_read_as_the_integer(tmp_path: Path) -> None:
    """pandas writes a column of numbers with gaps as floats: ``8400.0``."""
    data = csv_bytes(GOOD.replace(";8400;", ";8400.0;"), GOOD.replace(";8400;", ";8400.5;"),
                     GOOD.replace(";8400;", ";8400.;"))
    result = split(data, utf8_mapping(tmp_path))
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2 (line 3): field zip_code (PLZ): '8400.5' is not a whole number",
        "row 3 (line 4): field zip_code (PLZ): '8400.' is not a whole number"]
    assert b"<eCH-0010:swissZipCode>8400</eCH-0010:swissZipCode>" in rows(result)[0].xml


def json_with_a_key_twice(record: int, key: str, value: str) -> bytes:
    """The JSON sample with ``key`` (a line of it) given again, value ``value``, in record
    ``record`` (0: in the document's ``export`` object, outside the records)."""
    text = JSON_SAMPLE.read_text(encoding="utf-8")
    start = text.index('"persons": [') if record else 0
    for _ in range(record):
        start = text.index('"event": {', start + 1)
    at = text.index(f'"{key}": ', start)
    line_start = text.rindex("\n", 0, at) + 1
    line = text[line_start:text.index("\n", at) + 1]
    indent = line[:len(line) - len(line.lstrip())]
    return (text[:line_start] + f'{indent}"{key}": {value},\n' + text[line_start:]
            ).encode("utf-8")


def test_a_json_record_giving_a_key_twice_is_rejected_alone_naming_key_and_field() -> None:
    mapping = MAPPINGS / "nova-json.toml"
    data = json_with_a_key_twice(2, "official", '"Muster"')
    assert json.loads(data)["export"]["persons"][1]["person"]["name"]["official"] == "Dubois"
    result = split(data, mapping)
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2: field (row): key 'person.name.official' (field official_name) given more than"
        " once in the record: which value is meant is unknown"]
    messages = rows(result)
    assert [m.facts["row"] for m in messages] == [1, 3]
    sample = rows(split(JSON_SAMPLE.read_bytes(), mapping))
    assert [(m.persons, m.facts) for m in messages] == [
        (s.persons, s.facts) for s in (sample[0], sample[2])]
    # an object holding mapped fields given twice
    result = split(json_with_a_key_twice(3, "name", '{"official": "Meier", "first": "Anna"}'),
                   mapping)
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 3: field (row): key 'person.name' (fields official_name, first_name) given more"
        " than once in the record: which value is meant is unknown"]
    assert len(result.parts) == 2
    # several keys, one of them read by no field
    data = json_with_a_key_twice(1, "type", '"moveOut"').replace(
        b'"religion": "121"', b'"religion": "121", "extra": 1, "extra": 2', 1)
    result = split(data, mapping)
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 1: field (row): keys 'event.type' (field event), 'person.extra' given more than"
        " once in the record: which value is meant is unknown"]
    assert len(result.parts) == 2


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("persons", "[]", "key 'export.persons' given more than once in the document"),
    ("municipality", "261", "key 'export.municipality' given more than once in the document"),
])
def test_a_json_document_giving_a_key_twice_outside_its_records_is_rejected(
        key: str, value: str, reason: str) -> None:
    with pytest.raises(InputRejected) as caught:
        split(json_with_a_key_twice(0, key, value), MAPPINGS / "nova-json.toml")
    assert str(caught.value) == f"{reason}: which value is meant is unknown"


def test_input_without_a_mapping_is_left_to_other_normalisers() -> None:
    assert normalise(RawInput("registry", "a.xml", b"<a/>", {}), LIMITS) is None


# -- the mapping file ------------------------------------------------------------------


def test_a_mapping_file_with_faults_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    text = (MAPPINGS / "nova.toml").read_text(encoding="utf-8")
    text = text.replace('W = "2"', 'W = "F"').replace('table = "marital"', 'table = "civil"')
    text = text.replace('vn = "AHV_NR"', 'vnr = "AHV_NR"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert [(key, reason) for file, key, reason in caught.value.problems
            if file == str(path)] == [("fields.vnr", "unknown target; did you mean vn?")]
    text = text.replace('vnr = "AHV_NR"', 'vn = "AHV_NR"')
    text = text.replace('date_format = "%d.%m.%Y"', 'date_format = "dd.mm.yyyy"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert [(key, reason) for _file, key, reason in caught.value.problems] == [
        ("date_format", "'dd.mm.yyyy' does not read dates: write it with %d (day), %m (month)"
         " and %Y (year), e.g. %d.%m.%Y"),
        ("tables.sex.W", "'F' is not a valid sex code; sex codes: 1, 2, 3"),
        ("fields.marital_status.table", "no table 'civil'; tables: event, marital, permit,"
         " religion, sex"),
    ]


def test_only_the_nationality_lists_several_columns(tmp_path: Path) -> None:
    path = utf8_mapping(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace(
        'nationality = "STAATSANGEHOERIGKEIT"', "nationality = []").replace(
        'town = "ORT"', 'town = ["ORT", "WOHNORT"]'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert [(key, reason) for _file, key, reason in caught.value.problems] == [
        ("fields.nationality", "an empty list names no column"),
        ("fields.town", "town is read from one column or path; only nationality may list"
         " several")]


@pytest.mark.parametrize(("key", "toml"), [
    ("date_format", 'date_format = "%d.%m.%y"'),
    ("fields.event_date.format",
     'event_date = { column = "EREIGNIS_DATUM", format = "%y-%m-%d" }'),
])
def test_a_two_digit_year_is_refused_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, toml: str) -> None:
    """%y reads 30 as 2030: a person born in 1930 would be born in the future."""
    config = gateway_dir(tmp_path)
    mapping = tmp_path / "mappings" / "nova.toml"
    text = mapping.read_text(encoding="utf-8")
    line = toml.split(" = ", 1)[0]
    text = "\n".join(toml if row.startswith(f"{line} = ") else row for row in text.splitlines())
    mapping.write_text(text, encoding="utf-8")
    assert main(["--config", str(config), "check-config"]) == 2
    printed = "".join(capsys.readouterr())
    assert f"{mapping}: {key}: " in printed and "has a two-digit year (%y)" in printed, printed


def test_fixed_values_and_country_tables_are_checked_when_the_mapping_is_read(
        tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    text = (MAPPINGS / "nova.toml").read_text(encoding="utf-8")
    text = text.replace('canton = { value = "ZH" }', 'canton = { value = "ZX" }')
    text = text.replace('municipality_id = { value = "230" }', 'municipality_id = { value = "23O" }')
    text = text.replace('nationality = "STAATSANGEHOERIGKEIT"',
                        'nationality = { column = "STAATSANGEHOERIGKEIT", table = "land" }')
    text += '\n[tables.land]\nDeutschland = "DE"\nAtlantis = "AQ"\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert [(key, reason) for _file, key, reason in caught.value.problems] == [
        ("tables.land.Atlantis", "'AQ' is not in [countries]"),
        ("fields.municipality_id.value", "'23O' is not a whole number"),
        ("fields.canton.value", "'ZX' is not a canton code (add a table translating the"
         " export's values)"),
    ]


def test_a_country_table_translates_names_to_the_countries_listed(tmp_path: Path) -> None:
    mapping = utf8_mapping(tmp_path)
    text = mapping.read_text(encoding="utf-8").replace(
        'nationality = "STAATSANGEHOERIGKEIT"',
        'nationality = { column = "STAATSANGEHOERIGKEIT", table = "land" }')
    mapping.write_text(text + '\n[tables.land]\nDeutschland = "DE"\n', encoding="utf-8")
    data = csv_bytes(GOOD.replace(";DE;ledig;", ";Deutschland;ledig;"), GOOD)
    result = split(data, mapping)
    [message] = rows(result)
    assert message.persons[0].facts()["country"] == 8207
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 2 (line 3): field nationality (STAATSANGEHOERIGKEIT): value 'DE' has no entry in"
        " the land table"]


# -- the command line ------------------------------------------------------------------


def gateway_dir(tmp_path: Path) -> Path:
    """A configuration with the Nova sources, as an operator sets it up."""
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[store]\npath = "gateway.db"\n'
        '[sources.nova]\ntype = "folder"\npath = "in"\npattern = ["*.csv"]\n'
        'mapping = "mappings/nova.toml"\n'
        '[sources.nova-json]\ntype = "folder"\npath = "in-json"\npattern = ["*.json"]\n'
        'mapping = "mappings/nova-json.toml"\n'
        '[sources.registry]\ntype = "folder"\npath = "registry"\n', encoding="utf-8")
    return config


def test_map_test_prints_the_messages_and_the_rejected_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    out = tmp_path / "out"
    code = main(["--config", str(config), "map-test", "--source", "nova", "--out", str(out),
                 str(CSV_SAMPLE)])
    printed = capsys.readouterr()
    assert code == 1
    assert printed.out.count("<eCH-0223:personEventMessage") == 7
    assert printed.out.count("==> row ") == 7 and "==> row 7 <==" not in printed.out
    assert printed.err.splitlines() == [
        f"{CSV_SAMPLE}: row 7 (line 8): field permit (BEWILLIGUNG): value 'S' has no entry in"
        " the permit table",
        f"{CSV_SAMPLE}: 8 rows, 7 mapped, 1 rejected"]
    schemas = official_schema_set()
    written = sorted(out.glob("row-*.xml"))
    assert [p.name for p in written] == [f"row-000{n}.xml" for n in (1, 2, 3, 4, 5, 6, 8)]
    assert all(schemas.validate(p.read_bytes()).valid for p in written)


def test_map_test_summary_and_a_clean_export_exit_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    code = main(["--config", str(config), "map-test", "--source", "nova-json", "--summary",
                 str(JSON_SAMPLE)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("row 1: moveIn, messageId ")
    assert lines[0].endswith(", person vn:7563047500962 local:MU.230:104402")
    assert lines[-1] == f"{JSON_SAMPLE}: 3 rows, 3 mapped, 0 rejected"


def test_map_test_rejects_a_file_that_is_no_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    code = main(["--config", str(config), "map-test", "--source", "nova-json", str(CSV_SAMPLE)])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"{CSV_SAMPLE}: rejected: not utf-8 text")


def test_map_test_says_an_export_without_rows_has_nothing_to_send(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    empty = tmp_path / "leer.csv"
    empty.write_bytes(HEADER.encode() + b"\r\n")
    assert main(["--config", str(config), "map-test", "--source", "nova", str(empty)]) == 0
    assert capsys.readouterr().out == f"{empty}: {NO_ROWS}\n"


def test_map_test_says_when_the_file_cannot_be_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    missing = tmp_path / "nope.csv"
    assert main(["--config", str(config), "map-test", "--source", "nova", str(missing)]) == 3
    assert capsys.readouterr().err == (f"ech-gateway map-test: cannot read {missing}:"
                                       " No such file or directory\n")


def test_map_test_needs_a_source_with_a_mapping(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    assert main(["--config", str(config), "map-test", "--source", "nope", str(CSV_SAMPLE)]) == 2
    assert "sources.nope: no such source; sources: nova, nova-json, registry" in (
        capsys.readouterr().err)
    assert main(["--config", str(config), "map-test", "--source", "registry",
                 str(CSV_SAMPLE)]) == 2
    assert "sources.registry.mapping: the source names no mapping file" in capsys.readouterr().err


def test_check_config_reports_mapping_problems_with_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    assert main(["--config", str(config), "check-config"]) == 0
    capsys.readouterr()
    mapping = tmp_path / "mappings" / "nova.toml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('B-EU = "0201"',
                                                                   'B-EU = "B"'),
                       encoding="utf-8")
    assert main(["--config", str(config), "check-config"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{mapping}: tables.permit.B-EU: 'B' is not a valid permit code; permit codes: 01,"
        " 0102, 02, 0201, 0202, 03, 0301, 0302, 04, 0401, 0402, 05, 0503, 06, 0601, 060101,"
        " 060102, 0602, 060201, 060202, 07, 0701, 070101, 070102, 070103, 070104, 070105, 0702,"
        " 070201, 070202, 070204, 070205, 070206, 070907, 08, 0804, 09, 0905, 10, 1006, 100601,"
        " 100602, 100603, 11, 1107, 12, 1208, 1300 (mapping of sources.nova)"]
    mapping.unlink()
    assert main(["--config", str(config), "check-config"]) == 2
    assert f"{config}: sources.nova.mapping: no mapping file {mapping}" in (
        capsys.readouterr().out)


def test_a_row_the_schema_refuses_is_rejected_alone_with_the_schema_s_reason(
        tmp_path: Path) -> None:
    long_street = "Technikumstrasse" * 4
    result = split(csv_bytes(GOOD.replace(";Technikumstrasse;", f";{long_street};"), GOOD),
                   utf8_mapping(tmp_path))
    assert [p.meta[ROW_META] for p in result.parts] == ["2"]
    [(_part, reason)] = result.rejected_parts
    assert reason.startswith("row 1 (line 2): not valid eCH-0223 1.5: Element 'eCH-0010:street':")
    assert "maximum length of '60'" in reason


@pytest.mark.parametrize(("written", "element"), [
    ("1991", b"<eCH-0044:year>1991</eCH-0044:year>"),
    ("03.1991", b"<eCH-0044:yearMonth>1991-03</eCH-0044:yearMonth>"),
    ("00.03.1991", b"<eCH-0044:yearMonth>1991-03</eCH-0044:yearMonth>"),
    ("00.00.1991", b"<eCH-0044:year>1991</eCH-0044:year>"),
])
def test_a_date_of_birth_known_in_part(tmp_path: Path, written: str, element: bytes) -> None:
    [message] = rows(split(csv_bytes(GOOD.replace("14.03.1991", written)), utf8_mapping(tmp_path)))
    assert message.xml.count(element) == 2  # identification and birth data
    assert official_schema_set().validate(message.xml).valid


def test_another_encoding_a_column_twice_a_number_too_long_reject_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputRejected, match="the export is UTF-8 text, the mapping says"
                       " cp1252"):
        split(csv_bytes(GOOD))  # the shipped mapping says windows-1252
    data = csv_bytes(GOOD + ";Muster").replace(b"WEGZUG_LAND", b"WEGZUG_LAND;NAME")
    with pytest.raises(InputRejected, match=r"names the mapped column\(s\) NAME more than once"):
        split(data, utf8_mapping(tmp_path))
    with pytest.raises(InputRejected, match=r"^not JSON the gateway reads: a number of more than"
                       r" 4300 digits \(a fixed limit of the JSON reader, not a setting\)$"):
        split(b'{"export": {"persons": [' + b"1" * 5000 + b"]}}", MAPPINGS / "nova-json.toml")


def test_the_shipped_example_configuration_maps_the_shipped_exports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """config/ as the README tells an operator to use it: conf.d example renamed, map-test run."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    conf_d = tmp_path / "config" / "conf.d"
    (conf_d / "30-nova.toml.example").rename(conf_d / "30-nova.toml")
    config = tmp_path / "config" / "gateway.toml"
    examples = tmp_path / "config" / "examples" / "nova"
    assert main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(examples / "einwohner-2026-12-01.csv")]) == 1
    assert main(["--config", str(config), "map-test", "--source", "nova-json", "--summary",
                 str(examples / "einwohner-2026-12-01.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(" rows, " in line for line in lines) == 2
    assert len([line for line in lines if line.startswith("row ")]) == 10


# -- end to end: a running gateway -----------------------------------------------------


async def test_a_dropped_export_becomes_a_message_per_row_and_its_bad_row_is_quarantined(
        tmp_path: Path) -> None:
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.csv"], "mapping": str(MAPPINGS / "nova.toml")}
    async with harness(tmp_path, source_options=options) as h:
        h.feed("einwohner.csv", CSV_SAMPLE.read_bytes())
        deliveries = await h.settled(7)
        await h.wait_for(lambda: len(h.messages()) == 9)
        messages = h.messages()
        collected = list(h.collected)
    db = tmp_path / "gateway.db"
    export_file, *row_messages = messages
    assert (export_file.ref, export_file.state) == ("einwohner.csv", "split")
    assert export_file.reason == "split into 8 parts (1 rejected)"
    assert states(db, "SELECT DISTINCT parent FROM messages WHERE id > ?",
                  (export_file.id,)) == [(export_file.id,)]
    by_ref = {m.ref: m for m in row_messages}
    assert sorted(by_ref) == [f"einwohner.csv row {n}" for n in range(1, 9)]
    bad = by_ref.pop("einwohner.csv row 7")
    assert (bad.state, bad.reason) == ("quarantined", "row 7 (line 8): field permit (BEWILLIGUNG):"
                                       " value 'S' has no entry in the permit table")
    assert {m.state for m in by_ref.values()} == {"routed"}
    assert sorted(d.message_id for d in deliveries) == sorted(m.message_id for m in by_ref.values())
    assert {d.state for d in deliveries} == {"delivered"}
    schemas = official_schema_set()
    assert len(collected) == 7
    assert all(schemas.validate(item.payload).valid for item in collected)
    assert (tmp_path / "done" / "einwohner.csv").is_file()
    persons = states(db, "SELECT key FROM person_keys WHERE key LIKE 'vn:%'")
    assert len(persons) == 7  # the seven people of the good rows, found by VN


async def test_a_dropped_json_export_with_a_key_twice_in_a_record_sends_the_other_records(
        tmp_path: Path) -> None:
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.json"], "mapping": str(MAPPINGS / "nova-json.toml")}
    async with harness(tmp_path, source_options=options) as h:
        h.feed("einwohner.json", json_with_a_key_twice(2, "official", '"Muster"'))
        deliveries = await h.settled(2)
        await h.wait_for(lambda: len(h.messages()) == 4)
        messages = h.messages()
    export_file, *row_messages = messages
    assert (export_file.ref, export_file.state) == ("einwohner.json", "split")
    assert export_file.reason == "split into 3 parts (1 rejected)"
    by_ref = {m.ref: m for m in row_messages}
    bad = by_ref.pop("einwohner.json row 2")
    assert (bad.state, bad.reason) == (
        "quarantined", "row 2: field (row): key 'person.name.official' (field official_name)"
        " given more than once in the record: which value is meant is unknown")
    assert sorted(by_ref) == ["einwohner.json row 1", "einwohner.json row 3"]
    assert {m.state for m in by_ref.values()} == {"routed"}
    assert sorted(d.message_id for d in deliveries) == sorted(m.message_id for m in by_ref.values())
    assert {d.state for d in deliveries} == {"delivered"}


@pytest.mark.parametrize(("sample", "mapping", "good"), [
    (CSV_SAMPLE, "nova.toml", 7), (JSON_SAMPLE, "nova-json.toml", 3)])
async def test_an_export_written_in_place_with_pauses_is_waited_for_not_rejected(
        tmp_path: Path, sample: Path, mapping: str, good: int) -> None:
    """FIELD.md "Writers write in place": pauses longer than ``settle`` leave a cut export."""
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "50ms",
               "pattern": ["*.csv", "*.json"], "mapping": str(MAPPINGS / mapping)}
    async with harness(tmp_path, source_options=options) as h:
        writer = await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), "0.3", "4", f"{h.inbox / sample.name}={sample}")
        assert await writer.wait() == 0
        await h.settled(good)
        await asyncio.sleep(0.3)  # nothing more comes
        messages = h.messages()
    export_file, *row_messages = messages
    assert (export_file.ref, export_file.state) == (sample.name, "split")
    assert sum(m.state == "routed" for m in row_messages) == good
    assert (tmp_path / "done" / sample.name).read_bytes() == sample.read_bytes()


async def test_the_init_configuration_with_the_nova_source_and_worker_processes(
        tmp_path: Path) -> None:
    """As deployed: init's rules, a worker process (plugins from their entry points), sedex."""
    config = write_initial_config(tmp_path)
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    (tmp_path / "conf.d" / "30-nova.toml").write_text(
        '[gateway]\nworkers = 1\n[dispatcher]\nidle_poll = "50ms"\n'
        '[sources.nova]\ntype = "folder"\npath = "../nova/export"\npattern = ["*.csv"]\n'
        'mapping = "../mappings/nova.toml"\npoll_interval = "50ms"\nsettle = "50ms"\n',
        encoding="utf-8")
    db = tmp_path / "gateway.db"
    (tmp_path / "nova" / "export").mkdir(parents=True)

    def by_state() -> dict[str, int]:
        return dict(states(db, "SELECT state, count(*) FROM messages GROUP BY state"))

    async with running(config, get_plugin_manager()) as gateway:
        assert gateway.pool.size == 1
        drop(tmp_path / "nova" / "export", "einwohner.csv", CSV_SAMPLE.read_bytes())
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")
                    == [(7,)], timeout=30)
    # every good row is about a foreign national before its event (the naturalised
    # person too: nationality_before), so init's rule sends it to the canton
    assert by_state() == {"split": 1, "routed": 7, "quarantined": 1}
    decided = states(db, "SELECT DISTINCT detail FROM journal WHERE event = 'message.decided'")
    assert decided and all("foreign-nationals" in row[0] for row in decided)
    payloads = sorted((tmp_path / "sedex" / "outbox").glob("data_*"))
    assert len(payloads) == 7


async def test_a_quarantine_reason_shows_the_folder_of_conf_d_resolved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """conf.d/30-nova.toml says path = "../nova/export-json": the operator is shown
    .../nova/export-json/..., not .../conf.d/../nova/export-json/..."""
    config = write_initial_config(tmp_path)
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    (tmp_path / "conf.d" / "30-nova.toml").write_text(
        '[sources.nova-json]\ntype = "folder"\npath = "../nova/export-json"\n'
        'pattern = ["*.json"]\nmapping = "../mappings/nova-json.toml"\npoll_interval = "50ms"\n'
        'settle = "50ms"\ngrace = "200ms"\n', encoding="utf-8")
    db = tmp_path / "gateway.db"
    folder = tmp_path / "nova" / "export-json"
    folder.mkdir(parents=True)
    async with running(config, get_plugin_manager()):
        drop(folder, "cut.json", b'{"export": {"persons": [')
        await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])
    [(mid,)] = states(db, "SELECT id FROM messages")
    assert main(["--config", str(config), "messages", "show", str(mid)]) == 0
    shown = capsys.readouterr().out
    assert f"unfinished file {folder.resolve() / 'cut.json'}: " in shown
    assert ".." not in shown


async def test_a_rejected_row_replayed_after_the_mapping_is_fixed_is_sent(tmp_path: Path) -> None:
    mapping = utf8_mapping(tmp_path)
    options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s",
               "pattern": ["*.csv"], "mapping": str(mapping)}
    separated = GOOD.replace(";ledig;", ";getrennt;").replace("104211", "104212")
    async with harness(tmp_path, source_options=options) as h:
        h.feed("export.csv", csv_bytes(GOOD, separated))
        await h.settled(1)
        await h.wait_for(lambda: [m.state for m in h.messages()].count("quarantined") == 1)
        [bad] = [m for m in h.messages() if m.state == "quarantined"]
        assert bad.reason == ("row 2 (line 3): field marital_status (ZIVILSTAND): value"
                              " 'getrennt' has no entry in the marital table")
        text = mapping.read_text(encoding="utf-8")
        mapping.write_text(text.replace('ledig = "1"', 'ledig = "1"\ngetrennt = "2"'),
                           encoding="utf-8")
        gateway = h.gateway  # what `messages replay` does, on the running gateway's store
        again = Reprocessor(gateway.store, gateway.settings, gateway.pm)
        assert (await again.again(bad.id)).state == "routed"
        gateway.dispatcher.wake()
        deliveries = await h.settled(2)
    assert [d.message for d in deliveries][-1] == bad.id
    assert {d.state for d in deliveries} == {"delivered"}


def test_rules_explain_reads_an_export_as_its_source_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    code = main(["--config", str(config), "rules", "explain", "--source", "nova",
                 str(CSV_SAMPLE)])
    out = capsys.readouterr().out
    assert code == 1  # the bad row would be quarantined
    assert f"{CSV_SAMPLE.name}: an export of 8 rows" in out
    assert (f"  {CSV_SAMPLE.name} row 7: rejected: row 7 (line 8): field permit (BEWILLIGUNG):"
            " value 'S' has no entry in the permit table") in out
    assert f"  {CSV_SAMPLE.name} row 1: personEventMessage, person vn:7565658670652" in out


async def test_a_corrected_file_resubmitted_for_a_bad_row_is_mapped_and_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's path: fix the row in a CSV of its own, `messages resubmit` it."""
    config = write_initial_config(tmp_path)
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    (tmp_path / "conf.d" / "30-nova.toml").write_text(
        '[dispatcher]\nidle_poll = "50ms"\n'
        '[sources.nova]\ntype = "folder"\npath = "../nova/export"\npattern = ["*.csv"]\n'
        'mapping = "../mappings/nova.toml"\npoll_interval = "50ms"\nsettle = "50ms"\n',
        encoding="utf-8")
    db = tmp_path / "gateway.db"
    (tmp_path / "nova" / "export").mkdir(parents=True)
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "nova" / "export", "einwohner.csv", CSV_SAMPLE.read_bytes())
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state = 'routed'")
                    == [(7,)], timeout=30)
    [(bad,)] = states(db, "SELECT id FROM messages WHERE state = 'quarantined'")
    lines = CSV_SAMPLE.read_bytes().split(b"\r\n")
    fixed = tmp_path / "row7.csv"
    fixed.write_bytes(lines[0] + b"\r\n" + lines[7].replace(b";S;;", b";F;31.03.2027;") + b"\r\n")
    argv = ["--config", str(config), "messages", "resubmit", str(bad), str(fixed)]
    assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out.endswith(f"corrects message {bad} (now handled): split\n")
    assert states(db, "SELECT count(*) FROM messages WHERE state = 'routed'") == [(8,)]
    [(correction,)] = states(db, "SELECT id FROM messages WHERE ref = 'row7.csv'")
    assert states(db, "SELECT state, parent FROM messages WHERE ref = 'row7.csv row 1'") == [
        ("routed", correction)]
