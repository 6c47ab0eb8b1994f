"""``dead-letters`` says when ``--limit`` (10,000 messages by default) cut its list short,
as ``messages list`` does; ``--replay`` says what it left for the next run."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from gateway.config import write_initial_config
from tests.flow import states
from tests.test_cli import cli
from tests.test_status_failing import _attempt, _route


@pytest.fixture
def three_dead(tmp_path: Path) -> Path:
    """A gateway whose three messages to the canton are dead letters; its configuration."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    asyncio.run(_route(db, 3, "dead", time.time()))
    assert len(asyncio.run(_attempt(db, time.time() + 1, "permanent"))) == 3
    return config


def test_dead_letters_says_when_the_limit_cuts_the_list(
        three_dead: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(three_dead)
    code, out, err = cli(capsys, "--config", config, "dead-letters")
    assert (code, len(out.splitlines()), err) == (0, 4, "")
    assert "showing" not in out
    code, out, err = cli(capsys, "--config", config, "dead-letters", "--limit", "2")
    lines = out.splitlines()
    assert (code, len(lines), err) == (0, 4, "")
    assert lines[-1] == ("showing 2 of 3 dead letters (those of the newest 2 messages;"
                         " --limit N for more)")
    code, out, err = cli(capsys, "--config", config, "dead-letters", "--limit", "2", "--json")
    assert (code, len(json.loads(out))) == (0, 2)  # the JSON stays whole
    assert err == ("showing 2 of 3 dead letters (those of the newest 2 messages;"
                   " --limit N for more)\n")


def test_dead_letters_replay_says_what_it_left_for_the_next_run(
        three_dead: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(three_dead)
    code, out, _ = cli(capsys, "--config", config, "dead-letters", "--replay", "--limit", "2")
    assert code == 0
    assert out.splitlines()[-1] == ("replayed 2 of 3 dead letters (those of the newest 2"
                                    " messages); run dead-letters --replay again for the others")
    code, out, _ = cli(capsys, "--config", config, "dead-letters", "--replay", "--limit", "2")
    [line] = out.splitlines()  # the last one, and nothing left over to say
    assert code == 0 and line.startswith("delivery ") and " replayed as " in line
    assert states(three_dead.parent / "gateway.db",
                  "SELECT count(*) FROM deliveries WHERE state = 'dead'") == [(0,)]
