"""check-config on a mapping's value tables: an entry that is no eCH code is named with the
code meant (where it differs in case or looks like a typo) and the valid codes (of its
family, for long lists such as the eCH-0006 permits).

The shipped Nova mapping with entries changed, read as check-config reads it, and the real
command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.api import ConfigError
from gateway.cli import main
from plugins.mapping.loading import load_mapping
from tests.test_mapping import gateway_dir
from tests.test_mapping_exports import mapping_with


@pytest.mark.parametrize(("old", "new", "key", "reason"), [
    ('B = "0202"', 'B = "0800"', "tables.permit.B",
     "'0800' is not a valid permit code (did you mean '0804' or '08'?); permit codes"
     " starting '08': 08, 0804"),
    ('B = "0202"', 'B = "0203"', "tables.permit.B",
     "'0203' is not a valid permit code (did you mean '0202' or '0201'?); permit codes"
     " starting '02': 02, 0201, 0202"),
    ('Zuzug = "moveIn"', 'Zuzug = "movein"', "tables.event.Zuzug",
     "'movein' is not a valid event code (did you mean 'moveIn'?); event codes starting"
     " 'mo': move, moveIn, moveOut"),
    ('ledig = "1"', 'ledig = "8"', "tables.marital.ledig",
     "'8' is not a valid marital_status code; marital_status codes: 1, 2, 3, 4, 5, 6, 7, 9"),
    ('W = "2"', 'W = "F"', "tables.sex.W", "'F' is not a valid sex code; sex codes: 1, 2, 3"),
])
def test_a_table_entry_that_is_no_code_is_named_with_the_codes(
        tmp_path: Path, old: str, new: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping_with(tmp_path, old, new))
    assert [(k, r) for _file, k, r in caught.value.problems] == [(key, reason)]


def test_a_code_without_a_family_lists_them_all(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping_with(tmp_path, 'B = "0202"', 'B = "B"'))
    [(_file, _key, reason)] = caught.value.problems
    assert reason.startswith("'B' is not a valid permit code; permit codes: 01, 0102, 02,")
    assert reason.endswith(", 12, 1208, 1300")


def test_check_config_prints_the_codes_of_the_permit_meant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    mapping = tmp_path / "mappings" / "nova.toml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('B = "0202"', 'B = "0800"'),
                       encoding="utf-8")
    assert main(["--config", str(config), "check-config"]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{mapping}: tables.permit.B: '0800' is not a valid permit code (did you mean '0804'"
        " or '08'?); permit codes starting '08': 08, 0804 (mapping of sources.nova)"]
