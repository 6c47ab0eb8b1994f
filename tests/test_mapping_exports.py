"""Exports as Excel and registries really write them: dates in another form than the
mapping's, a title above the header, encodings beyond UTF-8 and Windows-1252.

Real files throughout, written as Excel writes them (Windows-1252 or ISO-8859-15,
CRLF, ``;``, a title row padded with delimiters, a byte order mark), the shipped
Nova mapping, the real command line, a gateway made as ``ech-gateway init`` makes
it, and the official eCH-0223 1.5 XSD as the oracle.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gateway.api import ConfigError, InputRejected
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, running, states, until
from plugins.mapping.loading import load_mapping
from plugins.mapping.normaliser import ROW_META, normalise
from tests.official import official_schema_set
from tests.test_mapping import CSV_SAMPLE, LIMITS, MAPPINGS, rows, split

#: The shipped export: Windows-1252, CRLF, ``;``, 25 columns, dates as 14.03.1991.
SAMPLE = CSV_SAMPLE.read_bytes().decode("windows-1252")
WIDTH = SAMPLE.splitlines()[0].count(";")
#: How Excel saves a sheet with a title in A1 and an empty row 2: padded with delimiters.
TITLE = f"Export Einwohnerkontrolle 01.12.2026{';' * WIDTH}\r\n{';' * WIDTH}\r\n"
#: The ISO form of every date in the sample (14.03.1991 -> 1991-03-14).
ISO_SAMPLE = re.sub(r"\b(\d\d)\.(\d\d)\.(\d{4})\b", r"\3-\2-\1", SAMPLE)


def excel(text: str, encoding: str = "windows-1252") -> bytes:
    return text.encode(encoding)


def mapping_with(tmp_path: Path, old: str, new: str, name: str = "nova.toml") -> Path:
    """The shipped Nova mapping with one line changed."""
    text = (MAPPINGS / "nova.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def gateway_dir(tmp_path: Path) -> Path:
    """``ech-gateway init`` with the example mappings and conf.d/30-nova.toml, as
    config/README.md tells an operator to set them up (fast polling for the test)."""
    config = write_initial_config(tmp_path)
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    example = (MAPPINGS.parent / "conf.d" / "30-nova.toml.example").read_text(encoding="utf-8")
    fast = 'poll_interval = "50ms"\nsettle = "50ms"\nmapping = '
    (tmp_path / "conf.d" / "30-nova.toml").write_text(example.replace("mapping = ", fast),
                                                      encoding="utf-8")
    for folder in ("export", "export-json"):
        (tmp_path / "nova" / folder).mkdir(parents=True, exist_ok=True)
    return config


# -- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "normalised"), [
    ("latin-1", "iso8859-1"), ("ISO-8859-1", "iso8859-1"), ("iso-8859-15", "iso8859-15"),
    ("cp1252", "cp1252"), ("Windows-1252", "cp1252"), ("utf-8-sig", "utf-8"), ("UTF8", "utf-8")])
def test_any_text_encoding_python_knows_is_accepted_normalised(
        tmp_path: Path, declared: str, normalised: str) -> None:
    path = mapping_with(tmp_path, 'encoding = "windows-1252"', f'encoding = "{declared}"')
    assert load_mapping(path).encoding == normalised


@pytest.mark.parametrize(("declared", "reason"), [
    ("latin-9x", "unknown encoding 'latin-9x'"),
    ("base64", "'base64' is no text encoding"),
    ("utf-16", "'utf-16' does not write the characters of ASCII as ASCII bytes (as UTF-16,"
     " UTF-32 and EBCDIC do not), so the reader would find no delimiter and no line end"),
])
def test_check_config_refuses_an_encoding_it_cannot_read_naming_key_and_examples(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], declared: str, reason: str) -> None:
    config = gateway_dir(tmp_path)
    mapping = tmp_path / "mappings" / "nova.toml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        'encoding = "windows-1252"', f'encoding = "{declared}"'), encoding="utf-8")
    assert main(["--config", str(config), "check-config"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f'{mapping}: encoding: {reason}; e.g. "utf-8", "windows-1252", "iso-8859-15" or'
        ' "latin-1" (mapping of sources.nova)']
    with pytest.raises(ConfigError):
        load_mapping(mapping)


#: Two people whose names need ISO-8859-15 (Š, Ž; € in the street): bytes A6, B4, A4.
LATIN9 = SAMPLE.split("\r\n")
LATIN9_ROWS = "\r\n".join([
    LATIN9[0],
    LATIN9[1].replace(";Becker;Lukas;", ";Šuštar;Žiga;").replace(";Technikumstrasse;",
                                                                 ";Platz des €uro;"),
    LATIN9[2].replace(";Krasniqi;Arta;", ";Žagar;Špela;"),
]) + "\r\n"


def test_an_iso_8859_15_export_arrives_with_s_z_and_euro_in_the_ech0223_output(
        tmp_path: Path) -> None:
    data = excel(LATIN9_ROWS, "iso-8859-15")
    assert data.count(b"\xa6") == 2 and data.count(b"\xb4") == 2 and b"\xa4" in data  # Š Ž €
    latin9 = mapping_with(tmp_path, 'encoding = "windows-1252"', 'encoding = "iso-8859-15"')
    first, second = rows(split(data, latin9))
    schemas = official_schema_set()
    assert schemas.validate(first.xml).valid and schemas.validate(second.xml).valid
    for name in ("<eCH-0044:officialName>Šuštar</eCH-0044:officialName>",
                 "<eCH-0044:firstName>Žiga</eCH-0044:firstName>",
                 "<eCH-0010:street>Platz des €uro</eCH-0010:street>"):
        assert name.encode() in first.xml, name
    assert "<eCH-0044:officialName>Žagar</eCH-0044:officialName>".encode() in second.xml


def test_windows_1252_under_an_iso_8859_15_mapping_is_refused_not_sent_with_controls(
        tmp_path: Path) -> None:
    """Š is 0x8a in Windows-1252, a C1 control character in ISO-8859-15: no name of the
    file would be right, so the file is refused naming the byte and the encoding."""
    latin9 = mapping_with(tmp_path, 'encoding = "windows-1252"', 'encoding = "iso-8859-15"')
    data = excel(LATIN9_ROWS.replace("€", "E"), "windows-1252")
    with pytest.raises(InputRejected) as caught:
        split(data, latin9)
    offset = data.index(b"\x8a")
    assert str(caught.value) == (
        "byte 0x8a is a control character in iso8859-15, no letter: the export is"
        ' Windows-1252 text (set encoding = "windows-1252" in the mapping if the export is'
        f" written so) (at byte {offset})")


#: Ivan Šimunovic in row 1, Arta Krasniqi of Prishtinë in row 2. ``ć`` is in neither
#: ISO-8859-15 nor Windows-1252: a registry writing either writes ``c``.
SIMUNOVIC = "\r\n".join([LATIN9[0], LATIN9[1].replace(";Becker;Lukas;", ";Šimunovic;Ivan;"),
                         LATIN9[2]]) + "\r\n"
#: Why row 1 of SIMUNOVIC written in ISO-8859-15 is rejected under a Windows-1252 mapping.
SIGN_OF_LATIN9 = (
    "row 1 (line 2): field official_name (NAME): '¦' (byte 0xa6 in cp1252) is in no name,"
    " place or street: the file looks like ISO-8859-15, where byte 0xa6 is 'Š' (set"
    ' encoding = "iso-8859-15" in the mapping if the export is written so)')


def test_an_iso_8859_15_name_under_a_windows_1252_mapping_rejects_its_row_not_sends_it_as_sign(
        tmp_path: Path) -> None:
    """Š is 0xa6 in ISO-8859-15, which Windows-1252 (and Latin-1) reads as ¦: the row is
    rejected naming field, sign, byte and the encoding to set, not sent as "¦imunovic". The
    other row maps: its ë is the same byte in both. The same file under iso-8859-15 maps
    with Š; a Windows-1252 file with its Š (0x8a) maps, and a ½ or ¤ where no name, place
    or street is read (a house number, a comment column the mapping does not read) is
    taken as it is."""
    latin9 = excel(SIMUNOVIC, "iso-8859-15")
    assert b";\xa6imunovic;" in latin9
    for mapping in (MAPPINGS / "nova.toml",
                    mapping_with(tmp_path, 'encoding = "windows-1252"', 'encoding = "latin-1"')):
        result = split(latin9, mapping)
        reasons = [reason for _part, reason in result.rejected_parts]
        codec = "cp1252" if mapping.parent == MAPPINGS else "iso8859-1"
        assert reasons == [SIGN_OF_LATIN9.replace("cp1252", codec)]
        [arta] = rows(result)
        assert b"<eCH-0044:officialName>Krasniqi</eCH-0044:officialName>" in arta.xml

    fixed = mapping_with(tmp_path, 'encoding = "windows-1252"', 'encoding = "iso-8859-15"')
    ivan, _arta = rows(split(latin9, fixed))
    assert official_schema_set().validate(ivan.xml).valid
    assert "<eCH-0044:officialName>Šimunovic</eCH-0044:officialName>".encode() in ivan.xml

    header, ivan_row, arta_row = SIMUNOVIC.splitlines()
    cp1252 = excel("\r\n".join([
        header + ";BEMERKUNG", ivan_row.replace(";Technikumstrasse;42;",
                                               ";Technikumstrasse;42½;") + ";½ Tag, 20 ¤",
        arta_row + ";"]) + "\r\n")
    assert b";\x8aimunovic;" in cp1252 and b";42\xbd;" in cp1252
    ivan, _arta = rows(split(cp1252))
    assert "<eCH-0044:officialName>Šimunovic</eCH-0044:officialName>".encode() in ivan.xml
    assert "<eCH-0010:houseNumber>42½</eCH-0010:houseNumber>".encode() in ivan.xml


def test_map_test_shows_the_row_rejected_for_a_sign_of_iso_8859_15(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    export_file = tmp_path / "einwohner-latin9.csv"
    export_file.write_bytes(excel(SIMUNOVIC, "iso-8859-15"))
    assert main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export_file)]) == 1
    mapped, rejected, counts = capsys.readouterr().out.splitlines()
    assert mapped.startswith("row 2: moveIn, messageId ")
    assert rejected == f"{export_file}: {SIGN_OF_LATIN9}"
    assert counts == f"{export_file}: 2 rows, 1 mapped, 1 rejected"


def test_signs_of_iso_8859_15_in_every_row_are_said_once_for_the_file() -> None:
    """Š, Ž and € of LATIN9_ROWS read as Windows-1252: each row says its signs together,
    the file what all rows have, each sign and the encoding to set once."""
    result = split(excel(LATIN9_ROWS, "iso-8859-15"))
    assert result.parts == ()
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 1 (line 2): fields official_name (NAME), first_name (VORNAME), street (STRASSE):"
        " '¦' (byte 0xa6), '\u00b4' (byte 0xb4), '¤' (byte 0xa4) in cp1252 are in no name, place or"
        " street: the file looks like ISO-8859-15, where those bytes are 'Š', 'Ž', '€' (set"
        ' encoding = "iso-8859-15" in the mapping if the export is written so)',
        "row 2 (line 3): fields official_name (NAME), first_name (VORNAME): '\u00b4' (byte 0xb4),"
        " '¦' (byte 0xa6) in cp1252 are in no name, place or street: the file looks like"
        " ISO-8859-15, where those bytes are 'Ž', 'Š' (set encoding = \"iso-8859-15\" in the"
        " mapping if the export is written so)"]
    assert result.rejected_warnings == (
        "all 2 rows are rejected; what they have in common: fields official_name (NAME),"
        " first_name (VORNAME), street (STRASSE): '¦' (byte 0xa6), '\u00b4' (byte 0xb4), '¤' (byte"
        " 0xa4) in cp1252 are in no name, place or street: the file looks like ISO-8859-15,"
        " where those bytes are 'Š', 'Ž', '€' (set encoding = \"iso-8859-15\" in the mapping if"
        " the export is written so)",)


def test_a_rejected_row_read_again_in_the_encoding_set_since(tmp_path: Path) -> None:
    """What ``messages replay`` does with a row rejected for a sign of ISO-8859-15 once the
    mapping says iso-8859-15: its values, stored as Windows-1252 read them, are read again
    from the same bytes; not sent as "¦imunovic". A row whose bytes the new encoding reads
    as a control character (0x80, Windows-1252's €) is rejected saying so."""
    mixed = excel(SIMUNOVIC, "iso-8859-15").replace(b";Technikumstrasse;",
                                                    b";Technikumstrasse \x80;", 1)
    mapping = tmp_path / "nova.toml"
    shutil.copy(MAPPINGS / "nova.toml", mapping)
    latin9, mixed_up = split(excel(SIMUNOVIC, "iso-8859-15"), mapping), split(mixed, mapping)
    assert [reason for _p, reason in latin9.rejected_parts] == [SIGN_OF_LATIN9]
    assert [reason for _p, reason in mixed_up.rejected_parts] == [SIGN_OF_LATIN9]
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        'encoding = "windows-1252"', 'encoding = "iso-8859-15"'), encoding="utf-8")

    [(part, _reason)] = latin9.rejected_parts
    ivan = normalise(part, LIMITS)
    assert ivan is not None and ivan.kind == "personEventMessage"
    assert "<eCH-0044:officialName>Šimunovic</eCH-0044:officialName>".encode() in ivan.xml
    [(part, _reason)] = mixed_up.rejected_parts
    with pytest.raises(InputRejected) as caught:
        normalise(part, LIMITS)
    assert str(caught.value) == (
        "row 1 (line 2): field (row): byte 0x80 is a control character in iso8859-15, no"
        ' letter: the export is Windows-1252 text (set encoding = "windows-1252" in the'
        " mapping if the export is written so)")


