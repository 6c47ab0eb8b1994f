"""The VN as exports write it: as pandas writes a column of VNs with gaps (a float,
``7565658670652.0``), and a cell that is no VN, whose reason says what is wrong with it.

Real files: the shipped Nova CSV export and mapping, one cell changed.
"""

from __future__ import annotations

from tests.test_mapping import rows, split
from tests.test_mapping_exports import SAMPLE, excel

#: Row 1's VN as the sample writes it.
VN = "756.5658.6706.52"


def test_a_vn_written_as_a_float_with_a_zero_fraction_is_read_as_that_vn() -> None:
    """JSON ``7565658670652.0`` is read so already; the same VN in a CSV cell is too."""
    result = split(excel(SAMPLE.replace(f";{VN};", ";7565658670652.0;")))
    assert len(result.rejected_parts) == 1  # row 7, bad on purpose
    [first, *_] = rows(result)
    assert b"<eCH-0044:vn>7565658670652</eCH-0044:vn>" in first.xml


def test_a_cell_that_is_no_vn_says_what_it_has_instead() -> None:
    for cell, has in (("756.5658.6706.5", "12 digits"), ("7565658670652.5", "14 digits"),
                      ("756.5658.67O6.52", "it holds signs other than digits, dots and spaces"),
                      ("123.5658.6706.52", "it starts with 123")):
        result = split(excel(SAMPLE.replace(f";{VN};", f";{cell};")))
        assert result.rejected_parts[0][1] == (
            f"row 1 (line 2): field vn (AHV_NR): not a VN: {has}; a VN is 13 digits starting"
            " with 756 (dots and spaces allowed)"), cell
