"""The folder source: store every finished file, then move it to done_dir, whatever happens."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from gateway.config import write_initial_config
from gateway.contracts import NormaliseContext
from gateway.errors import WorkerLost
from gateway.plugin_types import PluginContext
from gateway.plugins import get_plugin_manager
from plugins.folder.source import FolderOptions, FolderSource
from tests.flow import drop, message, running, states, until, write_config
from tests.stubs import StubIntake

LIMITS = NormaliseContext(max_bytes=100, max_zip_entries=10, max_zip_bytes=1000, max_zip_ratio=10)


async def worker_dies(fn: Any, *args: Any, timeout: float | None = None) -> Any:
    raise WorkerLost(f"a worker process died while running {fn.__name__}")


def source(root: Path, settle: float = 0, **context: Any) -> FolderSource:
    options = FolderOptions(path=root / "in", done_dir=root / "done", settle=settle,
                            grace=0.3)
    for folder in (options.path, root / "done"):
        folder.mkdir(parents=True, exist_ok=True)
    return FolderSource(options, PluginContext("registry", root, LIMITS, None, **context))


async def test_files_are_stored_then_moved_to_done(tmp_path: Path) -> None:
    s, intake = source(tmp_path), StubIntake()
    for n in range(3):
        drop(tmp_path / "in", f"m{n}.xml", f"<m n='{n}'/>".encode())
    drop(tmp_path / "in", "big.xml", b"<big>" + b"x" * 200 + b"</big>")
    await s.take(intake, s.scan()[0])
    assert [r.ref for r in intake.submitted] == ["m0.xml", "m1.xml", "m2.xml"]
    assert [raw.ref for raw, _reason in intake.quarantined] == ["big.xml"]
    assert "larger than the limit of 100 bytes" in intake.reasons[0]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        "big.xml", "m0.xml", "m1.xml", "m2.xml"]
    assert list((tmp_path / "in").iterdir()) == []


async def test_of_a_very_large_file_the_store_keeps_the_first_bytes(tmp_path: Path) -> None:
    s, intake = source(tmp_path), StubIntake()
    s.max_kept = 150
    big = b"<big>" + b"x" * 300 + b"</big>"
    drop(tmp_path / "in", "big.xml", big)
    await s.take(intake, s.scan()[0])
    [(raw, reason)] = intake.quarantined
    assert raw.data == big[:150]
    assert raw.meta["size"] == str(len(big)) and raw.meta["sha256"] == hashlib.sha256(big).hexdigest()
    assert "document of 311 bytes is larger than the limit of 100 bytes" in reason
    assert "keeps its first 150 bytes" in reason
    assert (tmp_path / "done" / "big.xml").read_bytes() == big, "the file itself is kept whole"


async def test_stored_files_are_moved_even_when_the_worker_dies(tmp_path: Path) -> None:
    s, intake = source(tmp_path, offload=worker_dies), StubIntake()
    drop(tmp_path / "in", "m.xml", b"<m/>")
    await s.take(intake, s.scan()[0])
    assert [r.ref for r in intake.submitted] == ["m.xml"]
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["m.xml"]
    assert s.scan()[0] == []  # not offered again


# ---------------------------------------------------------------------------
# files written in place (issue 7: a notice copied with cp was stored empty)
# ---------------------------------------------------------------------------

WRITER = Path(__file__).parent / "writer.py"


def notice(message_id: str, pad: int = 0) -> bytes:
    """A valid notice, made ``pad`` bytes larger with a comment before its root's end tag."""
    data = message(message_id, fixture="valid-pem-full-persondata.xml", documents=False)
    if not pad:
        return data
    end = data.rstrip().rindex(b"</")
    return data[:end] + b"<!-- " + b"p" * pad + b" -->" + data[end:]


def delivery_states(db: Path) -> list[str]:
    return [r[0] for r in states(db, "SELECT state FROM deliveries ORDER BY id")]


def stored_inputs(db: Path) -> dict[str, tuple[str, bytes]]:
    """ref -> (state, raw bytes) of every stored input."""
    rows = states(db, "SELECT ref, state, raw FROM messages JOIN payloads ON message = id")
    return {ref: (state, bytes(raw)) for ref, state, raw in rows}


