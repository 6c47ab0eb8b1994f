"""An export's rows from the command line: ``messages replay`` of the export, ``messages show``
of the export and of its rows.

A gateway made with ``init`` and the shipped Nova mapping, a CSV file dropped as
the registry software writes it (its dates ISO, which the mapping's date_format
does not read: every row quarantined), the real store, the real command line.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, running, states, until
from tests.test_mapping_exports import ISO_SAMPLE, SIGN_OF_LATIN9, SIMUNOVIC, excel, gateway_dir

#: Row 2 of the sample (Arta Krasniqi) again as row 9: the same event twice in one file.
REPEATED = ISO_SAMPLE.splitlines()[2]
EXPORT = ISO_SAMPLE + REPEATED + "\r\n"
REPEATED_VN = "756.8659.8426.46"


def dropped(tmp_path: Path, data: str, quarantined: int, encoding: str = "windows-1252"
            ) -> Path:
    """A gateway that took ``data`` (written in ``encoding``) as an export and quarantined
    ``quarantined`` of its rows (then stopped); its configuration."""
    config = gateway_dir(tmp_path)

    async def take() -> None:
        async with running(config, get_plugin_manager()):
            drop(tmp_path / "nova" / "export", "einwohner.csv", excel(data, encoding))
            await until(lambda: states(tmp_path / "gateway.db", "SELECT count(*) FROM messages"
                                       " WHERE state = 'quarantined'") == [(quarantined,)],
                        timeout=30)

    asyncio.run(take())
    return config


def fix_date_format(tmp_path: Path) -> None:
    mapping = tmp_path / "mappings" / "nova.toml"
    text = mapping.read_text(encoding="utf-8")
    assert 'date_format = "%d.%m.%Y"' in text
    mapping.write_text(text.replace('date_format = "%d.%m.%Y"', 'date_format = "%Y-%m-%d"', 1),
                       encoding="utf-8")


def sent(tmp_path: Path, config: Path, count: int) -> list[bytes]:
    """Run the gateway until ``count`` deliveries are sent; the payloads in the sedex outbox."""
    async def send() -> None:
        async with running(config, get_plugin_manager()):
            await until(lambda: states(tmp_path / "gateway.db", "SELECT count(*) FROM deliveries"
                                       " WHERE state = 'sent'") == [(count,)], timeout=30)

    asyncio.run(send())
    return [p.read_bytes() for p in sorted((tmp_path / "sedex" / "outbox").glob("data_*"))]


def by_ref(tmp_path: Path) -> dict[str, tuple[int, str, int | None]]:
    """Each message's (id, state, duplicate_of) by its ref (``einwohner.csv row 2``)."""
    return {ref: (mid, state, dup) for mid, ref, state, dup in states(
        tmp_path / "gateway.db", "SELECT id, ref, state, duplicate_of FROM messages")}


def cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_replaying_the_export_processes_its_rows_and_sends_a_repeated_row_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dropped(tmp_path, EXPORT, quarantined=9)
    msgs = by_ref(tmp_path)
    export = msgs["einwohner.csv"][0]
    fix_date_format(tmp_path)

    code, out, err = cli(capsys, config, "messages", "replay", str(export))

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 10
    row = {n: msgs[f"einwohner.csv row {n}"][0] for n in range(1, 10)}
    assert lines[1] == f"message {row[2]} (einwohner.csv row 2): processed again, now routed"
    assert lines[6] == (f"message {row[7]} (einwohner.csv row 7): processed again, now"
                        " quarantined: row 7 (line 8): field permit (BEWILLIGUNG): value 'S' has"
                        " no entry in the permit table")
    assert lines[8].startswith(f"message {row[9]} (einwohner.csv row 9): processed again, now"
                               " duplicate: messageId ")
    assert lines[8].endswith(f" was already routed as message {row[2]}")
    assert lines[9] == (f"message {export}: 9 of 9 quarantined rows processed again"
                        " (duplicate 1, quarantined 1, routed 7)")
    after = by_ref(tmp_path)
    assert after["einwohner.csv row 9"][1:] == ("duplicate", row[2])
    payloads = sent(tmp_path, config, 7)
    assert len(payloads) == 7
    assert sum(REPEATED_VN.replace(".", "").encode() in p for p in payloads) == 1

    # what is left is the row the mapping still cannot map: replayed alone again
    code, out, _err = cli(capsys, config, "messages", "replay", str(export))
    assert code == 0
    assert out.splitlines()[-1] == (f"message {export}: 1 of 1 quarantined rows processed again"
                                    " (quarantined 1)")
    assert by_ref(tmp_path) == after  # routed rows are not touched


