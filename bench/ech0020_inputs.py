"""Distinct eCH-0020 v3 deliveries made from the fixture corpus, for the benchmarks.

The corpus (``tests/fixtures/ech0020``, ``MANIFEST.toml``) is one commune's
register (``baseDelivery.xml``, 46 persons) and one event file of each kind
(moveIn, move, changeResidencePermit, marriage, death, ...). Copy ``k`` of
it is the same register with other persons: every VN becomes
``756 kkkk iiiii c`` (``k`` the copy, ``i`` the VN's place in the corpus,
``c`` the EAN-13 check digit), every local person id gets the copy number
in front, official and first names are rotated through the corpus's names
by ``k``, and every delivery gets a messageId of its own. The events of a
copy rely on the persons of the same copy, so base deliveries holding those
persons must be processed before them (:func:`bases`).
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ech0020"
BASE = "baseDelivery.xml"
#: Persons of how many copies one base delivery holds (about 2 MB of XML each).
COPIES_PER_BASE = 10

_VN = re.compile(rb">(756\d{10})<")
_LOCAL = re.compile(rb"(<(?:[\w-]+:)?personIdCategory>MU\.\d+</(?:[\w-]+:)?personIdCategory>\s*"
                    rb"<(?:[\w-]+:)?personId>)([^<]+)(<)")
_NAME = re.compile(rb"(<(?:[\w-]+:)?(officialName|firstName)>)([^<]+)(<)")
_MESSAGE_ID = re.compile(rb"(<(?:[\w-]+:)?messageId>)([^<]+)(<)")
_PERSONS = re.compile(rb"(?s)^(.*?<eCH-0020:baseDelivery>)(.*)(</eCH-0020:baseDelivery>.*)$")


def manifest() -> list[dict[str, str]]:
    """The ``[[file]]`` entries of the corpus manifest, in processing order (base first)."""
    return tomllib.loads((CORPUS / "MANIFEST.toml").read_text(encoding="utf-8"))["file"]


def ean13(digits: str) -> str:
    """``digits`` (12 of them) with the EAN-13 check digit a VN ends with appended."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str(-total % 10)


@dataclass(frozen=True, slots=True)
class Corpus:
    """The corpus files and what copies of them are made from."""

    base: bytes
    events: list[tuple[str, bytes]]
    #: how many of ``events`` the default rules of ``ech-gateway init`` forward
    forwarded: int
    vns: dict[bytes, int]
    names: dict[bytes, list[bytes]]

    @property
    def persons(self) -> int:
        """How many persons each copy's base deliveries hold."""
        return self.base.count(b"<eCH-0020:baseDeliveryPerson>")

    @classmethod
    def load(cls) -> Corpus:
        """Read the corpus: the base delivery and every event file, as the manifest lists them."""
        entries = [e for e in manifest() if e["file"] != BASE]
        events = [(e["file"], (CORPUS / e["file"]).read_bytes()) for e in entries]
        base = (CORPUS / BASE).read_bytes()
        texts = [base, *(data for _name, data in events)]
        vns = {vn: i for i, vn in enumerate(dict.fromkeys(
            m.group(1) for text in texts for m in _VN.finditer(text)))}
        names: dict[bytes, set[bytes]] = {b"officialName": set(), b"firstName": set()}
        for text in texts:
            for m in _NAME.finditer(text):
                names[m.group(2)].add(m.group(3))
        return cls(base, events, sum(e["default_rule"] == "forward" for e in entries), vns,
                   {kind: sorted(values) for kind, values in names.items()})

    def copy(self, data: bytes, k: int) -> bytes:
        """``data`` as it reads in copy ``k``, with a messageId of its own."""
        data = _VN.sub(lambda m: b">" + ean13(f"756{k:04d}{self.vns[m.group(1)]:05d}").encode()
                       + b"<", data)
        data = _LOCAL.sub(lambda m: m.group(1) + f"{k:05d}".encode() + m.group(2) + m.group(3),
                          data)
        data = _NAME.sub(lambda m: m.group(1) + self._rotated(m.group(2), m.group(3), k)
                         + m.group(4), data)
        return _MESSAGE_ID.sub(lambda m: m.group(1) + str(uuid.uuid4()).encode() + m.group(3),
                               data, count=1)

    def _rotated(self, kind: bytes, name: bytes, k: int) -> bytes:
        pool = self.names[kind]
        return pool[(pool.index(name) + k) % len(pool)]

    def copies(self, n: int) -> int:
        """How many copies ``n`` event deliveries come from."""
        return -(-n // len(self.events))

    def expected(self, n: int) -> int:
        """How many of the first ``n`` event deliveries the default rules forward."""
        whole, rest = divmod(n, len(self.events))
        forwarded = {name for name, _data in self.events[:rest]} & {
            e["file"] for e in manifest() if e["default_rule"] == "forward"}
        return whole * self.forwarded + len(forwarded)

    def bases(self, n: int) -> Iterator[bytes]:
        """Base deliveries with the persons of every copy the first ``n`` events need."""
        match = _PERSONS.match(self.base)
        assert match is not None, "baseDelivery.xml has no baseDelivery element"
        head, persons, tail = match.groups()
        for first in range(0, self.copies(n), COPIES_PER_BASE):
            ks = range(first, min(first + COPIES_PER_BASE, self.copies(n)))
            body = b"".join(self.copy(persons, k) for k in ks)
            yield self.copy(head, ks[0]) + body + tail

    def events_of(self, n: int) -> Iterator[bytes]:
        """The first ``n`` event deliveries: copy after copy, each in manifest order."""
        for i in range(n):
            k, index = divmod(i, len(self.events))
            yield self.copy(self.events[index][1], k)
