"""The ``ech-gateway`` command line on real folders, a real database and real subprocesses.

Most commands run in-process through :func:`gateway.cli.main` (fast); a few
run ``.venv/bin/ech-gateway`` and ``python -m gateway`` as subprocesses to
prove the console script works. The inspect commands read a database made
by one short real run of the gateway with the ``init`` configuration and
the sedex transport, whose receipts this module writes itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import write_initial_config
from plugins.sedex.envelope import build_receipt, parse_envelope
from tests.flow import FIXTURES, drop, message, running, states, until

SCRIPT = Path(sys.executable).parent / "ech-gateway"
FAST = """\
[gateway]
log_level = "WARNING"
[dispatcher]
idle_poll = "50ms"
[sources.registry]
poll_interval = "50ms"
[partners.canton.sedex]
poll_interval = "50ms"
"""
#: Inputs of the run, by name: (file name, bytes).
INPUTS: dict[str, tuple[str, bytes]] = {
    "ok-1": ("ok-1.xml", message("cli-ok-1")),
    "ok-2": ("ok-2.xml", message("cli-ok-2")),
    "dead": ("dead.xml", message("cli-dead-1")),
    "big": ("big.xml", message("cli-big-1", fixture="valid-pem-full-persondata.xml")),
    "bad": ("bad.xml", b"<oops>"),
}
LIMIT = 8000  # [limits] max_document_bytes during the run: "big" is larger


@dataclass(frozen=True)
class Run:
    """A gateway folder after one run: two delivered, one dead, two quarantined."""

    dir: Path
    ids: dict[str, int]

    @property
    def config(self) -> Path:
        """Its gateway.toml."""
        return self.dir / "gateway.toml"

    @property
    def db(self) -> Path:
        """Its database."""
        return self.dir / "gateway.db"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process; return (exit code, stdout, stderr).

    Some commands end with ``SystemExit`` (argparse, a missing database): its code counts.
    """
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_script(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
               ) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``ech-gateway`` console script."""
    environ = {k: v for k, v in os.environ.items() if k != "ECH_GATEWAY_CONFIG"}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, timeout=60,
                          env={**environ, **(env or {})}, cwd=cwd, check=False)


async def _write_receipts(run_dir: Path, codes: dict[str, int]) -> None:
    """Answer each sent delivery with the sedex code of its eCH-0223 messageId."""
    db = run_dir / "gateway.db"
    sent = "SELECT d.attempt_ref, m.message_id FROM deliveries d JOIN messages m" \
           " ON m.id = d.message WHERE d.state = 'sent'"
    await until(lambda: len(states(db, sent)) == len(codes))
    for ref, message_id in states(db, sent):
        envl = run_dir / "sedex" / "outbox" / f"envl_{ref}.xml"
        env = parse_envelope(envl.read_bytes(), max_bytes=1 << 20)
        receipt = build_receipt(env, env.recipient_ids[0], codes[message_id], "test",
                                datetime.now().astimezone())
        drop(run_dir / "sedex" / "receipts", f"receipt-{ref}.xml", receipt)


async def _run(run_dir: Path) -> None:
    db = run_dir / "gateway.db"
    async with running(run_dir / "gateway.toml"):
        for name, data in INPUTS.values():
            drop(run_dir / "registry" / "outbox", name, data)
        await _write_receipts(run_dir, {"cli-ok-1": 100, "cli-ok-2": 100, "cli-dead-1": 310})
        await until(lambda: sorted(states(db, "SELECT state FROM deliveries")) == [
            ("dead",), ("delivered",), ("delivered",)])
        await until(lambda: len(states(db, "SELECT id FROM messages WHERE state = 'quarantined'"))
                    == 2)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One real run (shared, read-only: copy it with ``gw`` before changing anything)."""
    run_dir = tmp_path_factory.mktemp("run")
    write_initial_config(run_dir)
    (run_dir / "conf.d" / "10-fast.toml").write_text(FAST)
    limit = run_dir / "conf.d" / "20-limit.toml"
    limit.write_text(f"[limits]\nmax_document_bytes = {LIMIT}\n")
    asyncio.run(_run(run_dir))
    limit.unlink()  # the cause of "big"'s quarantine is fixed from now on
    ids = {name: states(run_dir / "gateway.db", "SELECT id FROM messages WHERE ref = ?",
                        (file,))[0][0] for name, (file, _data) in INPUTS.items()}
    return Run(run_dir, ids)


