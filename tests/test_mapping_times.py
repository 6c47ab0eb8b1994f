"""Dates an export writes as date-times with a UTC offset, as JavaScript's ``toISOString``
and many JSON interfaces do: midnight in Zurich is ``T23:00:00.000Z`` of the day before
(``T22:00:00.000Z`` in summer). The date sent is the Swiss one.

Real files throughout: the shipped Nova JSON export and mapping, its dates rewritten as
such a writer writes them, and the official eCH-0223 1.5 XSD as the oracle.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.api import ConfigError
from plugins.mapping.loading import load_mapping
from tests.official import official_schema_set
from tests.test_mapping import JSON_SAMPLE, MAPPINGS, rows, split

#: A date as the Nova JSON export writes it (``"2026-11-03"``).
_DATE = re.compile(r'"(\d{4})-(\d\d)-(\d\d)"')
_ZURICH = ZoneInfo("Europe/Zurich")


def _utc_midnight(match: re.Match[str]) -> str:
    """Midnight of the date in Zurich, written in UTC as ``toISOString`` writes it."""
    swiss = datetime(*map(int, match.groups()), tzinfo=_ZURICH)
    return '"' + swiss.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") + '"'


def _json_mapping(tmp_path: Path, date_format: str) -> Path:
    text = (MAPPINGS / "nova-json.toml").read_text(encoding="utf-8")
    old = 'date_format = "%Y-%m-%d"'
    assert old in text
    path = tmp_path / "nova-json.toml"
    path.write_text(text.replace(old, f"date_format = {date_format!r}"), encoding="utf-8")
    return path


def _dates(xml: bytes) -> list[str]:
    """Every date in a message but its messageDate (the time the message was made)."""
    return re.findall(rb">(\d{4}-\d\d-\d\d)</", xml.split(b"</eCH-0039:messageDate>")[1])


def test_dates_written_in_utc_are_sent_as_the_swiss_dates_they_are(tmp_path: Path) -> None:
    plain = JSON_SAMPLE.read_bytes()
    utc = _DATE.sub(_utc_midnight, plain.decode("utf-8")).encode("utf-8")
    assert b'"2026-11-02T23:00:00.000Z"' in utc  # winter: UTC+1
    assert b'"1993-05-18T22:00:00.000Z"' in utc  # summer: UTC+2

    expected = [_dates(m.xml) for m in rows(split(plain, MAPPINGS / "nova-json.toml"))]
    mapping = _json_mapping(tmp_path, "%Y-%m-%dT%H:%M:%S.%f%z")
    made = rows(split(utc, mapping))

    assert [_dates(m.xml) for m in made] == expected
    assert b">1993-05-19</eCH-0044:yearMonthDay>" in made[0].xml
    schemas = official_schema_set()
    for message in made:
        report = schemas.validate(message.xml)
        assert report.valid, [i.message for i in report.errors]


def test_a_literal_z_in_the_date_format_is_refused_with_the_format_that_reads_it(
        tmp_path: Path) -> None:
    """``...%fZ`` reads 23:00 UTC as 23:00 in Zurich: every date one day early."""
    with pytest.raises(ConfigError) as caught:
        load_mapping(_json_mapping(tmp_path, "%Y-%m-%dT%H:%M:%S.%fZ"))
    [(_file, key, reason)] = caught.value.problems
    assert key == "date_format"
    assert reason.startswith("'%Y-%m-%dT%H:%M:%S.%fZ' reads a time in UTC (Z) as if it were"
                             " Swiss time")
    assert reason.endswith("write %z for the Z ('%Y-%m-%dT%H:%M:%S.%f%z') to take the date in"
                           " Swiss time")
