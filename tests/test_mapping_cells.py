"""CSV rows with more or fewer cells than the header, as Excel and other tools write them:
empty cells beyond the header (``a;b;c;;``) are dropped, trailing empty cells left out
(``a;b`` under three columns) are empty; a cell beyond the header that is not empty
still rejects its row, naming it.

Real files (the Nova header and a good row of the shipped sample, Windows-1252, CRLF),
the shipped mapping, the real normaliser and ``map-test``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.test_mapping import GOOD, HEADER, gateway_dir, rows, split

#: GOOD ends in two empty cells (WEGZUG_ORT, WEGZUG_LAND), as a move in from abroad has.
SHORT = GOOD.removesuffix(";;")
PADDED = (GOOD + ";;;", GOOD + "; ;\t")


def export(*lines: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode("windows-1252")


@pytest.mark.parametrize("line", [*PADDED, SHORT, GOOD.removesuffix(";"), SHORT + ";;;;"],
                         ids=["padded", "padded-blank", "short", "one-short", "short-padded"])
def test_empty_cells_beyond_the_header_or_missing_at_the_end_read_as_the_row(
        line: str) -> None:
    [expected] = rows(split(export(GOOD)))
    result = split(export(line))
    assert result.rejected_parts == ()
    [message] = rows(result)
    assert message.xml == expected.xml
    assert message.message_id == expected.message_id


def test_a_header_padded_by_excel_reads_rows_padded_or_not() -> None:
    result = split(export(GOOD, SHORT.replace("Becker", "Meier"), header=HEADER + ";;"))
    assert result.rejected_parts == ()
    assert len(rows(result)) == 2


def test_a_row_cut_short_before_a_required_field_names_the_field() -> None:
    cut = ";".join(GOOD.split(";")[:18])  # up to ORT: no KONFESSION, EREIGNIS, ...
    [(_part, reason)] = split(export(cut)).rejected_parts
    assert reason == ("row 1 (line 2): field event (EREIGNIS): missing (required); field"
                      " religion (KONFESSION): missing (required)")


@pytest.mark.parametrize(("line", "reason"), [
    (GOOD + ";;Zürich", "27 cells where the header has 25: cell 27, beyond the header, is not"
     " empty"),
    (GOOD + ";8400;;Zürich", "28 cells where the header has 25: cells 26 and 28, beyond the"
     " header, are not empty"),
])
def test_a_cell_beyond_the_header_that_is_not_empty_rejects_its_row_naming_it(
        line: str, reason: str) -> None:
    result = split(export(line, GOOD.replace("Becker", "Meier")))
    [(_part, said)] = result.rejected_parts
    assert said == (f"row 1 (line 2): field (row): {reason} (a delimiter in a cell without"
                    " quotes?)")
    assert len(rows(result)) == 1


def test_map_test_maps_an_export_excel_padded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    file = tmp_path / "export.csv"
    file.write_bytes(export(PADDED[0], SHORT.replace("Becker", "Meier")))
    code = main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(file)])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{file}: 2 rows, 2 mapped, 0 rejected"