async def test_cp_of_six_large_notices_stores_each_whole(tmp_path: Path) -> None:
    """The configuration ``init`` writes, as it is: its default settle time does it."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-fast.toml").write_text('[sources.registry]\npoll_interval = "50ms"\n')
    staged, outbox = tmp_path / "staged", tmp_path / "registry" / "outbox"
    staged.mkdir()
    notices = {f"n{i}.xml": notice(f"cp-{i}", pad=3_000_000) for i in range(6)}
    for name, data in notices.items():
        (staged / name).write_bytes(data)
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        await asyncio.to_thread(subprocess.run, ["cp", *(str(staged / n) for n in notices),
                                                 str(outbox)], check=True)
        await until(lambda: len(stored_inputs(db)) >= 6 and not list(outbox.glob("*.xml")))
    got = stored_inputs(db)
    assert {ref: raw for ref, (_state, raw) in got.items()} == notices
    assert {state for state, _raw in got.values()} == {"routed"}
    assert {p.name: p.read_bytes() for p in (tmp_path / "registry" / "done").iterdir()} == notices


async def test_notices_written_in_chunks_with_pauses_are_stored_whole(tmp_path: Path) -> None:
    """Pauses longer than ``settle``: the content check holds the half-written files back."""
    config = write_config(tmp_path)
    staged = tmp_path / "staged"
    staged.mkdir()
    notices = {f"w{i}.xml": notice(f"chunks-{i}", pad=20_000) for i in range(6)}
    notices["empty-first.xml"] = notice("chunks-6")
    for name, data in notices.items():
        (staged / name).write_bytes(data)
    db = tmp_path / "gateway.db"
    async with running(config):
        writer = await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), "0.15", "4",
            *(f"{tmp_path / 'in' / n}={staged / n}" for n in notices))
        assert await writer.wait() == 0
        await until(lambda: len(stored_inputs(db)) >= len(notices))
        await asyncio.sleep(0.3)  # nothing more comes
    got = stored_inputs(db)
    assert {ref: raw for ref, (_state, raw) in got.items()} == notices
    assert "quarantined" not in {state for state, _raw in got.values()}
    assert "duplicate" not in {state for state, _raw in got.values()}


async def test_a_notice_rewritten_by_its_writer_ends_up_stored_as_last_written(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first, last = notice("rewrite-1", pad=50_000), notice("rewrite-2", pad=60_000)
    (tmp_path / "first.xml").write_bytes(first)
    (tmp_path / "last.xml").write_bytes(last)
    target = tmp_path / "in" / "m.xml"
    db = tmp_path / "gateway.db"
    async with running(config):
        writer = await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), "0.1", "3",
            f"{target}={tmp_path / 'first.xml'}", f"{target}={tmp_path / 'last.xml'}")
        assert await writer.wait() == 0
        await until(lambda: any(raw == last for _s, raw in stored_inputs(db).values()))
        await until(lambda: not target.exists())
    raws = [raw for _state, raw in stored_inputs(db).values()]
    assert all(raw in (first, last) for raw in raws), "never a half-written version"
    assert last in [p.read_bytes() for p in (tmp_path / "done").iterdir()]


async def test_a_file_rewritten_while_it_is_stored_stays_and_is_taken_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = source(tmp_path)
    path = tmp_path / "in" / "m.xml"
    path.write_bytes(b"<m>first version</m>")

    def rewrite(_raws: Any) -> None:
        if path.read_bytes() == b"<m>first version</m>":
            path.write_bytes(b"<m>second, longer version</m>")

    intake = StubIntake(during_submit=rewrite)
    await s.take(intake, s.scan()[0])
    assert path.read_bytes() == b"<m>second, longer version</m>", "not moved away"
    assert not (tmp_path / "done" / "m.xml").exists()
    assert any("changed after it was stored" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)
    await s.take(intake, s.scan()[0])
    assert [r.data for r in intake.submitted] == [b"<m>first version</m>",
                                                  b"<m>second, longer version</m>"]
    assert (tmp_path / "done" / "m.xml").read_bytes() == b"<m>second, longer version</m>"


async def test_an_empty_file_is_quarantined_only_after_grace(tmp_path: Path) -> None:
    s, intake = source(tmp_path), StubIntake()
    (tmp_path / "in" / "e.xml").write_bytes(b"")
    await s.take(intake, s.scan()[0])
    assert intake.quarantined == [] and (tmp_path / "in" / "e.xml").exists()
    await asyncio.sleep(0.35)  # grace is 0.3 s
    await s.take(intake, s.scan()[0])
    ((raw, reason),) = intake.quarantined
    assert raw.data == b"" and raw.ref == "e.xml"
    assert reason.startswith(f"unfinished file {tmp_path / 'in' / 'e.xml'}: it is empty")
    assert (tmp_path / "done" / "e.xml").exists()


async def test_an_export_with_a_quote_inside_a_cell_is_taken_not_held_as_unfinished(
        tmp_path: Path) -> None:
    """A quote that does not start its cell is text to a CSV reader (a 5" floppy, a call
    name in quotes): the file is finished, and stored at once, never quarantined as cut."""
    options = FolderOptions(path=tmp_path / "in", done_dir=tmp_path / "done", settle=0,
                            grace=0.3, pattern=["*.csv"])
    s, intake = FolderSource(options, PluginContext("registry", tmp_path, LIMITS, None)), StubIntake()
    (tmp_path / "in").mkdir()
    export = 'NAME;NOTIZ\r\nM\xfcller;Diskette 5" (Hans "Hansi")\r\n'.encode("windows-1252")
    drop(tmp_path / "in", "export.csv", export)
    await s.take(intake, s.scan()[0])
    await asyncio.sleep(0.35)  # past grace: an unfinished file would be quarantined now
    await s.take(intake, s.scan()[0])
    assert intake.quarantined == []
    assert [r.data for r in intake.submitted] == [export]
    assert (tmp_path / "done" / "export.csv").read_bytes() == export


async def test_one_scan_gathers_a_bounded_number_of_bytes_before_storing(tmp_path: Path) -> None:
    s, intake = source(tmp_path), StubIntake()
    s.batch_bytes = 100
    for n in range(5):
        drop(tmp_path / "in", f"m{n}.xml", f"<m n='{n}'>{'x' * 40}</m>".encode())  # 56 bytes
    await s.take(intake, s.scan()[0])
    assert [len(call) for call in intake.submit_calls] == [2, 2, 1]
    assert len(list((tmp_path / "done").iterdir())) == 5


# ---------------------------------------------------------------------------
# odd names and entries (issue 7: one bad name blocked the folder)
# ---------------------------------------------------------------------------


async def test_a_name_that_is_not_utf8_is_stored_escaped_and_later_files_flow(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config):
        with open(os.path.join(os.fsencode(tmp_path / "in"), b"caf\xe9-\xff.xml"), "wb") as f:
            f.write(message("latin-name"))
        await until(lambda: "caf\\xe9-\\xff.xml" in stored_inputs(db))
        drop(tmp_path / "in", "after.xml", message("after-it"))
        await until(lambda: "after.xml" in stored_inputs(db))
        await until(lambda: delivery_states(db).count("delivered") == 2)
    assert os.listdir(os.fsencode(tmp_path / "done")) and b"caf\xe9-\xff.xml" in os.listdir(
        os.fsencode(tmp_path / "done"))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_file_that_cannot_be_read_is_left_and_the_others_flow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A registry that writes its files readable only by itself (mode 0600, another user):
    the file stays, said once, and does not stop the files after it."""
    s, intake = source(tmp_path), StubIntake()
    drop(tmp_path / "in", "locked.xml", b"<m>locked</m>")
    os.utime(tmp_path / "in" / "locked.xml", (1, 1))  # the oldest: first in the batch
    drop(tmp_path / "in", "after.xml", b"<m>after</m>")
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("locked.xml"):  # (the tests run as root, which chmod cannot stop)
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    await s.take(intake, s.scan()[0])
    assert [r.data for r in intake.submitted] == [b"<m>after</m>"]
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["after.xml"]
    assert (tmp_path / "in" / "locked.xml").exists()
    assert s.scan()[0] == [], "not offered again while it is unchanged (no busy loop)"
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"cannot read {tmp_path / 'in' / 'locked.xml'}" in warning and "Permission denied" in warning

    monkeypatch.setattr(os, "open", real_open)
    os.chmod(tmp_path / "in" / "locked.xml", 0o644)  # the operator fixes the mode
    await s.take(intake, s.scan()[0])
    assert [r.data for r in intake.submitted] == [b"<m>after</m>", b"<m>locked</m>"]
    assert (tmp_path / "done" / "locked.xml").exists()


