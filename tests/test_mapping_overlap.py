"""Exports of overlapping windows ("changes since yesterday", written daily): a row listed
again in a later file is the same event, sent once; the same person with another event
is sent.

A gateway made with ``init`` and the shipped Nova mapping, real files dropped into its
folder, the real store and command line (``messages show``, ``messages replay``,
``map-test``).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import pytest

from gateway.api import Normalised, RawInput
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, running, states, until
from plugins.mapping.normaliser import ROW_META
from tests.test_export_replay import by_ref, cli, fix_date_format, sent
from tests.test_mapping import rows, split
from tests.test_mapping_exports import SAMPLE, excel, gateway_dir

HEADER, *ROWS = SAMPLE.splitlines()
BECKER, KRASNIQI, ROSSI, YILMAZ, SILVA = ROWS[:5]
#: Becker moves in again, a week later (after a move away not in these exports): his own
#: row of yesterday with other dates is another event.
BECKER_AGAIN = BECKER.replace(";01.11.2026;", ";08.12.2026;")
#: Monday's export, and Tuesday's: Krasniqi's and Rossi's rows again (the windows overlap).
MONDAY = [BECKER, KRASNIQI, ROSSI]
TUESDAY = [KRASNIQI, ROSSI, BECKER_AGAIN, YILMAZ, SILVA]


def export(rows: list[str], header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def iso(text: str) -> str:
    """``text`` with its dates written ISO, as the mapping does not read them (ISO_SAMPLE)."""
    return re.sub(r"\b(\d\d)\.(\d\d)\.(\d{4})\b", r"\3-\2-\1", text)


async def take(tmp_path: Path, config: Path, name: str, data: bytes, settled: int) -> None:
    """Drop ``data`` as ``name``; wait until ``settled`` messages are neither received nor
    waiting (the export, its rows, and those before)."""
    async with running(config, get_plugin_manager()):
        drop(tmp_path / "nova" / "export", name, data)
        await until(lambda: states(tmp_path / "gateway.db", "SELECT count(*) FROM messages"
                                   " WHERE state NOT IN ('received')") == [(settled,)],
                    timeout=30)


def test_a_row_listed_again_in_a_later_export_is_a_duplicate_and_sent_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_dir(tmp_path)
    asyncio.run(take(tmp_path, config, "montag.csv", excel(export(MONDAY)), 4))
    asyncio.run(take(tmp_path, config, "dienstag.csv", excel(export(TUESDAY)), 10))

    msgs = by_ref(tmp_path)
    monday = {n: msgs[f"montag.csv row {n}"] for n in (1, 2, 3)}
    assert [state for _mid, state, _dup in monday.values()] == ["routed"] * 3
    assert msgs["dienstag.csv row 1"][1:] == ("duplicate", monday[2][0])  # Krasniqi
    assert msgs["dienstag.csv row 2"][1:] == ("duplicate", monday[3][0])  # Rossi
    for n in (3, 4, 5):  # Becker again, a week later; Yilmaz, Silva
        assert msgs[f"dienstag.csv row {n}"][1:] == ("routed", None), n
    payloads = sent(tmp_path, config, 6)
    assert len(payloads) == 6
    for vn, copies in (("7568659842646", 1), ("7561021697806", 1), ("7565658670652", 2)):
        assert sum(vn.encode() in p for p in payloads) == copies, vn

    # the operator sees it: the row's state, and what it is a duplicate of
    repeat = msgs["dienstag.csv row 1"][0]
    code, out, _err = cli(capsys, config, "messages", "show", str(repeat))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"message {repeat}  duplicate", lines
    assert any(line.startswith("  reason:") and f"was already routed as message {monday[2][0]}"
               in line for line in lines), lines
    code, out, _err = cli(capsys, config, "messages", "show", str(msgs["dienstag.csv"][0]))
    assert "  rows:      5: duplicate 2, routed 3" in out.splitlines()

    # map-test gives each row the messageId the daemon gave it
    ids = dict(states(tmp_path / "gateway.db", "SELECT ref, message_id FROM messages"
                      " WHERE ref LIKE 'dienstag.csv row %'"))
    (tmp_path / "dienstag.csv").write_bytes(excel(export(TUESDAY)))
    code, out, _err = cli(capsys, config, "map-test", "--source", "nova", "--summary",
                          str(tmp_path / "dienstag.csv"))
    assert code == 0
    shown = [line for line in out.splitlines() if line.startswith("row ")]
    assert len(shown) == 5
    for line in shown:
        row = int(line.split(":")[0].removeprefix("row "))
        assert f"messageId {ids[f'dienstag.csv row {row}']}," in line


def test_replayed_exports_send_a_row_of_both_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both exports quarantined (their dates ISO, the mapping's not), the mapping fixed,
    each replayed: Tuesday's copies of Monday's rows become duplicates."""
    config = gateway_dir(tmp_path)
    asyncio.run(take(tmp_path, config, "montag.csv", excel(iso(export(MONDAY))), 4))
    asyncio.run(take(tmp_path, config, "dienstag.csv", excel(iso(export(TUESDAY))), 10))
    msgs = by_ref(tmp_path)
    assert sum(state == "quarantined" for _mid, state, _dup in msgs.values()) == 8
    fix_date_format(tmp_path)

    code, out, err = cli(capsys, config, "messages", "replay", str(msgs["montag.csv"][0]))
    assert code == 0, err
    code, out, err = cli(capsys, config, "messages", "replay", str(msgs["dienstag.csv"][0]))
    assert code == 0, err

    assert out.splitlines()[-1] == (f"message {msgs['dienstag.csv'][0]}: 5 of 5 quarantined"
                                    " rows processed again (duplicate 2, routed 3)")
    after = by_ref(tmp_path)
    assert after["dienstag.csv row 1"][1:] == ("duplicate", msgs["montag.csv row 2"][0])
    assert after["dienstag.csv row 2"][1:] == ("duplicate", msgs["montag.csv row 3"][0])
    assert len(sent(tmp_path, config, 6)) == 6


