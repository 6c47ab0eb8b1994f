"""Exports in DOS text (cp850), as Excel's "CSV (MS-DOS)" and older registry software
write them, under a mapping that says Windows-1252: a ``ü`` (0x81, no character in
Windows-1252) refuses the file saying it looks like DOS text; without one, a name with
``ä`` or ``ö`` (0x84, 0x94: ``„`` and ``”`` in Windows-1252) rejects its row so, rather
than sending ``K„ser``. With ``encoding = "cp850"`` the same file maps.

Real files: the shipped Nova CSV export, written as DOS text, and the shipped mapping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.api import InputRejected
from tests.test_mapping import rows, split
from tests.test_mapping_exports import SAMPLE, mapping_with

_SET_DOS = ('the file looks like DOS text (cp850, as Excel\'s "CSV (MS-DOS)" writes), where')
_KEY = '(set encoding = "cp850" in the mapping if the export is written so)'


def test_a_dos_export_with_a_u_umlaut_is_refused_saying_it_looks_like_dos_text(
        tmp_path: Path) -> None:
    data = SAMPLE.encode("cp850")
    with pytest.raises(InputRejected) as caught:
        split(data)
    assert str(caught.value).startswith(
        "not cp1252 text: byte 0x81, where DOS text (cp850, as Excel's \"CSV (MS-DOS)\""
        f" writes) has 'ü': the file looks like it {_KEY} (at byte ")

    messages = rows(split(data, mapping_with(tmp_path, 'encoding = "windows-1252"',
                                             'encoding = "cp850"')))
    assert len(messages) == 7
    assert "München".encode() in messages[0].xml
    assert "João".encode() in b"".join(m.xml for m in messages)


def test_a_name_with_dos_letters_read_as_windows_1252_rejects_its_row() -> None:
    data = SAMPLE.replace("ü", "ue").encode("cp850")
    result = split(data)
    reasons = {reason.split(" ", 2)[1]: reason for _part, reason in result.rejected_parts}
    assert reasons["2"] == (
        "row 2 (line 3): fields birth_town (GEBURTSORT), comes_from_town (ZUZUG_ORT): '‰'"
        f" (byte 0x89 in cp1252) is in no name, place or street: {_SET_DOS} byte 0x89 is 'ë'"
        f" {_KEY}")
    assert all("ä" not in m.xml.decode() and "„" not in m.xml.decode() for m in rows(result))
    assert sorted(reasons, key=int) == ["2", "4", "7", "8"]  # ë, ä, permit S, ö