@pytest.mark.parametrize("declared", ["utf-8-sig", "utf-8", "iso-8859-15"])
def test_a_utf8_byte_order_mark_is_skipped_whatever_the_encoding(tmp_path: Path,
                                                                   declared: str) -> None:
    mapping = mapping_with(tmp_path, 'encoding = "windows-1252"', f'encoding = "{declared}"')
    data = b"\xef\xbb\xbf" + LATIN9_ROWS.encode("utf-8")
    first, second = rows(split(data, mapping))
    assert "Šuštar".encode() in first.xml and "Žagar".encode() in second.xml


# -- a title above the header ---------------------------------------------------------------


@pytest.mark.parametrize("data", [excel(TITLE + SAMPLE),
                                  b"\xef\xbb\xbf" + (TITLE + SAMPLE).encode("utf-8")])
def test_a_title_and_a_blank_row_above_the_header_are_skipped_and_said(data: bytes) -> None:
    """As Excel saves a sheet with a title row: "CSV (Trennzeichen-getrennt)" in
    Windows-1252, or "CSV UTF-8" with a byte order mark."""
    result = split(data)
    assert len(rows(result)) == 7
    assert [p.meta[ROW_META] for p in result.parts] == ["1", "2", "3", "4", "5", "6", "8"]
    assert [reason for _part, reason in result.rejected_parts] == [
        "row 7 (line 10): field permit (BEWILLIGUNG): value 'S' has no entry in the permit table"]
    assert result.warnings == (
        "the header is on line 3; lines 1 to 2 before it skipped (line 1: 'Export"
        " Einwohnerkontrolle 01.12.2026')",)