def test_a_repeated_row_replayed_first_is_sent_and_the_row_it_repeats_not_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dropped(tmp_path, EXPORT, quarantined=9)
    fix_date_format(tmp_path)
    msgs = by_ref(tmp_path)
    repeat, first = msgs["einwohner.csv row 9"][0], msgs["einwohner.csv row 2"][0]

    code, out, _err = cli(capsys, config, "messages", "replay", str(repeat))
    assert (code, out) == (0, f"message {repeat}: processed again, now routed\n")
    code, out, _err = cli(capsys, config, "messages", "replay", str(msgs["einwohner.csv"][0]))

    assert code == 0
    assert (f"message {first} (einwohner.csv row 2): processed again, now duplicate: messageId "
            in out)
    assert by_ref(tmp_path)["einwohner.csv row 2"][1:] == ("duplicate", repeat)
    payloads = sent(tmp_path, config, 7)
    assert sum(REPEATED_VN.replace(".", "").encode() in p for p in payloads) == 1


def test_rows_an_operator_handled_are_left_and_nothing_left_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dropped(tmp_path, ISO_SAMPLE, quarantined=8)
    fix_date_format(tmp_path)
    msgs = by_ref(tmp_path)
    export, handled = msgs["einwohner.csv"][0], msgs["einwohner.csv row 3"][0]
    assert cli(capsys, config, "messages", "handle", str(handled), "--note", "sent by post")[0] == 0

    code, out, _err = cli(capsys, config, "messages", "replay", str(export))

    assert code == 0
    assert f"message {handled} " not in out
    assert out.splitlines()[-1] == (f"message {export}: 7 of 7 quarantined rows processed again"
                                    " (quarantined 1, routed 6)")
    assert by_ref(tmp_path)["einwohner.csv row 3"][1] == "quarantined"
    permit = msgs["einwohner.csv row 7"][0]
    assert cli(capsys, config, "messages", "handle", str(permit), "--note", "permit S: by hand")[0] == 0
    code, out, err = cli(capsys, config, "messages", "replay", str(export))
    assert (code, out) == (1, "")
    assert err == (f"ech-gateway: message {export}: it is split and none of its 8 rows is"
                   " quarantined and unhandled: nothing to replay\n")


def test_show_names_a_rows_export_and_sums_up_an_exports_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dropped(tmp_path, EXPORT, quarantined=9)
    msgs = by_ref(tmp_path)
    export, row2 = msgs["einwohner.csv"][0], msgs["einwohner.csv row 2"][0]
    ids = sorted(mid for ref, (mid, _state, _dup) in msgs.items() if ref != "einwohner.csv")

    code, out, _err = cli(capsys, config, "messages", "show", str(row2))
    assert code == 0
    assert f"  export:    row 2 of message {export} (nova / einwohner.csv)" in out.splitlines()
    assert (f"  replay:    ech-gateway messages replay {row2} (this row), or {export} (every"
            " quarantined row of its export)") in out.splitlines()
    code, out, _err = cli(capsys, config, "messages", "show", str(export))
    shown = out.splitlines()
    assert "  rows:      9: quarantined 9" in shown
    assert f"  unhandled: 9 quarantined, not handled: {', '.join(map(str, ids))}" in shown
    assert (f"  replay:    ech-gateway messages replay {export} processes them again (once the"
            " mapping is fixed)") in shown

    code, out, _err = cli(capsys, config, "messages", "show", str(row2), "--json")
    shown_row = json.loads(out)
    assert shown_row["export"] == {"id": export, "source": "nova", "ref": "einwohner.csv",
                                   "state": "split"}
    assert shown_row["rows"] is None
    code, out, _err = cli(capsys, config, "messages", "show", str(export), "--json")
    shown_export = json.loads(out)
    assert shown_export["export"] is None
    assert shown_export["rows"] == {"total": 9, "states": {"quarantined": 9}, "unhandled": 9,
                                    "unhandled_ids": ids, "as_split": 9}


