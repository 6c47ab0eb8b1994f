"""eCH-0223 versions 1.0, 1.3, 1.4 and 1.5: validation, the ``validate`` command, conversion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.xml.validation import ECH0223_VERSIONS, validate, validate_files
from tests.flow import FIXTURES

V14_FULL = FIXTURES / "valid-pem14-full-persondata.xml"
V10_FULL = FIXTURES / "valid-pem10-full-persondata.xml"
V15_FULL = FIXTURES / "valid-pem-full-persondata.xml"


# ---------------------------------------------------------------------------
# validation and the validate command
# ---------------------------------------------------------------------------


def test_every_version_validates_with_its_own_rules() -> None:
    assert ECH0223_VERSIONS == ("1.5", "1.4", "1.3", "1.0")
    data = V14_FULL.read_bytes()  # othercaseOfMigration and dateTime originalCreationDate
    verdicts = {v: validate(data, ech0223_version=v) for v in ECH0223_VERSIONS}
    assert {v: r.valid for v, r in verdicts.items()} == {
        "1.5": False, "1.4": True, "1.3": False, "1.0": False}
    assert verdicts["1.4"].kind == "eCH-0223 1.4 personEventMessage"
    assert "othercaseOfMigration" in verdicts["1.3"].errors[0].message


def test_versionless_files_follow_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V10_FULL)], ech0223_version="1.0") == 0
    assert capsys.readouterr().out == f"{V10_FULL}: valid (eCH-0223 1.0 personEventMessage)\n"
    assert validate_files([str(V10_FULL)], ech0223_version="1.3") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{V10_FULL}: INVALID (eCH-0223 1.3 personEventMessage)\n")
    assert "originalCreationDate" in out and "dateTime" in out


def test_a_document_saying_1_5_is_1_5_whatever_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V15_FULL)], ech0223_version="1.0") == 0
    assert capsys.readouterr().out == f"{V15_FULL}: valid (eCH-0223 1.5 personEventMessage)\n"


def test_versionless_without_option_gets_a_hint_naming_the_versions_that_fit(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V14_FULL)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{V14_FULL}: INVALID (eCH-0223 1.5 personEventMessage)"
    assert "'version' is required but missing" in lines[1]
    assert lines[2] == ("  hint: eCH-0223 1.4 / 1.3 / 1.0 documents have no version attribute;"
                        " this one is valid as 1.4: validate it with --ech0223-version 1.4")
    assert len(lines) == 3


def test_no_hint_when_the_version_is_not_the_only_problem(
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = FIXTURES / "invalid-enum-pem14-prolongationl.xml"  # valid in 1.5 but for the version
    assert validate_files([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "hint: eCH-0223 1.4 / 1.3 / 1.0 documents have no version attribute, but this one is" \
           " valid as none of them either; as 1.5 it needs version=\"1.5\"" in out
    broken = FIXTURES / "invalid-unexpected-pem14-deadline.xml"  # versionless, 1.5 only in part
    assert validate_files([str(FIXTURES / "invalid-type-pem13-originalcreationdate-date.xml"),
                           str(broken)]) == 1
    assert "hint" not in capsys.readouterr().out.split(str(broken))[0]


def test_cli_option(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "validate", *args],
                              capture_output=True, text=True, timeout=60, check=False)

    done = run("--ech0223-version", "1.4", str(V14_FULL), str(V15_FULL))
    assert (done.returncode, done.stdout.splitlines()) == (0, [
        f"{V14_FULL}: valid (eCH-0223 1.4 personEventMessage)",
        f"{V15_FULL}: valid (eCH-0223 1.5 personEventMessage)"])
    done = run(str(V14_FULL))
    assert done.returncode == 1 and "--ech0223-version 1.4" in done.stdout
    done = run("--ech0223-version", "1.2", str(V14_FULL))
    assert done.returncode == 2 and "invalid choice: '1.2'" in done.stderr