def test_the_rows_below_a_title_are_the_rows_without_it() -> None:
    """Rows are numbered from the header, as in the file without the title, and map to
    the same events."""
    with_title, without = split(excel(TITLE + SAMPLE)), split(excel(SAMPLE))
    assert [p.meta[ROW_META] for p in with_title.parts] == [p.meta[ROW_META] for p in without.parts]
    assert [m.facts["person_event"] for m in rows(with_title)] == [
        m.facts["person_event"] for m in rows(without)]


@pytest.mark.parametrize(("data", "reason"), [
    (excel(TITLE + SAMPLE + TITLE + SAMPLE.split("\r\n", 1)[0] + "\r\n"),
     "lines 3 and 14 both name every mapped column: which is the header is unknown (at line 3)"),
    (excel(TITLE + SAMPLE.replace(";NAME;", ";NAME_;", 1)),
     "the header lacks the mapped column(s) NAME (at line 3)"),
    (excel(TITLE + SAMPLE.replace(";NAME;VORNAME;", ";Name;Vorname;", 1)),
     "the header lacks the mapped column(s) NAME, VORNAME; it has 'Name', 'Vorname': column"
     " names must match the mapping exactly, case too (at line 3)"),
    (excel("Export\r\n" * 20 + SAMPLE),
     "the header lacks the mapped column(s) AHV_NR, BEWILLIGUNG, BEWILLIGUNG_BIS, EINREISE,"
     " EREIGNIS, EREIGNIS_DATUM, GEBURTSDATUM, GEBURTSLAND, GEBURTSORT, GESCHLECHT, HAUSNR,"
     " KONFESSION, NAME, ORT, PERS_NR, PLZ, STAATSANGEHOERIGKEIT, STRASSE, VORNAME,"
     " WEGZUG_LAND, WEGZUG_ORT, ZIVILSTAND, ZIVILSTAND_SEIT, ZUZUG_LAND, ZUZUG_ORT; the"
     " header has no ';' (at line 1)"),
])
def test_a_header_not_found_below_a_title_is_refused_naming_the_line(
        data: bytes, reason: str) -> None:
    """Two headers, a header with a typo or in another case below a title (named at its
    line, not at the title's), a header deeper than 20 lines: refused, nothing guessed."""
    with pytest.raises(InputRejected) as caught:
        split(data)
    assert str(caught.value) == reason


