"""The folder source: store every file, then move it to done_dir, even when a worker dies."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gateway.contracts import NormaliseContext, PluginContext
from gateway.errors import WorkerLost
from plugins.folder.source import FolderOptions, FolderSource
from tests.flow import drop
from tests.stubs import StubIntake

LIMITS = NormaliseContext(max_bytes=100, max_zip_entries=10, max_zip_bytes=1000, max_zip_ratio=10)


async def worker_dies(fn: Any, *args: Any) -> Any:
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
