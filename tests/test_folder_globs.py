"""Whether two folder patterns can take the same file: held against fnmatch itself."""

from __future__ import annotations

import itertools
import random
from fnmatch import fnmatchcase

import pytest

from plugins.folder.globs import share_a_name


@pytest.mark.parametrize(("a", "b", "shared"), [
    ("*.xml", "export-*.xml", True),
    ("a*.xml", "*b.xml", True),          # ab.xml: neither pattern matches the other
    ("*.xml", "*.csv", False),
    ("*.XML", "*.xml", True),            # names match in any case
    ("data_*.xml", "envl_*.xml", False),
    ("[0-9]*.xml", "x*.xml", False),
    ("[!x]*.xml", "x*.xml", False),
    ("[!x]*.xml", "y*.xml", True),
    ("?.csv", "ab.csv", False),
    ("*", "anything", True),
])
def test_patterns_share_a_name_exactly_when_one_name_matches_both(
        a: str, b: str, shared: bool) -> None:
    assert share_a_name(a, b) is shared
    assert share_a_name(b, a) is shared


def test_it_agrees_with_fnmatch_on_every_name_of_a_small_alphabet() -> None:
    """Random patterns over a, b, *, ?, [ab], [!a]: they share a name exactly when one of
    the names of a, b, c up to six signs long matches both (a witness is never longer than
    the two patterns together)."""
    names = ["".join(p) for n in range(7) for p in itertools.product("abc", repeat=n)]
    parts = ["a", "b", "*", "?", "[ab]", "[!a]"]
    rng = random.Random(7)
    for _ in range(400):
        a = "".join(rng.choice(parts) for _ in range(rng.randint(0, 3)))
        b = "".join(rng.choice(parts) for _ in range(rng.randint(0, 3)))
        expected = any(fnmatchcase(n, a) and fnmatchcase(n, b) for n in names)
        assert share_a_name(a, b) is expected, (a, b)