def test_map_test_says_what_it_skipped_before_the_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    export_file = tmp_path / "einwohner-titel.csv"
    export_file.write_bytes(excel(TITLE + SAMPLE))
    assert main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export_file)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [
        f"{export_file}: row 7 (line 10): field permit (BEWILLIGUNG): value 'S' has no entry in"
        " the permit table",
        f"{export_file}: the header is on line 3; lines 1 to 2 before it skipped (line 1:"
        " 'Export Einwohnerkontrolle 01.12.2026')",
        f"{export_file}: 8 rows, 7 mapped, 1 rejected"]


def test_rules_explain_shows_what_an_export_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    export_file = tmp_path / "einwohner-titel.csv"
    export_file.write_bytes(excel(TITLE + SAMPLE))
    main(["--config", str(config), "rules", "explain", "--source", "nova", str(export_file)])
    out = capsys.readouterr().out.splitlines()
    start = out.index("einwohner-titel.csv: an export of 8 rows")
    assert out[start:start + 2] == ["einwohner-titel.csv: an export of 8 rows",
                       "  warning: the header is on line 3; lines 1 to 2 before it skipped"
                       " (line 1: 'Export Einwohnerkontrolle 01.12.2026')"]


# -- dates in another form than the mapping's ---------------------------------------------


