"""The systemd unit, the sysusers and tmpfiles files and ``init --system`` agree.

``init --system --root`` installs into a folder; systemd's own tools then act
on it (sysusers creates the user, tmpfiles the folders and their owners), and
``systemd-analyze verify`` checks the unit with its ExecStart in place (in a
private mount namespace, so the host's /opt is untouched).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.assembly import load_config
from gateway.cli import main
from gateway.config.system import CONFIG_FILE, DATA_DIR, EXECUTABLE, REPOSITORY_COPIES, USER
from gateway.plugins import get_plugin_manager

REPOSITORY = Path(__file__).parent.parent / "systemd"
UNIT = "etc/systemd/system/ech-gateway.service"


def need(tool: str) -> str:
    """The path of a systemd tool; CI installs it (.ci/run), elsewhere its absence skips."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing; .ci/run installs Debian's systemd package")
        pytest.skip(f"{tool} is not installed (Debian package systemd)")
    return path


def unit_settings(text: str) -> dict[str, list[str]]:
    """``Key=Value`` lines of a unit, each key with its values in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["init", "--system", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}/{UNIT}" in out and "systemd-sysusers" in out
    return tmp_path


def test_repository_copies_are_what_init_installs(root: Path) -> None:
    installed = {
        "ech-gateway.service": root / UNIT,
        "ech-gateway.sysusers.conf": root / "etc/sysusers.d/ech-gateway.conf",
        "ech-gateway.tmpfiles.conf": root / "etc/tmpfiles.d/ech-gateway.conf",
    }
    assert set(installed) == set(REPOSITORY_COPIES)
    for name, path in installed.items():
        assert (REPOSITORY / name).read_text() == path.read_text(), (
            f"systemd/{name} is out of date: copy what `ech-gateway init --system` installs")


def test_unit_config_and_folders_agree(root: Path) -> None:
    unit = unit_settings((root / UNIT).read_text())
    assert unit["ExecStart"] == [f"{EXECUTABLE} --config {CONFIG_FILE} run"]
    assert unit["User"] == unit["Group"] == [USER]
    assert [f"/var/lib/{d}" for d in unit["StateDirectory"]] == [str(DATA_DIR)]
    assert [f"/etc/{d}" for d in unit["ConfigurationDirectory"]] == [str(CONFIG_FILE.parent)]
    assert unit["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in unit

    settings = load_config(root / str(CONFIG_FILE).lstrip("/"), get_plugin_manager())
    assert settings.gateway.data_dir == Path(DATA_DIR)
    assert settings.store.path == Path(DATA_DIR) / "gateway.db"
    sedex = settings.partners["canton"].parsed
    source = settings.sources["registry"].parsed
    folders = [sedex.outbox, sedex.inbox, sedex.receipts, sedex.processed,
               source.path, source.done_dir]
    tmpfiles = (root / "etc/tmpfiles.d/ech-gateway.conf").read_text()
    for folder in folders:
        assert folder.is_relative_to(DATA_DIR), f"{folder} is outside the state directory"
        assert (root / str(folder).lstrip("/")).is_dir(), f"init did not create {folder}"
        assert f"d {folder} 2770 {USER} {USER} -\n" in tmpfiles
    sysusers = (root / "etc/sysusers.d/ech-gateway.conf").read_text()
    assert f"u {USER} - " in sysusers and sysusers.rstrip().endswith(str(DATA_DIR))


def test_sysusers_and_tmpfiles_give_the_user_its_folders(root: Path) -> None:
    subprocess.run([need("systemd-sysusers"), f"--root={root}"], check=True, capture_output=True)
    subprocess.run([need("systemd-tmpfiles"), f"--root={root}", "--create"], check=True,
                   capture_output=True)
    passwd = {line.split(":")[0]: line.split(":")
              for line in (root / "etc/passwd").read_text().splitlines()}
    uid, gid, home = int(passwd[USER][2]), int(passwd[USER][3]), passwd[USER][5]
    assert home == str(DATA_DIR)
    config = (root / str(CONFIG_FILE).lstrip("/")).stat()
    assert (config.st_uid, config.st_gid, config.st_mode & 0o777) == (0, gid, 0o640)
    outbox = (root / str(DATA_DIR).lstrip("/") / "sedex/outbox").stat()
    assert (outbox.st_uid, outbox.st_gid, outbox.st_mode & 0o7777) == (uid, gid, 0o2770)


def test_second_init_system_refuses_and_keeps_the_files(root: Path) -> None:
    config = root / str(CONFIG_FILE).lstrip("/")
    config.write_text("# edited by the site\n")
    assert main(["init", "--system", "--root", str(root)]) == 1
    assert config.read_text() == "# edited by the site\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
def test_systemd_analyze_verify_passes(root: Path) -> None:
    verify = need("systemd-analyze")
    entry = Path(sys.executable).parent / "ech-gateway"
    assert entry.is_file(), "the ech-gateway console script is installed in this venv"
    # ExecStart must exist: put it where the documented install does, in this namespace only
    script = (f"mount -t tmpfs tmpfs /opt && mkdir -p {EXECUTABLE.parent}"
              f" && ln -s {entry} {EXECUTABLE} && exec {verify} verify {root / UNIT}")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