@pytest.fixture
def gw(ran: Run, tmp_path: Path) -> Run:
    """A private copy of the run's folder, free to change."""
    target = tmp_path / "gw"
    shutil.copytree(ran.dir, target)
    return Run(target, ran.ids)


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECH_GATEWAY_CONFIG", raising=False)


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------


def test_init_writes_config_and_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    code, out, _ = cli(capsys, "init", str(target))
    assert code == 0
    assert (target / "gateway.toml").is_file()
    assert str(target / "gateway.toml") in out
    for folder in ("conf.d", "registry/outbox", "sedex/outbox", "sedex/inbox", "sedex/receipts",
                   "sedex/processed"):
        assert (target / folder).is_dir(), folder
    assert cli(capsys, "--config", str(target / "gateway.toml"), "check-config")[0] == 0


def test_second_init_fails_clearly_and_leaves_the_file(tmp_path: Path) -> None:
    target = tmp_path / "g"
    assert run_script("init", str(target)).returncode == 0
    config = target / "gateway.toml"
    config.write_text(config.read_text() + "# edited by the operator\n")
    before = config.read_bytes()
    again = run_script("init", str(target))
    assert again.returncode != 0
    err = again.stderr.decode()
    assert "exists already" in err
    assert "Traceback" not in err
    assert config.read_bytes() == before


# ---------------------------------------------------------------------------
# check-config, --config, ECH_GATEWAY_CONFIG
# ---------------------------------------------------------------------------


