"""What a sender chooses (a file's name, a zip entry's name) cannot end a log line and forge
the next: the text log writes line breaks and other control characters as escapes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gateway.config import write_initial_config
from gateway.logs import one_line
from tests.test_daemon import running_daemon

FORGED = "2026-12-05 18:44:06,107 CRITICAL gateway.forged: the journal was tampered with"


@pytest.mark.parametrize(("text", "written"), [
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
    ("a\u2028b\x85c", "a\\u2028b\\x85c"), ("tab\tstays, Müller too", "tab\tstays, Müller too"),
    ("invoice\u202efdp.exe", "invoice\\u202efdp.exe"), ("\u2066x\u2069 \u200f", "\\u2066x\\u2069 \\u200f"),
    ("\u0627\u0644\u0639\u0631\u0628\u064a\u0629 stays", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 stays")])
def test_one_line_escapes_what_breaks_a_line(text: str, written: str) -> None:
    assert one_line(text) == written


def test_a_file_name_with_a_line_break_forges_no_log_line(tmp_path: Path) -> None:
    """A named pipe dropped into the registry's folder is set aside with a warning naming
    it; its name held a line break and a forged CRITICAL line, which the log wrote as a
    line of its own."""
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "10-test.toml").write_text("[gateway]\nworkers = 0\n")
    outbox = tmp_path / "gw" / "registry" / "outbox"
    log = tmp_path / "daemon.log"
    with running_daemon(config, log):
        os.mkfifo(outbox / f"pipe\n{FORGED}.xml")
        deadline = time.monotonic() + 30
        while "named pipe" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], lines
    [warned] = [line for line in lines if "named pipe" in line]
    assert f"outbox/pipe\\n{FORGED}.xml is a named pipe (FIFO)" in warned
