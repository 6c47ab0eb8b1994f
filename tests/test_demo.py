"""``ech-gateway demo`` as a user runs it: a subprocess with a bounded time."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "ech-gateway"
MESSAGES = 8
SECONDS = 40


def count(summary: str, label: str) -> int:
    """The number after ``label:`` in the summary."""
    found = re.search(rf"^\s*{label}:\s+(\d+)", summary, re.MULTILINE)
    assert found, f"no '{label}:' line in the summary:\n{summary}"
    return int(found[1])


def test_demo_runs_and_summarises(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    started = time.monotonic()
    done = subprocess.run(
        [str(SCRIPT), "demo", "--messages", str(MESSAGES), "--seconds", str(SECONDS),
         "--dir", str(folder)],
        capture_output=True, timeout=SECONDS + 30, check=False)
    elapsed = time.monotonic() - started
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert elapsed < SECONDS + 20, f"the demo took {elapsed:.0f}s"
    summary = out.split("demo finished in", 1)[1]
    delivered, rejected, dead = (count(summary, k) for k in ("delivered", "rejected", "dead"))
    assert re.search(r"delivered:\s+\d+ \(of which \d+ needed a retry\)", summary)
    assert delivered + rejected + dead == MESSAGES, "every sample message reached a final state"
    # both bad files are accounted for: the one cut short waits its grace, then is quarantined
    assert count(summary, "quarantined") == 2, summary
    assert "(entity.xml): DOCTYPE and entity declarations are not allowed" in summary
    assert re.search(r"\(broken\.xml\): .*unfinished", summary), summary
    assert not list((folder / "registry" / "outbox").glob("*.xml")), "no input left behind"
    assert "where to look:" in summary
    # the canton's rejection takes the way back: into the registry's inbox, on its person
    assert "from canton: 1 message: 1 delivered into the registry" in summary
    assert len(list((folder / "registry" / "inbox").glob("ech0223-*.xml"))) == 1
    named = re.search(r"^demo folder: (.+)$", out, re.MULTILINE)
    assert named and Path(named[1]) == folder
    assert f"ech-gateway --config {folder / 'gateway.toml'} messages list" in summary
    assert f"ech-gateway --config {folder / 'gateway.toml'} journal verify" in summary
    assert (folder / "gateway.toml").is_file()
    assert (folder / "gateway.db").is_file()
    verify = subprocess.run([str(SCRIPT), "--config", str(folder / "gateway.toml"), "journal",
                             "verify"], capture_output=True, timeout=60, check=False)
    assert verify.returncode == 0, verify.stdout
    assert b"journal intact" in verify.stdout
