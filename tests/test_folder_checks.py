"""Checking the configuration's folders when a share is down: a clear problem, not a hang.

Loading the configuration (``run``, ``check-config``, every command) looks
at the folders it names: ``same_folder`` (a done_dir that is the drop
folder), an archive folder holding the database, whether each exists and
can be written in. Each look is given up on after a while
(:mod:`gateway.folder_checks`). The share is a FUSE mount nobody answers
(:func:`tests.mounts.unanswering`) in a private mount namespace.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway import folder_checks
from gateway.assembly import load_config
from gateway.cli.exitcodes import CONFIG
from gateway.errors import ConfigError, FolderHang
from gateway.plugins import get_plugin_manager
from tests.mounts import require_fuse, run_isolated, unanswering
from tests.test_retention import gateway_folder


def hung_done_dir(root_text: str) -> None:
    """(In a private mount namespace.) The done_dir's share is down: ``check-config`` and
    ``run`` each say which folder did not answer, under the key that names it, and exit
    CONFIG, while the share still hangs."""
    root = Path(root_text)
    share = root / "share"
    config = gateway_folder(root, "")
    config.write_text(config.read_text().replace('done_dir = "done"',
                                                 f'done_dir = "{share / "done"}"'))
    said = (f"{config}: sources.registry.done_dir: folder {share / 'done'} did not answer"
            f" within {folder_checks.ANSWER_TIMEOUT:g}s (is its share down?)")
    with unanswering(share, safety=50) as hangs:
        checked = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config),
                                  "check-config"], capture_output=True, text=True, timeout=40)
        assert (checked.returncode, checked.stdout.splitlines()) == (CONFIG, [said]), checked
        ran = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                             capture_output=True, text=True, timeout=40)
        assert ran.returncode == CONFIG, ran
        assert said in ran.stderr.splitlines()
        assert hangs(), "a command waited until the share was cut off"


def test_a_done_dir_whose_share_is_down_is_a_problem_at_start_not_a_hang(tmp_path: Path) -> None:
    """Resolving the done_dir (is it the drop folder?) is a look given up on after
    ANSWER_TIMEOUT: ``check-config`` (systemd's ExecStartPre) and ``run`` fail with the
    folder and the key, and systemd tries again, instead of a start that waits for ever."""
    require_fuse()
    run_isolated("tests.test_folder_checks:hung_done_dir", str(tmp_path))


def hung_folders(root_text: str) -> None:
    """(In a private mount namespace, looks given up on after 1 s.) A data folder on a
    share that is down is a problem of loading; so is a drop folder on another (loading
    compares it with the partners' folders, :mod:`plugins.folder.shared`); a look into a
    folder below one given up on is refused, without being made, while that look has not
    returned."""
    folder_checks.ANSWER_TIMEOUT = 1.0
    root = Path(root_text)
    config = gateway_folder(root, "")
    plain = config.read_text().replace('done_dir = "done"\n', "")
    pm = get_plugin_manager()
    data, drop = root / "data-share", root / "drop-share"
    with unanswering(data, safety=30) as data_hangs, unanswering(drop, safety=30) as hangs:
        config.write_text(plain.replace("[gateway]\n", f'[gateway]\ndata_dir = "{data}"\n'))
        with pytest.raises(ConfigError) as caught:
            load_config(config, pm)
        assert caught.value.problems == [
            (str(config), "gateway.data_dir",
             f"folder {data} did not answer within 1s (is its share down?)")]

        config.write_text(plain.replace('path = "in"', f'path = "{drop / "in"}"'))
        with pytest.raises(ConfigError) as caught:
            load_config(config, pm)
        assert caught.value.problems == [
            (str(config), "sources.registry.path",
             f"folder {drop / 'in'} did not answer within 1s (is its share down?)")]

        looked: list[Path] = []
        with pytest.raises(FolderHang, match=f"^folder {data} did not answer within 1s"):
            folder_checks.answered(data / "gateway", looked.append, data / "gateway")
        assert looked == []
        assert data_hangs() and hangs(), "a check waited until a share was cut off"


def test_folders_whose_share_is_down_are_problems_of_the_configuration(tmp_path: Path) -> None:
    require_fuse()
    run_isolated("tests.test_folder_checks:hung_folders", str(tmp_path))
