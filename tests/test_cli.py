"""The ``ech-gateway`` command line on real folders, a real database and real subprocesses.

Most commands run in-process through :func:`gateway.cli.main` (fast); a few
run ``.venv/bin/ech-gateway`` and ``python -m gateway`` as subprocesses to
prove the console script works. The inspect commands read a database made
by one short real run of the gateway with the ``init`` configuration and
the sedex transport, whose receipts this module writes itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from socket import gethostname
from zoneinfo import ZoneInfo

import pluggy
import pytest
from lxml import etree

from gateway.api import GatewayEvent, hookimpl
from gateway.cli import main
from gateway.cli._render import iso
from gateway.config import write_initial_config
from gateway.contracts import Normalised, RawInput, Route
from gateway.outbound import Receipt, ReceiptOutcome
from gateway.plugins import LOAD_ENV, get_plugin_manager, source_types, transport_types
from gateway.retry import RetryPolicy
from gateway.store import MessageState, Outcome, Processed, SQLiteStore
from plugins.sedex.envelope import build_receipt, parse_envelope
from tests.flow import FIXTURES, drop, message, running, states, until
from tests.test_plugin_loading import BUILT_IN, install

SCRIPT = Path(sys.executable).parent / "ech-gateway"
FAST = """\
[gateway]
log_level = "WARNING"
[dispatcher]
idle_poll = "50ms"
receipt_check_interval = "100ms"
[sources.registry]
poll_interval = "50ms"
settle = "50ms"
grace = "300ms"
[partners.canton]
receipt_timeout = "300ms"
[partners.canton.sedex]
poll_interval = "50ms"
settle = "50ms"
"""
#: Inputs of the run, by name: (file name, bytes).
INPUTS: dict[str, tuple[str, bytes]] = {
    "ok-1": ("ok-1.xml", message("cli-ok-1")),
    "ok-2": ("ok-2.xml", message("cli-ok-2")),
    "dead": ("dead.xml", message("cli-dead-1")),
    "big": ("big.xml", message("cli-big-1", fixture="valid-pem-full-persondata.xml",
                               documents=False)),
    "bad": ("bad.xml", b"<oops><a></oops>"),
    "review": ("review.xml", message("cli-review-1")),  # its receipt has an unknown code
    "late": ("late.xml", message("cli-late-1")),  # never gets a receipt: overdue
    # dropped once "ok-2" is routed: the same messageId again, other bytes (a duplicate)
    "again": ("again.xml", message("cli-ok-2") + b"\n<!-- sent again -->\n"),
}
#: The sedex receipt code each sent message gets.
CODES = {"cli-ok-1": 100, "cli-ok-2": 100, "cli-dead-1": 310, "cli-review-1": 999}
LIMIT = 8000  # [limits] max_document_bytes during the run: "big" is larger


@dataclass(frozen=True)
class Run:
    """A gateway folder after one run: two delivered, one dead, one to review, one overdue,
    two quarantined, one duplicate."""

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
    await until(lambda: len(states(db, sent)) == len(codes) + 1)  # "late" too
    for ref, message_id in states(db, sent):
        if message_id not in codes:
            continue
        envl = run_dir / "sedex" / "outbox" / f"envl_{ref}.xml"
        env = parse_envelope(envl.read_bytes(), max_bytes=1 << 20)
        receipt = build_receipt(env, env.recipient_ids[0], codes[message_id], "test",
                                datetime.now().astimezone())
        drop(run_dir / "sedex" / "receipts", f"receipt-{ref}.xml", receipt)


async def _run(run_dir: Path) -> None:
    db = run_dir / "gateway.db"
    async with running(run_dir / "gateway.toml"):
        for name, (file, data) in INPUTS.items():
            if name != "again":
                drop(run_dir / "registry" / "outbox", file, data)
        await _write_receipts(run_dir, CODES)
        await until(lambda: sorted(states(db, "SELECT state FROM deliveries")) == [
            ("dead",), ("delivered",), ("delivered",), ("needs_review",), ("sent",)])
        await until(lambda: states(db, "SELECT overdue FROM deliveries WHERE state = 'sent'")
                    == [(1,)])
        await until(lambda: len(states(db, "SELECT id FROM messages WHERE state = 'quarantined'"))
                    == 2)
        drop(run_dir / "registry" / "outbox", *INPUTS["again"])
        await until(lambda: states(db, "SELECT state FROM messages WHERE ref = 'again.xml'")
                    == [("duplicate",)])


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


#: Inputs the ``many`` fixture adds: their listing is larger than a pipe's buffer (64 KiB).
MANY = 1500


@pytest.fixture(scope="module")
def many(ran: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The run's folder with MANY more inputs stored (shared, read-only)."""
    target = tmp_path_factory.mktemp("many") / "gw"
    shutil.copytree(ran.dir, target)
    store = SQLiteStore(target / "gateway.db")
    store.start()
    try:
        asyncio.run(store.add_raw([RawInput("registry", f"n-{i}.xml", message(f"many-{i}"), {})
                                   for i in range(MANY)]))
    finally:
        store.close()
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
    assert done.stdout.decode() == (f"configuration is valid ({config}): 1 source,"
                                    " 2 partners\n")


def test_check_config_refuses_durations_and_tiny_sizes_without_unit(tmp_path: Path) -> None:
    """``keep = 90`` (days meant) would let retention delete bodies after 90 seconds."""
    config = write_initial_config(tmp_path)
    text = config.read_text().replace('keep = "90d"', "keep = 90")
    text = text.replace('max_document_bytes = "128MiB"', "max_document_bytes = 10")
    config.write_text(text)
    done = run_script("--config", str(config), "check-config")
    assert done.returncode == 2
    assert done.stdout.decode().splitlines() == [
        f'{config}: retention.keep: 90 has no unit and would be 90 seconds: did you mean "90d"'
        ' or "90s"? (durations take a unit: "500ms", "30s", "5m", "2h", "7d"; 0 needs none)',
        f"{config}: limits.max_document_bytes: 10 has no unit and would be 10 bytes: did you"
        ' mean "10KiB" or "10MiB"? (a size below 1024 bytes takes a unit: "10B" if bytes are'
        " meant)"]
    # a plugin's option alike, once the core keys are right
    text = text.replace("keep = 90", 'keep = "90d"').replace("max_document_bytes = 10", "")
    config.write_text(text.replace('pair_grace = "60s"', "pair_grace = 60"))
    done = run_script("--config", str(config), "check-config")
    assert done.returncode == 2
    assert done.stdout.decode().splitlines() == [
        f'{config}: partners.canton.sedex.pair_grace: 60 has no unit and would be 60 seconds:'
        ' did you mean "60s" or "60m"? (durations take a unit: "500ms", "30s", "5m", "2h",'
        ' "7d"; 0 needs none)']


def test_commands_list_configuration_problems_a_line_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run`` and the other commands refuse an invalid configuration with a line per
    problem, as check-config lists them (they came as one line, joined by a literal \\n)."""
    config = write_initial_config(tmp_path)
    config.write_text(config.read_text().replace('log_level = "INFO"', 'log_levle = "INFO"')
                      .replace('keep = "90d"', "keep = 90"))
    code, out, err = cli(capsys, "--config", str(config), "status")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "invalid configuration:",
        f'{config}: retention.keep: 90 has no unit and would be 90 seconds: did you mean "90d"'
        ' or "90s"? (durations take a unit: "500ms", "30s", "5m", "2h", "7d"; 0 needs none)',
        f"{config}: gateway.log_levle: unknown key (did you mean 'log_level'?)"]


def test_check_config_accepts_the_shipped_examples(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """config/ with the exports' sources: its rules match only fact values the plugins declare."""
    write_initial_config(tmp_path / "config")  # the folders gateway.toml names
    shutil.copytree(Path(__file__).parent.parent / "config", tmp_path / "config",
                    dirs_exist_ok=True)
    conf_d = tmp_path / "config" / "conf.d"
    (conf_d / "30-nova.toml.example").rename(conf_d / "30-nova.toml")
    code, out, _ = cli(capsys, "--config", str(tmp_path / "config" / "gateway.toml"),
                       "check-config")
    assert code == 0, out
    assert "configuration is valid" in out


