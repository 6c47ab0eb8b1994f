"""check-config refuses a drop folder that is not the source's own (plugins.folder.shared):
real folders, the configuration ``init`` writes, the command line in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import write_initial_config

NOVA = '[sources.nova]\ntype = "folder"\npath = "{path}"\npattern = {pattern}\n'


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``check-config``'s exit code and lines."""
    capsys.readouterr()
    code = main(["--config", str(config), "check-config"])
    return code, capsys.readouterr().out.splitlines()


def test_a_second_source_on_the_drop_folder_with_overlapping_patterns_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A [sources.registry] copied for a second registry, its path left as it was: each file
    went to whichever source listed it first, with or without the mapping."""
    config = write_initial_config(tmp_path)
    extra = tmp_path / "conf.d" / "30-nova.toml"
    extra.write_text(NOVA.format(path="../registry/outbox/", pattern='["export-*.XML"]'))
    assert check(config, capsys) == (2, [
        f"{extra}: sources.nova.path: {tmp_path}/registry/outbox is the drop folder of"
        " sources.registry too, and their patterns overlap ('export-*.XML' and '*.xml'):"
        " which source takes a file would be chance; give each source a folder of its own"])
    # patterns that cannot take the same file share a folder
    extra.write_text(NOVA.format(path="../registry/outbox", pattern='["*.csv"]'))
    assert check(config, capsys)[0] == 0


def test_a_drop_folder_that_is_a_partners_folder_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The registry's inbox (the way back) as a drop folder sent the canton's messages back
    to it; the sedex inbox took the canton's pairs as the registry's input."""
    config = write_initial_config(tmp_path)
    extra = tmp_path / "conf.d" / "30-nova.toml"
    for partner, path in [("registry.folder.path", "registry/inbox"),
                          ("canton.sedex.inbox", "sedex/inbox")]:
        extra.write_text(NOVA.format(path=tmp_path / path, pattern='["*.xml"]'))
        assert check(config, capsys) == (2, [
            f"{extra}: sources.nova.path: {tmp_path / path} is partners.{partner} too: the"
            " gateway would take what it writes or reads there as this source's input; give"
            " the source the folder the registry writes to"])
    # a disabled source reads nothing
    extra.write_text(extra.read_text() + "enabled = false\n")
    assert check(config, capsys)[0] == 0
