"""``map-test`` says of a file what the source would: a CSV export whose last row is cut
short without a line end (a copy taken while it was written, a writer that stopped) is
taken for one still being written and, unchanged after ``grace``, quarantined whole. Mapping
its rows as if it were whole would promise rows the gateway never sends.

Real files: the shipped Nova CSV export, cut; a gateway made as ``ech-gateway init`` makes
it with the example sources; the real command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.test_mapping import CSV_SAMPLE
from tests.test_mapping_exports import gateway_dir


def test_an_export_cut_inside_its_last_row_is_refused_as_the_source_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    data = CSV_SAMPLE.read_bytes()
    cut = data[:data.rindex(b";Zuzug;")]  # cut in row 7, before its event: 19 of 25 cells
    export = tmp_path / "einwohner-cut.csv"
    export.write_bytes(cut)

    code = main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err == (f"{export}: rejected: CSV whose last row has 19 of the header's 25 cells and"
                   f" no line end (after {len(cut)} bytes): the source takes the file for one"
                   " still being written, and once it has not changed for its grace (300 s)"
                   " quarantines it whole\n")


def test_a_whole_export_without_its_last_line_end_maps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    export = tmp_path / "einwohner.csv"
    export.write_bytes(CSV_SAMPLE.read_bytes().rstrip(b"\r\n"))

    code = main(["--config", str(config), "map-test", "--source", "nova", "--summary",
                 str(export)])

    assert code == 1  # row 7, bad on purpose
    assert capsys.readouterr().out.splitlines()[-1] == f"{export}: 8 rows, 7 mapped, 1 rejected"