def test_check_config_says_how_a_rule_matches_a_message_without_person_event(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    rules = tmp_path / "conf.d" / "50-rules.toml"
    rules.write_text('[[rules]]\nname = "eventless"\nmatch = { fields = { person_event = "none" } }\n'
                     'then = { not_relevant = "nothing to tell" }\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert out.splitlines() == [
        f"{rules}: rules[1].match.fields.person_event: rule 'eventless': person_event 'none'"
        " never matches: a message without a personEvent has no person_event, not \"none\";"
        ' match.event = ["none"] matches it']
    rules.write_text(rules.read_text().replace('fields = { person_event = "none" }',
                                               'event = ["none"]'))
    assert cli(capsys, "--config", str(config), "check-config")[0] == 0


def test_check_config_refuses_a_misspelt_nationality_before_or_kind_with_a_suggestion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    rules = tmp_path / "conf.d" / "50-rules.toml"
    rules.write_text('[[rules]]\nname = "typos"\n'
                     'match = { fields = { nationality_before = "swis", kind = ["eventreport"] } }\n'
                     'then = { not_relevant = "nothing to tell" }\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    key = f"{rules}: rules[1].match.fields"
    assert out.splitlines() == [
        f"{key}.nationality_before: rule 'typos': unknown nationality_before 'swis' (did you"
        " mean 'swiss'?); values rules see: foreign, stateless, swiss, unknown",
        f"{key}.kind: rule 'typos': unknown kind 'eventreport' (did you mean 'eventReport'?);"
        " values rules see: eventReport, personEventMessage"]


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


def test_check_config_names_the_key_written_not_a_folder_derived_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The staging folder lies inside outbox unless ``staging`` is set: the operator wrote
    outbox, so problems name outbox, and one wrong outbox is one problem."""
    config = write_initial_config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace('outbox = "sedex/outbox"', 'outbox = "/etc/passwd/x"'))
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert out.splitlines() == [
        f"{config}: partners.canton.sedex.outbox: /etc/passwd/x does not exist"]
    # the outbox is fine, the staging folder inside it is not: said of outbox, saying which
    config.write_text(text)
    (tmp_path / "sedex" / "outbox" / ".ech-gateway-tmp").write_text("not a folder")
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert out.splitlines() == [
        f"{config}: partners.canton.sedex.outbox: the staging folder derived from outbox"
        f" (staging is unset): {tmp_path}/sedex/outbox/.ech-gateway-tmp is not a folder"]
    # an archive folder derived from receipts (receipts_archive unset) that holds another
    (tmp_path / "sedex" / "outbox" / ".ech-gateway-tmp").unlink()
    conf_d = tmp_path / "conf.d" / "60-docs.toml"
    conf_d.write_text('[documents]\ndir = "../sedex/receipts-done"\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert code == 2
    assert out.splitlines() == [
        f"{config}: partners.canton.sedex.receipts: the receipts_archive folder derived from"
        f" receipts (receipts_archive is unset): {tmp_path}/sedex/receipts-done holds the"
        f" documents folder ({tmp_path}/sedex/receipts-done): retention deletes the old files"
        " of an archive folder and its subfolders; give it a folder of its own"]


def test_check_config_names_an_unknown_transport_and_the_known_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    # the [partners.canton.sedex] table stays: it is not an "unknown table" to the reader
    config.write_text(config.read_text().replace('transport = "sedex"', 'transport = "as4"'))
    conf_d = tmp_path / "conf.d" / "50-t.toml"
    conf_d.write_text('[sources.other]\ntype = "ftp"\n')
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    pm = get_plugin_manager()
    sources, transports = ", ".join(sorted(source_types(pm))), ", ".join(sorted(transport_types(pm)))
    assert code == 2 and "sedex" in transports and "folder" in sources
    assert out.splitlines() == [
        f"{conf_d}: sources.other.type: unknown source type 'ftp'; known: {sources}",
        f"{config}: partners.canton.transport: unknown transport 'as4'; known: {transports}",
    ]


def _check_config_in_namespace(config: Path, read_only: list[Path]) -> subprocess.CompletedProcess[bytes]:
    """``check-config`` in a private mount namespace where ``read_only`` folders are read-only."""
    mounts = "".join(f'mount --bind -o ro "{p}" "{p}" && ' for p in read_only)
    return subprocess.run(["unshare", "-m", "sh", "-c",
                           f'{mounts}exec "{SCRIPT}" check-config --config "{config}"'],
                          capture_output=True, timeout=60, check=False)


def test_check_config_finds_folders_it_cannot_write_or_that_are_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "60-db.toml").write_text('[store]\npath = "../db/gateway.db"\n')
    (tmp_path / "db").mkdir()
    sedex = tmp_path / "sedex"
    (sedex / "inbox").rmdir()  # the sedex client's folder: the gateway does not make it
    shutil.rmtree(tmp_path / "registry")  # the folder source makes its own folders
    done = _check_config_in_namespace(config, [sedex / "outbox", tmp_path / "db"])
    assert done.returncode == 2, done.stderr
    assert done.stderr == b""
    assert _problems(done.stdout.decode()) == {
        "store.path": str(tmp_path / "conf.d" / "60-db.toml"),
        "partners.canton.sedex.outbox": str(config),
        "partners.canton.sedex.inbox": str(config),  # (not staging: outbox says it)
        "partners.registry.folder.path": str(config),  # the registry's: not made by the gateway
    }
    out = done.stdout.decode()
    db_dir = tmp_path.resolve() / "db"  # "../db" in conf.d/, shown resolved
    assert f"store.path: cannot write in {db_dir}: read-only file system" in out
    assert f"sedex.outbox: cannot write in {sedex / 'outbox'}: read-only file system" in out
    assert f"sedex.inbox: {sedex / 'inbox'} does not exist" in out
    # outside the namespace the same folders are writable: only the inboxes were missing
    (sedex / "inbox").mkdir()
    (tmp_path / "registry" / "inbox").mkdir(parents=True)
    code, out, _ = cli(capsys, "--config", str(config), "check-config")
    assert (code, "configuration is valid" in out) == (0, True)


def test_check_config_finds_a_read_only_drop_folder(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    done = _check_config_in_namespace(config, [tmp_path / "registry"])
    assert done.returncode == 2
    out = done.stdout.decode()
    assert _problems(out) == {"sources.registry.path": str(config),
                              "sources.registry.done_dir": str(config),
                              "partners.registry.folder.path": str(config)}
    assert f"cannot write in {tmp_path / 'registry' / 'outbox'}: read-only file system" in out


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


def test_validate_exits_3_for_a_file_that_is_not_there_as_map_test_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README: 3 is "not found" (map-test's "3 if FILE cannot be read"); invalid files are 1."""
    missing = tmp_path / "nope.xml"
    bad = FIXTURES / "invalid-missing-officialname.xml"
    code, out, _ = cli(capsys, "validate", str(FIXTURES / "valid-pem-minimal.xml"), str(missing))
    assert (code, out.splitlines()[-1]) == (3, f"{missing}: UNREADABLE: No such file or directory")
    assert cli(capsys, "validate", str(bad), str(missing))[0] == 3  # the check is not complete
    assert cli(capsys, "validate", str(bad))[0] == 1
    # map-test's 3: tests/test_mapping.py::test_map_test_says_when_the_file_cannot_be_read


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


def test_rules_explain_names_the_message_a_stored_input_would_duplicate(
        ran: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon stores known bytes from the same source as a duplicate: explain says so,
    then what the rules would decide were the file new; it stores nothing."""
    known = tmp_path / "ok-1-again.xml"
    known.write_bytes(INPUTS["ok-1"][1])
    fresh = tmp_path / "fresh.xml"
    fresh.write_bytes(message("cli-fresh-1"))
    count = states(ran.db, "SELECT count(*) FROM messages")
    code, out, _err = cli(capsys, "--config", str(ran.config), "rules", "explain",
                          "--source", "registry", str(known), str(fresh))
    assert code == 0
    lines = out.splitlines()
    first = lines.index(f"{known.name}: the daemon would take it as a duplicate of message"
                        f" {ran.ids['ok-1']} (the same bytes from source registry) and go no"
                        " further")
    assert lines[first + 1] == "  were it new, the rules would decide:"
    assert lines[first + 2].startswith(f"    {known.name}: personEventMessage")
    assert any(line.startswith("      decided by ") for line in lines)
    [fresh_line] = [line for line in lines if line.startswith(fresh.name)]
    assert fresh_line.startswith(f"{fresh.name}: personEventMessage")  # new: explained as usual
    assert states(ran.db, "SELECT count(*) FROM messages") == count  # nothing stored


def test_rules_explain_names_a_file_it_cannot_read_and_explains_the_others(
        ran: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.xml"
    fresh = tmp_path / "fresh.xml"
    fresh.write_bytes(message("cli-fresh-2"))
    code, out, err = cli(capsys, "--config", str(ran.config), "rules", "explain",
                         "--source", "registry", str(missing), str(fresh))
    assert code == 3
    assert err == f"ech-gateway rules explain: cannot read {missing}: No such file or directory\n"
    assert f"{fresh.name}: personEventMessage" in out


def test_rules_explain_points_an_export_to_map_test_as_validate_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON or CSV export given to a source without a mapping was "malformed XML"."""
    config = write_initial_config(tmp_path / "gw")
    export, rows = tmp_path / "nova.json", tmp_path / "nova.csv"
    export.write_text('[{"vn": "756.1234.5678.97"}]')
    rows.write_text("vn;name\n756.1234.5678.97;Muster\n")
    code, out, _ = cli(capsys, "--config", str(config), "rules", "explain", str(export), str(rows))
    advice = ("a JSON or CSV export is read by a folder source's mapping; see what it makes of"
              " each row with `ech-gateway map-test --source NAME")
    assert (code, out.splitlines()[1:]) == (1, [
        f"nova.json: quarantined: a JSON document: {advice} {export}`",
        f"nova.csv: quarantined: not XML (CSV?): {advice} {rows}`"])
    validated = cli(capsys, "validate", str(export))[1]
    assert validated == f"{export}: NOT CHECKED: a JSON document: {advice} {export}`\n"


def test_rules_explain_counts_a_deadline_from_the_messages_date_not_today(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``deadline = "30d"`` is 30 days after the message's date (messageDate, no eventDate
    given), so a replay or an explanation later decides the same deadline."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "50-rules.toml").write_text(
        '[[rules]]\nname = "all"\nthen = { route_to = ["canton"], deadline = "30d" }\n')
    dated = tmp_path / "dated.xml"
    dated.write_bytes(message("cli-dated-1", documents=False))  # messageDate 2024-03-04
    code, out, _err = cli(capsys, "--config", str(config), "rules", "explain", str(dated))
    assert code == 0, out
    assert "    deadline: 2024-04-03" in out.splitlines()


def test_rules_explain_takes_the_age_on_the_messages_date_not_today(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Born 1985-04-12, moved in on 2024-03-01: 38 then, whatever today is, so a replay
    years later decides as the first pass did."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "50-rules.toml").write_text(
        '[[rules]]\nname = "young"\nmatch = { age_max = 38 }\nthen = { route_to = ["canton"] }\n')
    moved_in = tmp_path / "moved-in.xml"
    moved_in.write_bytes(message("cli-age-1", "valid-pem-full-persondata.xml", documents=False))
    code, out, _err = cli(capsys, "--config", str(config), "rules", "explain", str(moved_in))
    assert code == 0, out
    assert ", age=38, " in out
    assert "  rules[1] young: matches" in out.splitlines()


def test_rules_explain_refuses_a_source_that_brings_no_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --source was explained as if real (rules on source never matched), and
    "manual" as a manual send that "names no partner"."""
    config = write_initial_config(tmp_path)
    fresh = tmp_path / "fresh.xml"
    fresh.write_bytes(message("cli-fresh-3", documents=False))
    for source, meant in (("registy", " (did you mean 'registry'?)"), ("manual", "")):
        code, out, err = cli(capsys, "--config", str(config), "rules", "explain",
                             "--source", source, str(fresh))
        assert code == 2
        assert out == ""
        assert err == (f"ech-gateway rules explain: no source {source!r}{meant}; the files"
                       " may come from: canton, registry\n")
    code, out, _err = cli(capsys, "--config", str(config), "rules", "explain",
                          "--source", "canton", str(fresh))  # the canton's messages, over sedex
    assert code == 0
    assert "inbound from partner 'canton'" in out


def test_plugins_lists_plugins_hooks_and_types(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if not line.endswith(":")}
    assert {"ech0223", "folder", "rules", "sedex"} <= set(rows)
    assert "gateway_normalise" in rows["ech0223"]
    assert "gateway_source_types" in rows["folder"]
    assert "gateway_decide" in rows["rules"]
    assert "gateway_transport_types" in rows["sedex"]
    assert "source types: folder" in out
    assert "transport types: " in out and "sedex" in out.split("transport types: ")[1]
    code, out, _ = cli(capsys, "plugins", "--json")
    data = json.loads(out)
    hooks = {p["name"]: p["hooks"] for p in data["plugins"]}
    assert hooks["sedex"] == ["gateway_check_config", "gateway_commands", "gateway_transport_types"]
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
    # the registry's eCH-0223 message states its person: the state is kept with it
    assert events[:5] == ["message.received", "message.normalised", "message.decided",
                          "person.created", "delivery.queued"]
    assert {"delivery.sending", "delivery.sent", "delivery.delivered"} <= set(events)
    assert "receipt 100" in by_row
    assert ": delivered, 1 attempt" in by_row and "1 attempts" not in by_row
    code, _out, err = cli(capsys, "--config", str(ran.config), "messages", "show", "no-such-id")
    assert code == 3
    assert "no message" in err


def test_messages_show_raw_prints_the_bytes_exactly(ran: Run) -> None:
    for name in ("ok-2", "bad"):
        done = run_script("--config", str(ran.config), "messages", "show", "--raw",
                          str(ran.ids[name]))
        assert done.returncode == 0, done.stderr
        assert done.stdout == INPUTS[name][1]


def test_status_exits_1_with_every_reason_for_attention(
        ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(ran.config), "status")
    assert code == 1
    assert "messages:   duplicate 1, quarantined 2, routed 5" in out
    assert "deliveries: dead 1, delivered 2, needs_review 1, sent 1" in out
    assert "receipts overdue: canton 1" in out
    attention = out.split("ATTENTION:\n", 1)[1].splitlines()
    assert [line.split(":")[0].strip() for line in attention] == [
        "1 dead letter", "1 delivery to review", "1 receipt overdue",
        "2 quarantined inputs not handled"]
    code, out, _ = cli(capsys, "--config", str(ran.config), "status", "--json")
    assert code == 1
    data = json.loads(out)
    assert (data["verdict"], data["unhandled"], data["overdue"]) == ("attention", 2, {"canton": 1})
    assert data["messages"] == {"duplicate": 1, "quarantined": 2, "routed": 5}
    assert [(r["kind"], r["count"]) for r in data["reasons"]] == [
        ("dead", 1), ("needs_review", 1), ("overdue", 1), ("quarantined", 2)]
    assert all(r["hint"].startswith("ech-gateway ") for r in data["reasons"])


async def _receipt(db: Path, receipt: Receipt) -> None:
    """Record ``receipt``, as the receipts folder would bring it; it must match an attempt."""
    store = SQLiteStore(db)
    store.start()
    try:
        assert await store.record_receipts([receipt], lambda _partner: RetryPolicy()) == [True]
    finally:
        store.close()


async def _deliver_late(run: Run) -> None:
    """Record the overdue delivery's receipt."""
    [(ref,)] = states(run.db, "SELECT attempt_ref FROM deliveries WHERE state = 'sent'")
    await _receipt(run.db, Receipt(ref, ReceiptOutcome.DELIVERED, "100", "late", datetime.now(UTC)))


def test_status_exits_0_once_everything_is_dealt_with(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(gw.config)
    assert cli(capsys, "--config", config, "messages", "handle", str(gw.ids["big"]),
               "--note", "the registry sends it again in two parts")[0] == 0
    fixed = gw.dir / "bad-fixed.xml"
    fixed.write_bytes(message("cli-bad-fixed"))
    assert cli(capsys, "--config", config, "messages", "resubmit", str(gw.ids["bad"]),
               str(fixed))[0] == 0
    assert cli(capsys, "--config", config, "messages", "replay", "cli-dead-1", "cli-review-1")[0] == 0
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    assert (code, [r["kind"] for r in json.loads(out)["reasons"]]) == (1, ["overdue"])
    asyncio.run(_deliver_late(gw))
    code, out, _ = cli(capsys, "--config", config, "status")
    assert code == 0
    assert out.splitlines()[-1] == "OK: nothing needs attention"
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert (code, data["verdict"], data["reasons"], data["unhandled"]) == (0, "ok", [], 0)


def test_messages_show_says_receipt_overdue_only_while_the_receipt_is_awaited(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    late = str(gw.ids["late"])
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", late)
    [line] = [line for line in out.splitlines() if line.strip().startswith("delivery ")]
    assert code == 0 and ": sent, " in line and line.endswith(", RECEIPT OVERDUE")
    assert _json_overdue(capsys, gw, late) == [True]
    asyncio.run(_deliver_late(gw))  # the receipt comes after all: the flag stays in the row
    assert states(gw.db, "SELECT state, overdue FROM deliveries WHERE message = ?",
                  (gw.ids["late"],)) == [("delivered", 1)]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", late)
    [line] = [line for line in out.splitlines() if line.strip().startswith("delivery ")]
    assert code == 0 and ": delivered, " in line
    assert "OVERDUE" not in out
    assert _json_overdue(capsys, gw, late) == [False]


def _json_overdue(capsys: pytest.CaptureFixture[str], gw: Run, message: str) -> list[bool]:
    """What ``messages show --json`` says of the deliveries' receipts; ``list --json`` agrees."""
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", message, "--json")
    assert code == 0
    shown = [d["overdue"] for d in json.loads(out)["deliveries"]]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "list", "--json")
    [listed] = [m for m in json.loads(out) if str(m["id"]) == message]
    assert code == 0 and [d["overdue"] for d in listed["deliveries"]] == shown
    return shown


async def _pause(db: Path, node: str, partner: str, error: str) -> float:
    """Pause ``partner`` on ``node`` in the database, as that node does when its outbox is gone."""
    store = SQLiteStore(db)
    store.start()
    try:
        return await store.pause_partner(node, partner, error)
    finally:
        store.close()


async def _resume(db: Path, node: str, partner: str, since: float, error: str) -> None:
    store = SQLiteStore(db)
    store.start()
    try:
        await store.resume_partner(node, partner, since, error)
    finally:
        store.close()


def test_status_names_a_paused_partner_and_its_node_until_it_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_initial_config(tmp_path))
    db = tmp_path / "gateway.db"
    error = f"cannot write into {tmp_path}/sedex/outbox: it is missing"
    since = asyncio.run(_pause(db, "vm-1", "canton", error))
    on_2 = asyncio.run(_pause(db, "vm-2", "canton", "disk full"))  # another node's own fault
    asyncio.run(_pause(db, "vm-1", "gone", "disk full"))  # a partner since removed from the config
    code, out, _ = cli(capsys, "--config", config, "status")
    assert code == 1
    lines = out.split("ATTENTION:\n", 1)[1].splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"  0 deliveries held: partner canton paused on node vm-1 since"
                               f" {iso(since)} by a fault on that machine ({error}): make its"
                               " transport's outbox on that node's machine")
    assert "that node resumes the partner by itself at its next probe" in lines[0]
    assert lines[1].startswith(f"  0 deliveries held: partner canton paused on node vm-2 since"
                               f" {iso(on_2)} by a fault on that machine (disk full): ")
    # a pause of a partner no longer configured is said, but pages nobody
    assert "paused: partner gone on node vm-1 since " in out and "no longer configured" in out
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert (code, data["verdict"]) == (1, "attention")
    assert [{k: reason[k] for k in ("kind", "node", "partner", "since", "error", "count")}
            for reason in data["reasons"]] == [
        {"kind": "paused", "node": "vm-1", "partner": "canton", "since": iso(since),
         "error": error, "count": 0},
        {"kind": "paused", "node": "vm-2", "partner": "canton", "since": iso(on_2),
         "error": "disk full", "count": 0}]
    assert data["paused"] == [
        {"node": "vm-1", "partner": "canton", "since": iso(since), "error": error,
         "deliveries": 0, "configured": "enabled"},
        {"node": "vm-1", "partner": "gone", "since": data["paused"][1]["since"],
         "error": "disk full", "deliveries": 0, "configured": "removed"},
        {"node": "vm-2", "partner": "canton", "since": iso(on_2), "error": "disk full",
         "deliveries": 0, "configured": "enabled"}]
    # node vm-1's probe gets through: its pause ends, node vm-2's still pages
    asyncio.run(_resume(db, "vm-1", "canton", since, error))
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert (code, [(r["kind"], r["node"]) for r in data["reasons"]]) == (1, [("paused", "vm-2")])
    asyncio.run(_resume(db, "vm-2", "canton", on_2, "disk full"))
    code, out, _ = cli(capsys, "--config", config, "status")
    assert code == 0
    assert out.splitlines()[-1] == "OK: nothing needs attention"
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert (code, data["verdict"], data["reasons"]) == (0, "ok", [])
    assert [(p["node"], p["partner"]) for p in data["paused"]] == [("vm-1", "gone")]


def test_a_pause_no_probe_will_end_is_resumed_by_hand(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A node renamed or retired while paused leaves its pause behind: ``partners resume``
    ends it, journaled as its probe would have."""
    config = str(write_initial_config(tmp_path))
    db = tmp_path / "gateway.db"
    since = asyncio.run(_pause(db, "old-host", "canton", "disk full"))
    code, _out, err = cli(capsys, "--config", config, "partners", "resume", "canton",
                          "--node", "new-host")
    assert code == 1 and "not paused on node new-host (paused on: old-host)" in err
    code, _out, err = cli(capsys, "--config", config, "partners", "resume", "canon")
    assert (code, err) == (1, f"ech-gateway: partner canon is not paused on node {gethostname()},"
                              " nor on any other; no partner 'canon' is configured"
                              " (did you mean 'canton'?)\n")
    code, out, _ = cli(capsys, "--config", config, "partners", "resume", "canton",
                       "--node", "old-host")
    assert code == 0
    assert out.strip() == (f"partner canton resumed on node old-host: paused since {iso(since)};"
                           " the pause no longer counts toward max_age for 0 open deliveries")
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    assert (code, json.loads(out)["paused"]) == (0, [])
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'partner.resumed'")
    assert (json.loads(detail)["node"], json.loads(detail)["partner"]) == ("old-host", "canton")


def test_resuming_a_partner_with_one_open_delivery_counts_it_in_the_singular(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """The run left one delivery to canton open (sent, its receipt overdue)."""
    since = asyncio.run(_pause(gw.db, "old-host", "canton", "disk full"))
    code, out, _ = cli(capsys, "--config", str(gw.config), "partners", "resume", "canton",
                       "--node", "old-host")
    assert (code, out) == (0, f"partner canton resumed on node old-host: paused since"
                              f" {iso(since)}; the pause no longer counts toward max_age for"
                              " 1 open delivery\n")


async def _attempts(db: Path, *attempts: tuple[str, str]) -> list[str]:
    """One attempt per (partner, outcome kind), each at that partner's first due delivery;
    their attempt refs."""
    store = SQLiteStore(db)
    store.start()
    try:
        refs = []
        for partner, kind in attempts:
            [c] = await store.claim_due("n1", 60, 1, [partner])
            await store.record_outcomes([Outcome(c.delivery, c.attempt_ref, kind)],
                                        lambda _partner: RetryPolicy(), {partner: 3600.0})
            refs.append(c.attempt_ref)
        return refs
    finally:
        store.close()


async def _to_three_partners(db: Path) -> None:
    """canton: a dead letter and a delivered message; registry: a delivery to review (its
    receipt's code unknown); gone (no longer configured): a delivery queued."""
    store = SQLiteStore(db)
    store.start()
    try:
        routes = [("canton", "registry"), ("canton",), ("gone",)]
        rows = await store.add_raw([RawInput("registry", f"s-{i}.xml", message(f"status-{i}"), {})
                                    for i in range(len(routes))])
        tree = etree.ElementTree(etree.Element("x"))
        await store.record_processing([
            Processed(mid, MessageState.ROUTED,
                      normalised=Normalised("personEventMessage", f"status-{i}", b"<x/>", tree),
                      routes=[Route(p, "test") for p in partners])
            for i, ((mid, _new), partners) in enumerate(zip(rows, routes, strict=True))])
    finally:
        store.close()
    _dead, _delivered, ref = await _attempts(
        db, ("canton", "permanent"), ("canton", "delivered"), ("registry", "sent"))
    await _receipt(db, Receipt(ref, ReceiptOutcome.NEEDS_REVIEW, "999", "unknown",
                               datetime.now(UTC)))


def test_status_counts_each_partners_deliveries_as_they_are_now(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Which destination has the dead letters and the deliveries to review; a replayed dead
    letter no longer counts as dead."""
    config = str(write_initial_config(tmp_path))  # partners canton and registry
    db = tmp_path / "gateway.db"
    asyncio.run(_to_three_partners(db))
    code, out, _ = cli(capsys, "--config", config, "status")
    assert code == 1
    assert out.splitlines()[1:5] == [
        "deliveries: dead 1, delivered 1, needs_review 1, queued 1",
        "  canton:   dead 1",
        "  gone:     queued 1 (not configured)",
        "  registry: needs_review 1"]
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert code == 1
    assert data["deliveries"] == {"dead": 1, "delivered": 1, "needs_review": 1, "queued": 1}
    assert data["unsettled"] == {"canton": {"dead": 1}, "gone": {"queued": 1},
                                 "registry": {"needs_review": 1}}
    assert [(r["kind"], r["count"], r["partners"]) for r in data["reasons"]] == [
        ("dead", 1, {"canton": 1}), ("needs_review", 1, {"registry": 1})]
    assert cli(capsys, "--config", config, "dead-letters", "--replay")[0] == 0
    code, out, _ = cli(capsys, "--config", config, "status")
    assert (code, out.splitlines()[2]) == (1, "  canton:   queued 1")
    asyncio.run(_attempts(db, ("canton", "delivered")))  # the replayed copy gets through
    code, out, _ = cli(capsys, "--config", config, "status")
    assert out.splitlines()[1:4] == [
        "deliveries: delivered 2, needs_review 1, queued 1, replayed 1",
        "  gone:     queued 1 (not configured)",
        "  registry: needs_review 1"], "canton has nothing unsettled left"
    code, out, _ = cli(capsys, "--config", config, "status", "--json")
    data = json.loads(out)
    assert "canton" not in data["unsettled"]
    assert [(r["kind"], r["partners"]) for r in data["reasons"]] == [
        ("needs_review", {"registry": 1})]


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
    assert f"message {mid}: delivery {old} replayed as" in out
    [(_, old_state, _), (new, new_state, replay_of)] = _deliveries(gw.db, mid)
    assert (old_state, new_state, replay_of) == ("replayed", "queued", old)
    assert str(new) in out
    assert cli(capsys, "--config", str(gw.config), "dead-letters")[1].strip() == "no dead letters"
    code, _out, err = cli(capsys, "--config", str(gw.config), "messages", "replay", str(mid))
    assert code == 1  # nothing dead any more
    assert "no dead delivery" in err


def test_a_replay_from_the_command_line_is_announced_to_the_plugins(
        gw: Run, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[GatewayEvent] = []

    class Listener:
        @hookimpl
        def gateway_event(self, event: GatewayEvent) -> None:
            heard.append(event)

    def with_listener() -> pluggy.PluginManager:
        pm = get_plugin_manager()
        pm.register(Listener())
        return pm

    monkeypatch.setattr("gateway.cli.get_plugin_manager", with_listener)
    mid = gw.ids["dead"]
    [(old, _state, _of)] = _deliveries(gw.db, mid)
    assert cli(capsys, "--config", str(gw.config), "messages", "replay", "cli-dead-1")[0] == 0
    [(_, _, _), (new, _, _)] = _deliveries(gw.db, mid)
    assert [(e.kind, e.message, e.delivery, e.detail.get("new_delivery")) for e in heard] == [
        ("delivery.replayed", mid, old, new)]


def test_messages_replay_errors_are_said_as_every_command_says_them(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """``replay 999`` printed ``999: no message 999``; the others say ``ech-gateway: ...``."""
    code, out, err = cli(capsys, "--config", str(gw.config), "messages", "replay", "999")
    assert (code, out, err) == (3, "", "ech-gateway: no message 999\n")
    assert cli(capsys, "--config", str(gw.config), "messages", "show", "999")[2] == err
    code, out, err = cli(capsys, "--config", str(gw.config), "messages", "replay",
                         str(gw.ids["ok-1"]))
    assert (code, out, err) == (1, "", f"ech-gateway: message {gw.ids['ok-1']}: it is routed"
                                " and has no dead delivery to replay\n")


def test_messages_replay_help_says_what_it_acts_on(capsys: pytest.CaptureFixture[str]) -> None:
    """Not only quarantined messages and dead deliveries (see _replay_one): the help says so."""
    with pytest.raises(SystemExit):
        main(["messages", "replay", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("process a quarantined, not relevant or needs_review message again (an export: its"
            " quarantined rows), or resend its dead, rejected or needs_review deliveries") in text
    assert "ID [ID ...]" in text


@pytest.mark.parametrize("command", [("messages", "list"), ("cases", "list")])
@pytest.mark.parametrize(("given", "why"), [("-3", "must be at least 1, not -3"),
                                            ("0", "must be at least 1, not 0"),
                                            ("all", "not a whole number: 'all'")])
def test_a_limit_below_one_is_refused(capsys: pytest.CaptureFixture[str],
                                      command: tuple[str, str], given: str, why: str) -> None:
    """``--limit -3`` listed every message (SQLite reads a negative LIMIT as none)."""
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--limit", given])
    assert stopped.value.code == 2
    assert f"argument --limit: {why}" in capsys.readouterr().err


def test_every_argument_says_what_it_is_in_the_help() -> None:
    """``demo --seed``, ``init DIR``, every ``--json``... were listed without a word."""
    from gateway.cli import build_parser

    pm = get_plugin_manager()
    commands = [c for found in pm.hook.gateway_commands() for c in found]
    silent, todo = [], [build_parser(commands)]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
            elif not action.help:
                silent.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert silent == []


def test_an_empty_list_says_there_is_nothing(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """``messages list --state not_relevant`` printed the header alone."""
    config = str(ran.config)
    assert cli(capsys, "--config", config, "messages", "list", "--state", "not_relevant") == (
        0, "no messages (--state not_relevant)\n", "")
    assert cli(capsys, "--config", config, "messages", "list", "--state", "routed",
               "--delivery-state", "retry_wait")[1] == (
        "no messages (--state routed, --delivery-state retry_wait)\n")
    assert cli(capsys, "--config", config, "messages", "list", "--state", "not_relevant",
               "--json")[1] == "[]\n"
    assert cli(capsys, "--config", config, "messages", "list", "--state", "duplicate")[1] \
        .startswith("    ID  RECEIVED")
    assert cli(capsys, "--config", config, "cases", "list") == (0, "no cases\n", "")  # no answers


def test_each_command_says_what_it_does_in_its_own_help() -> None:
    """``ech-gateway messages replay --help`` said only its usage: the line in the list is
    its description too, for every command and action (plugins' included)."""
    from gateway.cli import build_parser

    pm = get_plugin_manager()
    commands = [c for found in pm.hook.gateway_commands() for c in found]
    undescribed, todo = [], [build_parser(commands)]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if not sub.description:
                        undescribed.append(f"{parser.prog} {name}")
                    todo.append(sub)
    assert undescribed == []


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
    # a second time there is nothing to replay, and it says so rather than print nothing
    code, out, _ = cli(capsys, "--config", str(gw.config), "dead-letters", "--replay")
    assert (code, out.strip()) == (0, "no dead letters to replay")


def test_replay_of_quarantined_messages_processes_them_again(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    big, bad = gw.ids["big"], gw.ids["bad"]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "replay", str(big), str(bad))
    assert code == 1  # one is quarantined again: the replay did not cure it
    assert f"message {big}: processed again, now routed" in out  # the size limit was raised
    [again] = [line for line in out.splitlines() if line.startswith(f"message {bad}:")]
    assert again.startswith(f"message {bad}: processed again, still quarantined: malformed XML")
    assert states(gw.db, "SELECT state, message_id FROM messages WHERE id = ?", (big,)) == [
        ("routed", "cli-big-1")]
    assert [s for _id, s, _of in _deliveries(gw.db, big)] == ["queued"]
    assert states(gw.db, "SELECT state FROM messages WHERE id = ?", (bad,)) == [("quarantined",)]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", str(big))
    assert "message.replayed" in out
    assert cli(capsys, "--config", str(gw.config), "journal", "verify")[0] == 0


#: A log line of the text format: time, level, logger.
TEXT_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")


def test_a_commands_log_lines_are_the_daemons_on_stderr_without_vn(gw: Run) -> None:
    """``send`` and ``messages replay`` process in the command's process: what the alerts
    plugin and the eCH-0223 upgrade log there reaches stderr as log lines of the configured
    format, at WARNING (the INFO the configuration names is the daemon's), and without the
    VN the file's name and the quarantine reason hold; stdout has the command's line alone."""
    vn = "7561234567897"
    permit = gw.dir / f"{vn}-permit.xml"  # a registry names the person's file by their VN
    permit.write_bytes((FIXTURES / "valid-pem13-full-persondata.xml").read_bytes().replace(
        b"files/mietvertrag.pdf", f"files/{vn}-lease.pdf".encode()))  # not in the input
    (gw.dir / "conf.d" / "30-log.toml").write_text('[gateway]\nlog_level = "INFO"\n')
    done = run_script("--config", str(gw.config), "send", str(permit), "--partner", "canton")
    [(mid, reason)] = states(gw.db, "SELECT id, reason FROM messages WHERE ref = ?",
                             (permit.name,))
    assert vn in reason
    assert (done.returncode, done.stdout.decode()) == (1, f"message {mid}: quarantined: {reason}\n")
    err = done.stderr.decode()
    logged = [TEXT_LOG_LINE.match(line) for line in err.splitlines()]
    assert all(logged), err
    assert [(m["level"], m["logger"]) for m in logged if m] == [
        ("WARNING", "plugins.ech0223"), ("WARNING", "gateway.alerts")]
    assert f"WARNING gateway.alerts: message {mid} quarantined: " in err
    assert vn not in err

    (gw.dir / "conf.d" / "30-log.toml").write_text('[gateway]\nlog_format = "json"\n')
    done = run_script("--config", str(gw.config), "messages", "replay", str(mid))
    assert done.stdout.decode() == f"message {mid}: processed again, still quarantined: {reason}\n"
    lines = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("WARNING", "plugins.ech0223"), ("WARNING", "gateway.alerts")]
    assert vn not in done.stderr.decode()


_LOOKING = """
    import json
    import logging

    from gateway.api import Command, hookimpl

    log = logging.getLogger("acme_look")

    def configure(parser):
        parser.add_argument("vn")

    def run(args):
        log.info("looking up a person")  # the daemon's level, not a command's
        log.warning("person %s looked up", args.vn)
        print(json.dumps({"found": 0}))
        return 0

    @hookimpl
    def gateway_commands():
        return [Command("acme-look", "look a person up", configure, run)]
    """


def test_a_plugins_command_logs_as_a_built_in_one_in_the_configured_format(tmp_path: Path
                                                                          ) -> None:
    """The CLI sets up a plugin command's logging from the configuration, as a built-in's:
    a warning naming a VN reaches stderr as a JSON log line when ``log_format = "json"``,
    without the VN, the INFO line left out; stdout has the command's JSON alone. A
    configuration that does not load leaves the command to run, logging text."""
    vn = "7561234567897"
    site = tmp_path / "site"
    install(site, "acme-look", "acme", "acme_look_mod", _LOOKING)
    config = write_initial_config(tmp_path / "gw")
    (tmp_path / "gw" / "conf.d" / "30-log.toml").write_text(
        '[gateway]\nlog_level = "INFO"\nlog_format = "json"\n')
    env = {LOAD_ENV: f"{BUILT_IN},acme",
           "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = run_script("--config", str(config), "acme-look", vn, env=env)
    assert (done.returncode, json.loads(done.stdout)) == (0, {"found": 0}), done.stderr
    [line] = [json.loads(line) for line in done.stderr.decode().splitlines()]
    assert (line["level"], line["logger"], line["msg"]) == (
        "WARNING", "acme_look", "person 756\u2026 looked up")

    done = run_script("--config", str(tmp_path / "none.toml"), "acme-look", vn, env=env)
    assert (done.returncode, json.loads(done.stdout)) == (0, {"found": 0}), done.stderr
    [match] = [TEXT_LOG_LINE.match(line) for line in done.stderr.decode().splitlines()]
    assert match is not None and match.string[match.end():] == "person 756\u2026 looked up"


# ---------------------------------------------------------------------------
# quarantined input: resubmit a correction, or mark it handled
# ---------------------------------------------------------------------------


def _journal(db: Path, mid: int) -> list[tuple[str, dict[str, object]]]:
    return [(event, json.loads(detail)) for event, detail in states(
        db, "SELECT event, detail FROM journal WHERE message = ? ORDER BY seq", (mid,))]


def _unhandled(capsys: pytest.CaptureFixture[str], run: Run) -> list[int]:
    code, out, _ = cli(capsys, "--config", str(run.config), "messages", "list", "--unhandled",
                       "--json")
    assert code == 0
    return [row["id"] for row in json.loads(out)]


def test_resubmit_stores_a_correction_and_handles_the_original(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    bad, big = gw.ids["bad"], gw.ids["big"]
    assert _unhandled(capsys, gw) == [bad, big]
    fixed = gw.dir / "bad-fixed.xml"
    fixed.write_bytes(message("cli-bad-fixed"))
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "resubmit", str(bad),
                       str(fixed))
    assert code == 0
    [(new, state, source, ref, message_id)] = states(
        gw.db, "SELECT id, state, source, ref, message_id FROM messages WHERE id > ?",
        (max(gw.ids.values()),))
    assert out.strip() == f"message {new} corrects message {bad} (now handled): routed"
    assert (state, source, ref, message_id) == ("routed", "registry", "bad-fixed.xml",
                                                "cli-bad-fixed")
    assert states(gw.db, "SELECT raw FROM payloads WHERE message = ?", (new,)) == [
        (fixed.read_bytes(),)]
    assert [s for _id, s, _of in _deliveries(gw.db, new)] == ["queued"]
    assert ("message.correction", {"of": bad}) in _journal(gw.db, new)
    assert _journal(gw.db, bad)[-1] == (
        "message.handled", {"note": f"corrected by message {new}", "correction": new})
    assert _unhandled(capsys, gw) == [big]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", str(new))
    assert f"corrects:  message {bad}" in out
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", str(bad), "--json")
    handled = json.loads(out)["handled"]
    assert (handled["note"], handled["correction"]) == (f"corrected by message {new}", new)
    assert cli(capsys, "--config", str(gw.config), "journal", "verify")[0] == 0


def test_a_resubmitted_file_quarantined_again_is_said_and_exits_1(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """As ``messages replay`` of a message quarantined again: the reason, and exit 1."""
    bad = gw.ids["bad"]
    still = gw.dir / "still-bad.xml"
    still.write_bytes(b"<oops><a></oops><!-- corrected? -->")
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "resubmit", str(bad),
                       str(still))
    [(new, state)] = states(gw.db, "SELECT id, state FROM messages WHERE id > ?",
                            (max(gw.ids.values()),))
    assert code == 1
    assert out.startswith(f"message {new} corrects message {bad} (now handled), but is"
                          " quarantined too: malformed XML")
    assert state == "quarantined"
    assert _unhandled(capsys, gw) == [new, gw.ids["big"]]  # the correction waits now


def test_replay_of_several_exits_with_the_most_severe_code_whatever_the_order(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """Quarantined again (1) < no such message (3) < a messageId naming several (4)."""
    bad = str(gw.ids["bad"])
    config = str(gw.config)
    assert cli(capsys, "--config", config, "messages", "replay", "999999", bad)[0] == 3
    assert cli(capsys, "--config", config, "messages", "replay", bad, "999999")[0] == 3
    code, out, err = cli(capsys, "--config", config, "messages", "replay", "cli-ok-2", "999999",
                         bad)
    assert code == 4
    assert "messageId cli-ok-2: it names 2 messages" in err and "no message 999999" in err
    assert f"message {bad}: processed again, still quarantined" in out  # the others go on


def test_assign_refuses_a_vn_with_a_wrong_check_digit_before_anything_is_asked(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped VN is a bad argument (exit 2), as ``persons show`` says of it: nothing is
    recorded, and no registry is asked about it."""
    journal = states(gw.db, "SELECT count(*) FROM journal")
    code, out, err = cli(capsys, "--config", str(gw.config), "messages", "assign",
                         str(gw.ids["review"]), "--person", "756.1234.5678.90")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1].endswith("argument --person: 756.1234.5678.90 has a wrong check"
                                         " digit, so it is no VN (mistyped?)")
    assert states(gw.db, "SELECT count(*) FROM journal") == journal


def test_handle_marks_quarantined_input_handled_with_a_note(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    big = gw.ids["big"]
    note = "registry will resend it in two parts (ticket 4711)"
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "handle", str(big),
                       "--note", note)
    assert (code, out.strip()) == (0, f"message {big} handled: {note}")
    assert _journal(gw.db, big)[-1] == ("message.handled", {"note": note, "correction": None})
    assert _unhandled(capsys, gw) == [gw.ids["bad"]]
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "list")
    [line] = [line for line in out.splitlines() if line.split()[0] == str(big)]
    assert line.endswith("[handled]")
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", str(big))
    assert f": {note}" in out.split("handled:", 1)[1].splitlines()[0]
    assert cli(capsys, "--config", str(gw.config), "journal", "verify")[0] == 0


def test_handle_and_resubmit_refuse_what_they_cannot_do(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(gw.config)
    before = states(gw.db, "SELECT count(*) FROM messages")
    journal = states(gw.db, "SELECT count(*) FROM journal")
    code, _out, err = cli(capsys, "--config", config, "messages", "handle", "cli-ok-1", "--note", "x")
    assert (code, "is routed, not quarantined" in err) == (1, True)
    fixed = gw.dir / "fixed.xml"
    fixed.write_bytes(message("cli-fixed-1"))
    code, _out, err = cli(capsys, "--config", config, "messages", "resubmit", "cli-ok-1", str(fixed))
    assert (code, err) == (1, f"ech-gateway: message {gw.ids['ok-1']} is routed: only a"
                           " quarantined message can be resubmitted (a corrected file takes the"
                           " place of its input)\n")
    # a "correction" with the bytes of an earlier input would only be its duplicate
    same = gw.dir / "same.xml"
    same.write_bytes(INPUTS["ok-1"][1])
    code, _out, err = cli(capsys, "--config", config, "messages", "resubmit", str(gw.ids["bad"]),
                          str(same))
    assert code == 1
    assert f"same input as message {gw.ids['ok-1']}" in err
    code, _out, err = cli(capsys, "--config", config, "messages", "resubmit", str(gw.ids["bad"]),
                          str(gw.dir / "missing.xml"))
    assert (code, "cannot read" in err) == (3, True)  # as validate and rules explain
    assert states(gw.db, "SELECT count(*) FROM messages") == before
    assert states(gw.db, "SELECT count(*) FROM journal") == journal
    assert _unhandled(capsys, gw) == [gw.ids["bad"], gw.ids["big"]]
    assert cli(capsys, "--config", config, "messages", "handle", str(gw.ids["bad"]),
               "--note", "x")[0] == 0
    code, _out, err = cli(capsys, "--config", config, "messages", "handle", str(gw.ids["bad"]),
                          "--note", "again")
    assert (code, "handled already" in err) == (1, True)


def test_replay_of_a_handled_message_needs_handling_again_if_quarantined_again(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    bad = gw.ids["bad"]
    assert cli(capsys, "--config", str(gw.config), "messages", "handle", str(bad),
               "--note", "looked at it")[0] == 0
    assert cli(capsys, "--config", str(gw.config), "messages", "replay", str(bad))[0] == 1
    assert bad in _unhandled(capsys, gw)


# ---------------------------------------------------------------------------
# the command line itself: --config anywhere, ambiguous ids, truncation, timestamps, pipes
# ---------------------------------------------------------------------------


def test_config_is_accepted_after_the_subcommand(ran: Run, capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    config = str(ran.config)
    expected = cli(capsys, "--config", config, "messages", "list", "--json")[1]
    assert cli(capsys, "messages", "list", "--json", "--config", config)[1] == expected
    assert cli(capsys, "messages", "--config", config, "list", "--json")[1] == expected
    assert cli(capsys, "status", "--config", config)[0] == 1
    # after the subcommand wins over before it
    other = write_initial_config(tmp_path / "other")
    code, out, _ = cli(capsys, "--config", config, "check-config", "--config", str(other))
    assert (code, str(other) in out) == (0, True)
    code, out, _ = cli(capsys, "journal", "verify", "--config", config)
    assert (code, "journal intact" in out) == (0, True)


def test_show_refuses_an_ambiguous_message_id_and_lists_the_candidates(
        ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    ok2, again = ran.ids["ok-2"], ran.ids["again"]
    for command in (["messages", "show", "cli-ok-2"], ["messages", "show", "--raw", "cli-ok-2"]):
        code, out, err = cli(capsys, "--config", str(ran.config), *command)
        assert (code, out) == (4, "")
        assert "messageId cli-ok-2: it names 2 messages" in err
        candidates = [line.split() for line in err.splitlines()[1:]]
        assert [(c[0], c[1]) for c in candidates] == [(f"row:{ok2}", "routed"),
                                                      (f"row:{again}", "duplicate")]
    for key in (str(again), f"row:{again}"):
        code, out, _ = cli(capsys, "--config", str(ran.config), "messages", "show", key)
        assert (code, "duplicate" in out.splitlines()[0]) == (0, True)


def test_a_number_that_is_a_row_id_and_a_message_id_is_refused_until_row_is_said(
        gw: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """Registries that number their messages 1, 2, 3 ... give messageIds that are also row
    ids: ``handle 5`` must not act on row 5 when the operator meant messageId 5."""
    bad, ok1 = gw.ids["bad"], gw.ids["ok-1"]
    with sqlite3.connect(gw.dir / "gateway.db") as db:  # ok-1 as such a registry would number it
        db.execute("UPDATE messages SET message_id = ? WHERE id = ?", (str(bad), ok1))
    for command in ("show", "handle"):
        extra = ["--note", "n"] if command == "handle" else []
        code, out, err = cli(capsys, "--config", str(gw.config), "messages", command, str(bad),
                             *extra)
        assert (code, out) == (4, "")
        assert f"{bad} is a row id and a messageId: it names 2 messages" in err
        assert sorted(line.split()[0] for line in err.splitlines()[1:]) == sorted(
            [f"row:{bad}", f"row:{ok1}"])
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", f"row:{bad}")
    assert (code, "quarantined" in out.splitlines()[0]) == (0, True)
    code, out, _ = cli(capsys, "--config", str(gw.config), "messages", "show", f"row:{ok1}")
    assert (code, "routed" in out.splitlines()[0]) == (0, True)
    code, _, err = cli(capsys, "--config", str(gw.config), "messages", "show", "row:999999")
    assert (code, "no message row:999999" in err) == (3, True)


def test_list_says_when_it_shows_only_part(many: Run, capsys: pytest.CaptureFixture[str]) -> None:
    total = len(INPUTS) + MANY
    code, out, _ = cli(capsys, "--config", str(many.config), "messages", "list")
    lines = out.splitlines()
    assert code == 0
    assert len(lines) == 1 + 50 + 1
    assert lines[-1] == f"showing 50 of {total} (--limit N for more)"
    code, out, err = cli(capsys, "--config", str(many.config), "messages", "list", "--json",
                         "--limit", "7")
    assert len(json.loads(out)) == 7
    assert err.strip() == f"showing 7 of {total} (--limit N for more)"
    code, out, _ = cli(capsys, "--config", str(many.config), "messages", "list", "--limit",
                       str(total))
    assert "showing" not in out
    assert len(out.splitlines()) == 1 + total


@pytest.fixture
def zurich(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is Swiss time (UTC+1 in winter) for this test."""
    monkeypatch.setenv("TZ", "Europe/Zurich")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamps_are_the_same_in_list_show_and_json(
        ran: Run, capsys: pytest.CaptureFixture[str], zurich: None) -> None:
    mid = str(ran.ids["ok-1"])
    received_at = states(ran.db, "SELECT received_at FROM messages WHERE id = ?", (mid,))[0][0]
    expected = datetime.fromtimestamp(received_at, ZoneInfo("Europe/Zurich")).isoformat(
        timespec="milliseconds")
    assert expected.endswith("+01:00")
    _, table, _ = cli(capsys, "--config", str(ran.config), "messages", "list")
    [row] = [line.split() for line in table.splitlines() if line.split()[0] == mid]
    _, listed, _ = cli(capsys, "--config", str(ran.config), "messages", "list", "--json")
    [item] = [m for m in json.loads(listed) if str(m["id"]) == mid]
    _, shown, _ = cli(capsys, "--config", str(ran.config), "messages", "show", mid)
    _, shown_json, _ = cli(capsys, "--config", str(ran.config), "messages", "show", mid, "--json")
    detail = json.loads(shown_json)
    assert row[1] == item["received_at"] == detail["received_at"] == expected
    assert f"received {expected}" in shown
    # every other time of show --json is in the same format, and so is the history's
    first = detail["journal"][0]
    assert first["at"].endswith("+01:00")
    assert f"    {first['at']}  {first['event']}" in shown
    assert detail["deliveries"][0]["attempt_log"][0]["started_at"].endswith("+01:00")


async def test_the_history_says_when_a_retry_is_due_in_the_one_format(
        gw: Run, capsys: pytest.CaptureFixture[str], zurich: None) -> None:
    """A transient receipt's ``delivery.retry`` names the time of the next attempt: the text
    history says it as every other time, not as seconds since 1970."""
    [(ref,)] = states(gw.db, "SELECT attempt_ref FROM deliveries WHERE state = 'sent'")
    await _receipt(gw.db, Receipt(ref, ReceiptOutcome.FAILED_TRANSIENT, "401", "hub down",
                                  datetime.now(UTC)))
    [(due,)] = states(gw.db, "SELECT next_attempt_at FROM deliveries WHERE attempt_ref = ?",
                      (ref,))
    code, shown, _ = cli(capsys, "--config", str(gw.config), "messages", "show",
                         str(gw.ids["late"]))
    [retry] = [line for line in shown.splitlines() if " delivery.retry " in line]
    assert code == 0 and f'"next_attempt_at": "{iso(due)}"' in retry, retry
    assert iso(due).endswith("+01:00")


def test_a_closed_pipe_ends_quietly(many: Run, tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    pipeline = (f'"{SCRIPT}" messages list --limit {MANY * 2} --config "{many.config}"'
                f' 2>"{err}" | head -1; exit "${{PIPESTATUS[0]}}"')
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, timeout=60, check=False)
    assert done.stdout.decode().split() == ["ID", "RECEIVED", "STATE", "MESSAGE-ID", "DELIVERIES",
                                            "/", "REASON"]
    assert done.returncode == 141
    assert err.read_text() == ""


def test_messages_are_listed_by_partner(ran: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """``status`` says a partner is failing and points to its deliveries: the list had no way
    to keep one partner's, among every other partner's messages."""
    config = str(ran.config)
    every = json.loads(cli(capsys, "--config", config, "messages", "list", "--json")[1])
    partners = {d["partner"] for m in every for d in m["deliveries"]}
    assert partners, every
    for partner in partners:
        listed = json.loads(cli(capsys, "--config", config, "messages", "list", "--partner",
                                partner, "--json")[1])
        assert [m["id"] for m in listed] == [
            m["id"] for m in every if any(d["partner"] == partner for d in m["deliveries"])]
        state = listed[0]["deliveries"][0]["state"]
        both = json.loads(cli(capsys, "--config", config, "messages", "list", "--partner",
                              partner, "--delivery-state", state, "--json")[1])
        assert [m["id"] for m in both] == [
            m["id"] for m in every
            if any(d["partner"] == partner and d["state"] == state for d in m["deliveries"])]
    assert cli(capsys, "--config", config, "messages", "list", "--partner", "nobody") == (
        0, "no messages (--partner nobody)\n", "")