def test_iso_dates_under_a_swiss_date_format_name_the_form_and_the_key_once_per_row() -> None:
    result = split(excel(ISO_SAMPLE))
    assert result.parts == ()
    reasons = [reason for _part, reason in result.rejected_parts]
    assert len(reasons) == 8
    assert reasons[0] == (
        "row 1 (line 2): fields event_date (EREIGNIS_DATUM), date_of_birth (GEBURTSDATUM),"
        " permit_valid_till (BEWILLIGUNG_BIS), entry_date (EINREISE): dates written %Y-%m-%d"
        " ('2026-11-01', ...), not %d.%m.%Y (set date_format = \"%Y-%m-%d\" in the mapping if"
        " the export writes its dates so)")
    assert reasons[6].endswith(  # row 7's own fault stays said, after the dates
        "; field permit (BEWILLIGUNG): value 'S' has no entry in the permit table")
    assert result.warnings == ()  # said of the rejected rows, while they are: not of the file
    assert result.rejected_warnings == (
        "all 8 rows are rejected; what they have in common: fields event_date (EREIGNIS_DATUM),"
        " date_of_birth (GEBURTSDATUM), permit_valid_till (BEWILLIGUNG_BIS), entry_date (EINREISE),"
        " marital_status_date (ZIVILSTAND_SEIT): dates written %Y-%m-%d ('2026-11-01', ...),"
        ' not %d.%m.%Y (set date_format = "%Y-%m-%d" in the mapping if the export writes its'
        " dates so)",)