async def test_symlinks_and_fifos_are_set_aside_once_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path)
    folder = tmp_path / "in"
    (tmp_path / "elsewhere.xml").write_bytes(message("behind-a-link"))
    (folder / "link.xml").symlink_to(tmp_path / "elsewhere.xml")
    os.mkfifo(folder / "pipe.xml")
    db = tmp_path / "gateway.db"
    async with running(config):
        await until(lambda: (folder / "set-aside" / "pipe.xml").exists()
                    and (folder / "set-aside" / "link.xml").is_symlink())
        drop(folder, "ok.xml", message("still-flowing"))
        await until(lambda: "ok.xml" in stored_inputs(db))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "set aside" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert any(f"{folder}/link.xml is a symbolic link" in w for w in warnings)
    assert any(f"{folder}/pipe.xml is a named pipe (FIFO)" in w for w in warnings)
    assert list(stored_inputs(db)) == ["ok.xml"], "nothing taken through the link"


async def test_the_default_pattern_takes_a_zip(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-fast.toml").write_text(
        '[sources.registry]\npoll_interval = "50ms"\nsettle = "50ms"\n'
        '[dispatcher]\nidle_poll = "50ms"\n')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("message.xml", message("zipped-1"))
        z.writestr("files/scan.pdf", b"%PDF-1.7 a scanned form")
    drop(tmp_path / "registry" / "outbox", "with-files.zip", buf.getvalue())
    db = tmp_path / "gateway.db"
    async with running(config, get_plugin_manager()):
        await until(lambda: states(db, "SELECT count(*) FROM deliveries") == [(1,)])
    [(ref, state, meta)] = states(db, "SELECT ref, state, meta FROM messages")
    assert (ref, state) == ("with-files.zip", "routed")
    assert "application/zip" in meta
    assert (tmp_path / "registry" / "done" / "with-files.zip").read_bytes() == buf.getvalue()
