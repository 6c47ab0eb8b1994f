"""File primitives: what is kept of an input too large to take."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gateway.fileio import read_evidence, replace_durably


def test_evidence_of_a_large_file_is_its_first_bytes_with_size_and_hash(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several read chunks
    (tmp_path / "big").write_bytes(data)
    evidence = read_evidence(tmp_path / "big", 1_500_000)
    assert evidence.data == data[:1_500_000] and not evidence.whole
    assert (evidence.size, evidence.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert "first 1500000 bytes" in evidence.note() and evidence.sha256 in evidence.note()
    assert evidence.meta() == {"size": str(len(data)), "sha256": evidence.sha256,
                               "kept_bytes": "1500000"}


def test_evidence_of_a_file_under_the_cap_is_all_of_it(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"<r>not so large</r>")
    evidence = read_evidence(tmp_path / "small", 1000)
    assert evidence.data == b"<r>not so large</r>" and evidence.whole and evidence.note() == ""


def test_replace_durably_leaves_the_old_or_the_new_content(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "cursor.json"
    replace_durably(state, b"one")
    replace_durably(state, b"two")
    assert state.read_bytes() == b"two"

    def no_rename(src: object, dest: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        replace_durably(state, b"three")
    assert state.read_bytes() == b"two" and os.listdir(tmp_path) == ["cursor.json"]