def test_the_date_format_the_reason_names_reads_the_export(tmp_path: Path) -> None:
    """The advice is right: set as said, every row of the ISO export maps but the bad one."""
    fixed = mapping_with(tmp_path, 'date_format = "%d.%m.%Y"', 'date_format = "%Y-%m-%d"')
    result = split(excel(ISO_SAMPLE), fixed)
    assert len(rows(result)) == 7 and result.warnings == result.rejected_warnings == ()
    # and the other way round: Swiss dates under an ISO mapping name %d.%m.%Y
    [first, *_] = split(excel(SAMPLE), fixed).rejected_parts
    assert 'dates written %d.%m.%Y (\'01.11.2026\', ...), not %Y-%m-%d (set date_format' \
           ' = "%d.%m.%Y"' in first[1]


@pytest.mark.parametrize(("written", "form"), [
    ("14/03/1991", "%d/%m/%Y"), ("19910314", "%Y%m%d"), ("1991-03-14T00:00:00", "%Y-%m-%dT%H:%M:%S"),
    ("1991-03-14T00:00:00.000", "%Y-%m-%dT%H:%M:%S.%f"), ("1991-03-14 00:00:00", "%Y-%m-%d %H:%M:%S"),
    ("14.03.1991 00:00", "%d.%m.%Y %H:%M")])
def test_each_common_date_form_is_named_and_reads_the_date(tmp_path: Path, written: str,
                                                            form: str) -> None:
    data = excel(SAMPLE.replace(";14.03.1991;", f";{written};"))
    reason = split(data).rejected_parts[0][1]
    assert reason == (f"row 1 (line 2): field date_of_birth (GEBURTSDATUM): {written!r} is written"
                      f' {form}, not %d.%m.%Y (set date_format = "{form}" in the mapping if the'
                      " export writes its dates so)")
    own = mapping_with(tmp_path, 'date_of_birth = "GEBURTSDATUM"',
                       f'date_of_birth = {{ column = "GEBURTSDATUM", format = "{form}" }}')
    [message, *_] = rows(split(data, own))
    assert b">1991-03-14</eCH-0044:yearMonthDay>" in message.xml


def test_a_field_with_its_own_format_names_its_own_key(tmp_path: Path) -> None:
    own = mapping_with(tmp_path, 'date_of_birth = "GEBURTSDATUM"',
                       'date_of_birth = { column = "GEBURTSDATUM", format = "%d.%m.%Y" }')
    data = excel(SAMPLE.replace(";14.03.1991;", ";1991-03-14;"))
    assert split(data, own).rejected_parts[0][1] == (
        "row 1 (line 2): field date_of_birth (GEBURTSDATUM): '1991-03-14' is written %Y-%m-%d,"
        ' not %d.%m.%Y (set fields.date_of_birth.format = "%Y-%m-%d" in the mapping if the'
        " export writes its dates so)")


