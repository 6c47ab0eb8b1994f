"""``map-test --out DIR``: the files it writes are named as the README and ``--help`` say.

The shipped Nova sample, the real command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.test_mapping import CSV_SAMPLE, REPO, gateway_dir


def test_the_files_map_test_writes_are_named_as_the_readme_and_help_say(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    out = tmp_path / "out"
    main(["--config", str(config), "map-test", "--source", "nova", "--summary", "--out",
          str(out), str(CSV_SAMPLE)])
    capsys.readouterr()
    first = sorted(p.name for p in out.iterdir())[0]
    assert first == "row-0001.xml"

    [documented] = [line for line in (REPO / "README.md").read_text(encoding="utf-8")
                    .splitlines() if line.startswith("| `map-test ")]
    assert f"`DIR/{first}`" in documented
    with pytest.raises(SystemExit):
        main(["--config", str(config), "map-test", "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    assert f"DIR/{first}," in helped
