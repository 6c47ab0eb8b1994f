"""The command line on a database this user cannot open: one line saying why, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.config import write_initial_config
from gateway.store import SQLiteStore
from tests.mounts import read_only, run_isolated


def test_a_database_whose_folder_this_user_cannot_write_is_said_in_one_line(
        tmp_path: Path) -> None:
    """With the daemon stopped, a reader must make the database's -shm beside it: a member of
    the service's group, or an operator on a read-only mount, got SQLite's traceback
    "unable to open database file" from status, and from every other command."""
    run_isolated("tests.test_store_access:commands_on_a_read_only_folder", str(tmp_path))


def commands_on_a_read_only_folder(root_text: str) -> None:
    """(In a private mount namespace.) Each command says why it cannot open the database."""
    root = Path(root_text)
    config = write_initial_config(root / "gw")
    store = SQLiteStore(root / "gw" / "gateway.db")
    store.start()
    store.close()
    read_only(root / "gw")
    for command in (["status"], ["messages", "list"], ["messages", "replay", "1"],
                    ["journal", "verify"]):
        done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(config), *command],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stderr.splitlines()) == (1, [
            f"ech-gateway: cannot open the database {root / 'gw' / 'gateway.db'}: unable to"
            f" open database file; a command reading or writing it needs to write in"
            f" {root / 'gw'} (beside the database, its -shm and -wal files): run it as the"
            " gateway's user (sudo -u ech-gateway ...)"]), (command, done.stderr)
