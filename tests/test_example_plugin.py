"""The example plugin, installed for real with pip, works with the gateway as a vendor's would.

``examples/ech-gateway-plugin-example`` is built and installed by pip into a
folder of its own (``--target``), which the gateway's processes get on their
``PYTHONPATH``: the project's environment is left as it was. The gateway then
finds the plugin through its ``ech_gateway`` entry point, as it finds any.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.plugins import LOAD_ENV
from gateway.testing import drop, sample_message, states, write_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ech-gateway-plugin-example"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the example is installed into by pip."""
    work = tmp_path_factory.mktemp("example")
    source = work / "source"  # pip builds in place: build from a copy, not from the checkout
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                     "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--target", str(work / "site"), str(source)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (
        f"pip could not install the example (this environment needs setuptools>=70.1:"
        f" `make setup`):\n{done.stderr}")
    return work / "site"


@pytest.fixture
def installed(site: Path) -> dict[str, str]:
    """The environment of a process that sees the installed example (and loads every plugin)."""
    env = {k: v for k, v in os.environ.items() if k != LOAD_ENV}
    env["PYTHONPATH"] = str(site)
    return env


@pytest.fixture
def beside(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process sees the installed example, as if it were on its ``PYTHONPATH``."""
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(LOAD_ENV)


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.mark.usefixtures("beside")
def test_the_gateway_lists_the_installed_plugin() -> None:
    code, out = cli("plugins")
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("filedrop "))
    assert "ech_gateway_filedrop.plugin" in row and "gateway_transport_types" in row
    last = out.splitlines()[-1]
    assert last.startswith("transport types: filedrop, ") and "sedex" in last


@pytest.mark.usefixtures("beside")
def test_a_typo_in_its_options_is_refused_by_name(tmp_path: Path) -> None:
    config = write_config(tmp_path, transport="filedrop", transport_options={"foldr": "out"})
    code, out = cli("--config", str(config), "check-config")
    assert code == 2
    assert ("partners.partner.filedrop.foldr: unknown key 'foldr' for the transport 'filedrop'"
            " (plugin 'filedrop'); did you mean 'folder'?") in out


def test_the_daemon_delivers_through_it(installed: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "receipts").mkdir(parents=True)
    # Worker processes too load the plugin from its entry point.
    config = write_config(tmp_path, transport="filedrop",
                          transport_options={"folder": "out", "poll_interval": "50ms"},
                          settings={"gateway": {"workers": 1}})
    db = tmp_path / "gateway.db"
    daemon = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(config), "run"],
                              env=installed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        drop(tmp_path / "in", "notice.xml", sample_message("example-1"))
        written = _wait(lambda: list(out.glob("*.xml")))[0]
        assert written.read_bytes() == sample_message("example-1")
        (out / "receipts" / f"{written.stem}.ok").write_text("archived")
        _wait(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, output
    assert list((out / "receipts").iterdir()) == []


@pytest.mark.usefixtures("beside")
async def test_its_own_tests_pass_with_gateway_testing(site: Path, tmp_path: Path) -> None:
    """The example's tests, run here against the installed example (a subprocess costs 3 s)."""
    path = EXAMPLE / "tests" / "test_filedrop.py"
    spec = importlib.util.spec_from_file_location("example_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = {name: fn for name, fn in vars(module).items() if name.startswith("test_")}
    assert len(tests) == 3
    for name, test in tests.items():
        (tmp_path / name).mkdir()
        await test(tmp_path / name)
    assert Path(module.plugin.__file__).is_relative_to(site)  # the installed copy, not the checkout


def _wait(found: object, timeout: float = 15.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()  # type: ignore[operator]
        if result:
            return result  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("not reached in time")
