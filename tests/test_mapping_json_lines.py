"""JSON Lines (a record on each line, as ``.jsonl`` and ``.ndjson`` files are written) is
not read: the reason says that is what the file is and what the gateway reads instead,
rather than the JSON parser's ``Extra data (at line 2 column 1)``.

Real files: the shipped Nova JSON export's records, written one on each line.
"""

from __future__ import annotations

import json

import pytest

from gateway.api import InputRejected
from tests.test_mapping import JSON_SAMPLE, MAPPINGS, split

JSON_LINES = "".join(json.dumps(record, ensure_ascii=False) + "\r\n" for record in
                     json.loads(JSON_SAMPLE.read_text(encoding="utf-8"))["export"]["persons"])


def test_json_lines_are_refused_saying_what_the_file_is() -> None:
    with pytest.raises(InputRejected) as caught:
        split(JSON_LINES.encode("utf-8"), MAPPINGS / "nova-json.toml")
    assert str(caught.value) == (
        "not one JSON document but JSON Lines, a record on each line (as .jsonl and .ndjson"
        " files are written): the gateway reads a list of records, [{...}, {...}], or an"
        " object that holds one (records in the mapping); have the export written so")


def test_other_data_after_the_document_is_not_taken_for_json_lines() -> None:
    first = JSON_LINES.splitlines()[0]
    with pytest.raises(InputRejected) as caught:
        split(f"{first} trailing\r\n".encode(), MAPPINGS / "nova-json.toml")
    assert str(caught.value) == f"not JSON: Extra data (at line 1 column {len(first) + 2})"