def test_an_exports_summary_lists_the_first_20_quarantined_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header, first, *_ = ISO_SAMPLE.splitlines()
    # 30 rows of one person, each its own event (its own PERS_NR): none repeats another
    lines = [first.replace("104211;", f"{900000 + n};", 1) for n in range(30)]
    config = dropped(tmp_path, "\r\n".join([header, *lines]) + "\r\n", quarantined=30)
    msgs = by_ref(tmp_path)
    export = msgs["einwohner.csv"][0]
    ids = [msgs[f"einwohner.csv row {n}"][0] for n in range(1, 31)]

    code, out, _err = cli(capsys, config, "messages", "show", str(export))
    assert code == 0
    assert (f"  unhandled: 30 quarantined, not handled: {', '.join(map(str, sorted(ids)[:20]))}"
            " and 10 more") in out.splitlines()
    code, out, _err = cli(capsys, config, "messages", "show", str(export), "--json")
    assert json.loads(out)["rows"] == {"total": 30, "states": {"quarantined": 30},
                                       "unhandled": 30, "unhandled_ids": sorted(ids)[:20],
                                       "as_split": 30}


def _warnings(capsys: pytest.CaptureFixture[str], config: Path, export: int) -> list[str]:
    code, out, _err = cli(capsys, config, "messages", "show", str(export))
    assert code == 0
    return [line for line in out.splitlines() if line.startswith("  warning:")]


def test_what_all_rows_have_wrong_is_said_while_they_all_still_have_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The export's warning that all its rows are rejected, and why, holds while they are
    rejected as the split made them: replayed with the mapping unchanged they are; once the
    date format is fixed and they are replayed, 7 are routed and the 8th is rejected for its
    own fault only: the warning is gone, the rows line counts what is left."""
    config = dropped(tmp_path, ISO_SAMPLE, quarantined=8)
    export = by_ref(tmp_path)["einwohner.csv"][0]
    [warning] = _warnings(capsys, config, export)
    assert warning.startswith("  warning:   all 8 rows are rejected; what they have in common:"
                              " fields event_date (EREIGNIS_DATUM)")

    assert cli(capsys, config, "messages", "replay", str(export))[0] == 0  # nothing fixed
    assert _warnings(capsys, config, export) == [warning]

    fix_date_format(tmp_path)
    assert cli(capsys, config, "messages", "replay", str(export))[0] == 0
    assert _warnings(capsys, config, export) == []
    _code, out, _err = cli(capsys, config, "messages", "show", str(export))
    assert "  rows:      8: quarantined 1, routed 7" in out.splitlines()
    assert "what they have in common" in out, "the split's warning stays in the history"
    _code, out, _err = cli(capsys, config, "messages", "show", str(export), "--json")
    assert json.loads(out)["rows"]["as_split"] == 0


def test_no_row_rejected_any_longer_and_no_warning_that_all_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ISO_SAMPLE.splitlines()
    del lines[7]  # row 7: its permit S has no entry in the permit table
    config = dropped(tmp_path, "\r\n".join(lines) + "\r\n", quarantined=7)
    export = by_ref(tmp_path)["einwohner.csv"][0]
    [warning] = _warnings(capsys, config, export)
    assert warning.startswith("  warning:   all 7 rows are rejected; what they have in common:")
    fix_date_format(tmp_path)
    code, out, _err = cli(capsys, config, "messages", "replay", str(export))
    assert code == 0
    assert out.splitlines()[-1] == (f"message {export}: 7 of 7 quarantined rows processed again"
                                    " (routed 7)")
    assert _warnings(capsys, config, export) == []


def test_a_row_rejected_for_its_encoding_is_sent_with_the_right_name_once_it_is_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ISO-8859-15 export under the Windows-1252 mapping: Šimunovic's row is quarantined
    (not sent as "¦imunovic"); with encoding = "iso-8859-15" set as its reason says, the
    replay reads the row's bytes again: the canton gets Šimunovic."""
    config = dropped(tmp_path, SIMUNOVIC, quarantined=1, encoding="iso-8859-15")
    msgs = by_ref(tmp_path)
    assert states(tmp_path / "gateway.db", "SELECT reason FROM messages WHERE state ="
                  " 'quarantined'") == [(SIGN_OF_LATIN9,)]
    mapping = tmp_path / "mappings" / "nova.toml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        'encoding = "windows-1252"', 'encoding = "iso-8859-15"', 1), encoding="utf-8")

    code, out, err = cli(capsys, config, "messages", "replay", str(msgs["einwohner.csv"][0]))

    assert code == 0, err
    assert out.splitlines()[0] == (f"message {msgs['einwohner.csv row 1'][0]} (einwohner.csv"
                                   " row 1): processed again, now routed")
    payloads = sent(tmp_path, config, 2)
    assert sum("Šimunovic".encode() in p for p in payloads) == 1
    assert not any("¦".encode() in p for p in payloads)