def test_check_config_accepts_the_init_config(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    done = run_script("--config", str(config), "check-config")
    assert done.returncode == 0, done.stderr
    assert b"configuration is valid" in done.stdout


def _problems(out: str) -> dict[str, str]:
    """``key -> file`` of every ``file: key: reason`` line."""
    found = {}
    for line in out.splitlines():
        file, key, reason = line.split(": ", 2)
        assert reason, line
        found[key] = file
    return found


def test_check_config_lists_every_error_with_its_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_initial_config(tmp_path)
    text = config.read_text().replace('log_level = "INFO"', 'log_level = "LOUD"')
    config.write_text(text.replace("max_zip_entries = 1000", "max_zip_entries = -5"))
    conf_d = tmp_path / "conf.d" / "20-x.toml"
    conf_d.write_text('[dispatcher]\nlease = "forever"\n[partners.canton.retry]\nmax_attempts = 0\n')
    monkeypatch.setenv("ECH_GATEWAY_DISPATCHER__BATCH_SIZE", "abc")
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert _problems(out) == {
        "gateway.log_level": str(config),
        "limits.max_zip_entries": str(config),
        "dispatcher.lease": str(conf_d),
        "partners.canton.retry.max_attempts": str(conf_d),
        "dispatcher.batch_size": "env ECH_GATEWAY_DISPATCHER__BATCH_SIZE",
    }


def test_check_config_names_file_and_key_of_plugin_option_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    config.write_text(config.read_text().replace('sender_id = "T1-2511-1"', 'sender_id = "commune"'))
    conf_d = tmp_path / "conf.d" / "30-y.toml"
    # the sedex table is touched here too: the error must still name gateway.toml
    conf_d.write_text('[partners.canton.sedex]\npoll_interval = "1s"\n'
                      '[sources.other]\ntype = "ftp"\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert _problems(out) == {
        "partners.canton.sedex.sender_id": str(config),
        "sources.other.type": str(conf_d),
    }
    assert "'commune' is not a sedex participant ID" in out
    assert "unknown source type 'ftp'" in out


def test_check_config_refuses_folders_that_would_take_each_others_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    conf_d = tmp_path / "conf.d" / "40-z.toml"
    # relative to conf.d, and spelled differently from the drop folder and the outbox
    conf_d.write_text('[sources.registry]\ndone_dir = "../registry/outbox"\n'
                      '[partners.canton.sedex]\nreceipts = "../sedex/./outbox/"\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert _problems(out) == {
        "sources.registry.done_dir": str(conf_d),
        "partners.canton.sedex.receipts": str(conf_d),
    }
    assert "is the drop folder itself" in out
    assert "is the same folder as 'outbox'" in out


def test_config_option_and_env_var_select_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_initial_config(tmp_path / "a")
    b = write_initial_config(tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "check-config")
    assert code == 2
    assert "no configuration file" in out + err
    monkeypatch.setenv("ECH_GATEWAY_CONFIG", str(a))
    code, out, _ = cli(capsys, "check-config")
    assert (code, str(a) in out, str(b) in out) == (0, True, False)
    code, out, _ = cli(capsys, "--config", str(b), "check-config")
    assert (code, str(a) in out, str(b) in out) == (0, False, True)


def test_env_var_selects_the_file_for_the_console_script(ran: Run, tmp_path: Path) -> None:
    done = run_script("messages", "list", "--json", env={"ECH_GATEWAY_CONFIG": str(ran.config)},
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == len(INPUTS)


# ---------------------------------------------------------------------------
# validate, plugins
# ---------------------------------------------------------------------------


def test_validate_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(FIXTURES / n) for n in ("valid-pem-minimal.xml", "valid-er-single-reason.xml",
                                         "valid-env1-minimal.xml", "valid-rcpt2-ok.xml")]
    code, out, _ = cli(capsys, "validate", *files)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(files)
    for file, line in zip(files, lines, strict=True):
        assert line.startswith(f"{file}: valid"), line


def test_validate_reports_invalid_files_with_lines(capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = FIXTURES / "valid-pem-minimal.xml", FIXTURES / "invalid-missing-officialname.xml"
    code, out, _ = cli(capsys, "validate", str(good), str(bad))
    assert code == 1
    verdicts = [line for line in out.splitlines() if not line.startswith(" ")]
    assert verdicts[0].startswith(f"{good}: valid")
    assert verdicts[1].startswith(f"{bad}: INVALID")
    assert "line 28" in out


def test_validate_rejects_a_doctype(tmp_path: Path) -> None:
    hostile = tmp_path / "doctype.xml"
    hostile.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "boom">]>\n<x>&e;</x>')
    done = subprocess.run([sys.executable, "-m", "gateway", "validate", str(hostile),
                           str(FIXTURES / "valid-pem-minimal.xml")],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    first = done.stdout.decode().splitlines()[0]
    assert first.startswith(f"{hostile}: REJECTED")
    assert "DOCTYPE" in first


def test_plugins_lists_plugins_hooks_and_types(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if not line.endswith(":")}
    assert {"ech0223", "folder", "routing", "sedex"} <= set(rows)
    assert "gateway_normalise" in rows["ech0223"]
    assert "gateway_source_types" in rows["folder"]
    assert "gateway_route" in rows["routing"]
    assert "gateway_transport_types" in rows["sedex"]
    assert "source types: folder" in out
    assert "transport types: sedex" in out
    code, out, _ = cli(capsys, "plugins", "--json")
    data = json.loads(out)
    hooks = {p["name"]: p["hooks"] for p in data["plugins"]}
    assert hooks["sedex"] == ["gateway_commands", "gateway_transport_types"]
    assert "folder" in data["sources"]
    assert "sedex" in data["transports"]


# ---------------------------------------------------------------------------
# messages, status, journal
# ---------------------------------------------------------------------------


def test_messages_list_json(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(ran.config), "messages", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list)
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == set(ran.ids.values())
    for row in rows:
        assert {"id", "state", "reason", "message_id", "deliveries"} <= set(row)
        for d in row["deliveries"]:
            assert {"partner", "state", "attempts"} <= set(d)
    ok = by_id[ran.ids["ok-1"]]
    assert (ok["state"], ok["reason"], ok["message_id"]) == ("routed", None, "cli-ok-1")
    assert [(d["partner"], d["state"], d["attempts"]) for d in ok["deliveries"]] == [
        ("canton", "delivered", 1)]
    dead = by_id[ran.ids["dead"]]
    assert dead["reason"] is None
    assert [d["state"] for d in dead["deliveries"]] == ["dead"]
    bad = by_id[ran.ids["bad"]]
    assert (bad["state"], bad["message_id"], bad["deliveries"]) == ("quarantined", None, [])
    assert "malformed XML" in bad["reason"]
    big = by_id[ran.ids["big"]]
    assert big["state"] == "quarantined"
    assert "larger than the limit" in big["reason"]


def test_messages_show_by_row_id_and_by_message_id(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, by_row, _ = cli(capsys, "--config", str(ran.config), "messages", "show",
                          str(ran.ids["ok-1"]))
    assert code == 0
    code, by_ref, _ = cli(capsys, "--config", str(ran.config), "messages", "show", "cli-ok-1")
    assert code == 0
    assert by_row == by_ref
    history = by_row.split("history:", 1)[1]
    events = [line.split()[1] for line in history.strip().splitlines()]
    assert events[:3] == ["message.received", "message.normalised", "delivery.queued"]
    assert {"delivery.sending", "delivery.sent", "delivery.delivered"} <= set(events)
    assert "receipt 100" in by_row
    code, _out, err = cli(capsys, "--config", str(ran.config), "messages", "show", "no-such-id")
    assert code == 3
    assert "no message" in err


def test_messages_show_raw_prints_the_bytes_exactly(ran: Run) -> None:
    for name in ("ok-2", "bad"):
        done = run_script("--config", str(ran.config), "messages", "show", "--raw",
                          str(ran.ids[name]))
        assert done.returncode == 0, done.stderr
        assert done.stdout == INPUTS[name][1]


def test_status(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(ran.config), "status")
    assert code == 0
    assert "messages:   quarantined 2, routed 3" in out
    assert "deliveries: dead 1, delivered 2" in out
    code, out, _ = cli(capsys, "--config", str(ran.config), "status", "--json")
    assert code == 0
    assert json.loads(out) == {"messages": {"quarantined": 2, "routed": 3},
                               "deliveries": {"dead": 1, "delivered": 2}, "overdue": {}}


def test_status_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    code, _out, err = cli(capsys, "--config", str(config), "status")
    assert code == 3
    assert "no database" in err


def test_journal_verify_and_tampering(gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(gw.config), "journal", "verify")
    assert code == 0
    assert "journal intact" in out
    conn = sqlite3.connect(gw.db)
    with conn:
        conn.execute("UPDATE journal SET detail = '{\"forged\":true}' WHERE seq = 3")
    conn.close()
    code, out, _ = cli(capsys, "--config", str(gw.config), "journal", "verify")
    assert code == 1
    assert "BROKEN at entry 3" in out


# ---------------------------------------------------------------------------
# dead letters and replays
# ---------------------------------------------------------------------------


def _deliveries(db: Path, mid: int) -> list[tuple[int, str, int | None]]:
    return states(db, "SELECT id, state, replay_of FROM deliveries WHERE message = ? ORDER BY id",
                  (mid,))


def test_dead_letters_lists_the_dead_delivery(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(ran.config), "dead-letters")
    assert code == 0
    [line] = [line for line in out.splitlines() if line.split()[0].isdigit()]
    assert line.split()[0] == str(ran.ids["dead"])
    assert "receipt 310" in line
    code, out, _ = cli(capsys, "--config", str(ran.config), "dead-letters", "--json")
    [row] = json.loads(out)
    assert (row["message"], row["message_id"], row["partner"]) == (ran.ids["dead"], "cli-dead-1",
                                                                   "canton")
    assert row["reason"].startswith("permanent error: receipt 310")


def test_messages_replay_requeues_a_dead_delivery(gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    mid = gw.ids["dead"]
    [(old, _state, _of)] = _deliveries(gw.db, mid)
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "replay", "cli-dead-1")
    assert code == 0
    assert f"message {mid}: deliveries [{old}] replayed as" in out
    [(_, old_state, _), (new, new_state, replay_of)] = _deliveries(gw.db, mid)
    assert (old_state, new_state, replay_of) == ("replayed", "queued", old)
    assert str(new) in out
    assert cli(capsys, "--config", str(gw.config), "dead-letters")[1].strip() == "no dead letters"
    code, _out, err = cli(capsys, "--config", str(gw.config), "messages", "replay", str(mid))
    assert code == 1  # nothing dead any more
    assert "no dead delivery" in err


def test_dead_letters_replay(gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    mid = gw.ids["dead"]
    [(old, _state, _of)] = _deliveries(gw.db, mid)
    code, out, _ = cli(capsys, "--config", str(gw.config), "dead-letters", "--replay")
    assert code == 0
    assert f"delivery {old} of message {mid} replayed as" in out
    assert [s for _id, s, _of in _deliveries(gw.db, mid)] == ["replayed", "queued"]
    journal = states(gw.db, "SELECT event FROM journal WHERE delivery = ? ORDER BY seq", (old,))
    assert journal[-1] == ("delivery.replayed",)
    assert cli(capsys, "--config", str(gw.config), "journal", "verify")[0] == 0


def test_replay_of_quarantined_messages_processes_them_again(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    big, bad = gw.ids["big"], gw.ids["bad"]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "replay", str(big), str(bad))
    assert code == 0
    assert f"message {big}: processed again, now routed" in out  # the size limit was raised
    assert f"message {bad}: processed again, now quarantined" in out  # still malformed
    assert states(gw.db, "SELECT state, message_id FROM messages WHERE id = ?", (big,)) == [
        ("routed", "cli-big-1")]
    assert [s for _id, s, _of in _deliveries(gw.db, big)] == ["queued"]
    assert states(gw.db, "SELECT state FROM messages WHERE id = ?", (bad,)) == [("quarantined",)]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", str(big))
    assert "message.replayed" in out
    assert cli(capsys, "--config", str(gw.config), "journal", "verify")[0] == 0