def test_the_message_id_is_what_the_row_maps_to_not_where_it_is() -> None:
    """The same row in another file, at another place, has the same id; the same person
    with another event date, or the row of another source, another."""
    monday = {m.facts["row"]: m.message_id for m in _rows(export(MONDAY))}
    tuesday = {m.facts["row"]: m.message_id for m in _rows(export(TUESDAY))}
    assert tuesday[1] == monday[2] and tuesday[2] == monday[3]
    assert tuesday[3] != monday[1]
    assert len(set(tuesday.values())) == 5
    # a cell the mapping reads the same (a VN without dots) gives the same message and id
    same = _rows(export([KRASNIQI.replace("756.8659.8426.46", "7568659842646")]))
    assert same[0].message_id == monday[2]
    other_source = split(excel(export(MONDAY)))
    other_source_parts = [RawInput("nova-2", part.ref, part.data, part.meta)
                          for part in other_source.parts]
    again = rows(other_source.replaced(parts=tuple(other_source_parts)))
    assert not {m.message_id for m in again} & set(monday.values())


def test_a_row_part_stored_before_keeps_the_id_of_its_file_and_row() -> None:
    """A part stored by an earlier version (no ``ids`` key) is replayed with the id its
    file's other rows were sent with: the file's SHA-256 and its row, or the row it
    repeats (``same_as``)."""
    result = split(excel(export([BECKER, KRASNIQI, BECKER])))
    [(repeat, _reason)] = result.rejected_parts
    old_space = uuid.UUID("6d1b8f4e-2f0a-4a53-9a49-0c7b1f3e8a21")
    for part, id_row in ((result.parts[1], 2), (repeat, 1)):
        body = json.loads(part.data)
        del body["ids"]
        if part is repeat:
            body["same_as"] = 1
        old = RawInput(part.source, part.ref, json.dumps(body).encode(), part.meta)
        [message] = rows(result.replaced(parts=(old,)))
        assert message.message_id == str(uuid.uuid5(old_space,
                                                    f"{body['file_sha256']}:{id_row}"))
        assert message.facts["row"] == int(part.meta[ROW_META])


def _rows(text: str) -> list[Normalised]:
    return rows(split(excel(text)))
