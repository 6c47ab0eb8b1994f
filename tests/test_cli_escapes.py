"""What the command line prints of values from outside (file names from a sedex inbox, an
envelope's fields, a partner's answer) stays on its line, its control characters escaped:
a line break or an escape sequence in one cannot break a table, forge a line or drive the
operator's terminal. ``--json`` keeps them exact."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.config import write_initial_config
from gateway.store import Outcome, SQLiteStore
from tests.test_cli import cli
from tests.test_cli_show import AT_ONCE, _routed, inbox_run
from tests.test_sedex_transport import PAYLOAD, envelope_bytes

#: A sedex pair's key (its files' names: ``envl_KEY.xml``, ``data_KEY.xml``): a line break
#: and the escape sequence that clears the screen.
KEY = "x\n\x1b[2J"
#: The envelope's senderId (a character reference in its XML): a carriage return, then what
#: would overwrite the line.
SENDER = "T2-2-1\rOK all delivered"
#: A partner's answer that would set the terminal's title.
ANSWER = "HTTP 500 \x1b]0;owned\x07\nmessage 9  routed"


def _raw_controls(text: str) -> list[str]:
    """The control characters in ``text`` other than its line breaks."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f]


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A gateway folder whose run refused a sedex pair named :data:`KEY` from
    :data:`SENDER`, written to a participant id not ours; its message id."""
    envelope = (envelope_bytes("in-9", sender_id="T2-2-1", recipient_ids=("T9-9-9",))
                .replace(b"T2-2-1", SENDER.replace("\r", "&#13;").encode()))
    config, ids = inbox_run(tmp_path_factory.mktemp("escapes"), {KEY: (envelope, PAYLOAD)})
    [mid] = ids.values()
    return config, mid


def test_messages_list_keeps_a_file_name_on_its_line(
        refused: tuple[Path, int], capsys: pytest.CaptureFixture[str]) -> None:
    config, mid = refused
    code, out, _err = cli(capsys, "--config", str(config), "messages", "list")
    assert code == 0
    _header, row = out.splitlines()
    assert row.split()[0] == str(mid)
    assert "T2-2-1\\rOK all delivered" in row
    assert _raw_controls(out) == []
    code, out, _err = cli(capsys, "--config", str(config), "messages", "list", "--json")
    [listed] = json.loads(out)
    assert SENDER in listed["reason"]


def test_messages_show_escapes_file_names_and_envelope_fields(
        refused: tuple[Path, int], capsys: pytest.CaptureFixture[str]) -> None:
    config, mid = refused
    code, out, _err = cli(capsys, "--config", str(config), "messages", "show", str(mid))
    assert code == 0
    assert _raw_controls(out) == []
    lines = out.splitlines()
    [files] = [line for line in lines if line.startswith("  files:")]
    assert "envl_x\\n\\x1b[2J.xml and data_x\\n\\x1b[2J.xml, moved to" in files
    [reason] = [line for line in lines if line.startswith("  reason:")]
    assert "The value 'T2-2-1\\rOK all delivered' is not accepted" in reason
    # every line but the history's is the CLI's: a label, or indented under one
    assert all(line.startswith(("message ", "  ", "    ")) for line in lines)
    code, out, _err = cli(capsys, "--config", str(config), "messages", "show", str(mid), "--json")
    shown = json.loads(out)
    assert shown["meta"]["envelope_name"] == f"envl_{KEY}.xml"
    assert SENDER in shown["reason"]


async def _dead(db: Path) -> None:
    """The delivery of a routed message given up on, the partner's answer its reason."""
    store = SQLiteStore(db)
    store.start()
    try:
        [c] = await store.claim_due("n1", 60, 1, ["canton"])
        await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, "permanent", ANSWER)],
                                    lambda _partner: AT_ONCE, {"canton": 3600.0})
    finally:
        store.close()


def test_dead_letters_and_messages_show_escape_a_partners_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    mid = asyncio.run(_routed(db))
    asyncio.run(_dead(db))
    code, out, _err = cli(capsys, "--config", str(config), "dead-letters")
    assert code == 0
    assert _raw_controls(out) == []
    _header, row = out.splitlines()
    assert row.split()[0] == str(mid)
    assert row.endswith("HTTP 500 \\x1b]0;owned\\x07\\nmessage 9  routed")
    code, out, _err = cli(capsys, "--config", str(config), "dead-letters", "--json")
    assert json.loads(out)[0]["reason"].endswith(ANSWER)
    code, out, _err = cli(capsys, "--config", str(config), "messages", "show", str(mid))
    assert _raw_controls(out) == []
    assert "message 9  routed" not in out.splitlines()