def test_a_two_digit_year_is_named_not_offered() -> None:
    """check-config refuses %y (a birth in 1930 read as 2030): no key is suggested for it."""
    data = excel(SAMPLE.replace(";14.03.1991;", ";14.03.91;"))
    assert split(data).rejected_parts[0][1] == (
        "row 1 (line 2): field date_of_birth (GEBURTSDATUM): '14.03.91' has a two-digit year"
        " (%d.%m.%y), not of the form %d.%m.%Y; the gateway does not guess the century"
        " (01.01.30 would be read as 2030, a birth in 1930 as one in the future): have the"
        " export write years with four digits")


def test_no_summary_when_rows_fail_for_different_reasons_or_some_map() -> None:
    assert split(excel(SAMPLE)).rejected_warnings == ()  # 7 rows map, 1 does not
    bad_rows = SAMPLE.replace(";M;", ";X;").replace(";W;", ";Y;")
    result = split(excel(bad_rows))
    assert result.parts == () and result.rejected_warnings == ()  # 'X', 'Y': not one reason


def test_map_test_ends_with_the_summary_and_the_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    export_file = tmp_path / "einwohner-iso.csv"
    export_file.write_bytes(excel(ISO_SAMPLE))
    assert main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export_file)]) == 1
    *per_row, summary, counts = capsys.readouterr().out.splitlines()
    assert len(per_row) == 8 and all(" dates written %Y-%m-%d " in line for line in per_row)
    assert summary.startswith(
        f"{export_file}: all 8 rows are rejected; what they have in common: fields ")
    assert summary.endswith('(set date_format = "%Y-%m-%d" in the mapping if the export writes'
                            " its dates so)")
    assert counts == f"{export_file}: 8 rows, 0 mapped, 8 rejected"


# -- a gateway made with init, the example mapping, files dropped as Excel writes them ------


async def test_dropped_exports_show_their_skipped_title_and_their_shared_fault(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    folder = tmp_path / "nova" / "export"
    async with running(config, get_plugin_manager()):
        drop(folder, "einwohner-titel.csv", excel(TITLE + SAMPLE))
        drop(folder, "einwohner-iso.csv", excel(ISO_SAMPLE))
        await until(lambda: states(db, "SELECT count(*) FROM messages WHERE state IN"
                                       " ('routed', 'quarantined')") == [(16,)], timeout=30)
    parents = dict(states(db, "SELECT ref, id FROM messages WHERE parent IS NULL"))
    assert main(["--config", str(config), "messages", "show",
                 str(parents["einwohner-titel.csv"])]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "  reason:    split into 8 parts (1 rejected)" in shown
    assert ("  warning:   the header is on line 3; lines 1 to 2 before it skipped (line 1:"
            " 'Export Einwohnerkontrolle 01.12.2026')") in shown
    assert main(["--config", str(config), "messages", "show",
                 str(parents["einwohner-iso.csv"])]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "  reason:    split into 8 parts (8 rejected)" in shown
    [warning] = [line for line in shown if line.startswith("  warning:")]
    assert warning.startswith(
        "  warning:   all 8 rows are rejected; what they have in common: fields")
    assert warning.endswith('(set date_format = "%Y-%m-%d" in the mapping if the export writes'
                            " its dates so)")
    quarantined = states(db, "SELECT reason FROM messages WHERE state = 'quarantined' AND ref"
                             " LIKE 'einwohner-titel.csv row %'")
    assert quarantined == [("row 7 (line 10): field permit (BEWILLIGUNG): value 'S' has no"
                            " entry in the permit table",)]
