"""A registry's ``baseDelivery`` of a whole town: taken under the default limit, and read a
person at a time (``plugins/ech0020/_base.py``) with the outcome and the reason a document
parsed whole gets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from gateway import worker_stages
from gateway.api import NormaliseContext, Normalised, RawInput, StreamedDocument
from gateway.config import load_settings, write_initial_config
from gateway.errors import InputRejected
from gateway.store import SQLiteStore
from gateway.testing import drop, running, states, until
from gateway.xml.safe import parse_untrusted
from plugins.ech0020 import gateway_normalise, normalise

BASE = (Path(__file__).parent / "fixtures" / "ech0020" / "baseDelivery.xml").read_bytes()
_PARTS = re.compile(rb"(?s)^(.*?<eCH-0020:baseDelivery>)(.*)(</eCH-0020:baseDelivery>.*)$")
_VN = re.compile(rb">756(\d{9})\d<")
_LOCAL_ID = re.compile(rb"(<eCH-0044:personIdCategory>MU\.\d+</eCH-0044:personIdCategory>\s*"
                       rb"<eCH-0044:personId>)([^<]+)(<)")
CONTEXT = NormaliseContext(max_bytes=1 << 28, max_zip_entries=100, max_zip_bytes=1 << 24,
                           max_zip_ratio=100)


def _vn(digits: str) -> bytes:
    """``756`` and ``digits`` (9) with the EAN-13 check digit."""
    body = "756" + digits
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return (body + str(-total % 10)).encode()


def town(copies: int) -> bytes:
    """The corpus's base delivery with its 46 persons ``copies`` times over, each copy other
    persons (every VN and local person id its own)."""
    match = _PARTS.match(BASE)
    assert match is not None
    head, persons, tail = match.groups()
    people = []
    for k in range(copies):
        copy = _VN.sub(lambda m, k=k: b">" + _vn(f"{k:04d}{m.group(1)[-5:].decode()}") + b"<",
                       persons)
        people.append(_LOCAL_ID.sub(lambda m, k=k: m.group(1) + b"%05d" % k + m.group(2)
                                    + m.group(3), copy))
    return head + b"".join(people) + tail


def test_a_towns_base_delivery_over_the_old_limit_seeds_the_state_with_the_defaults(
        tmp_path: Path) -> None:
    """5,014 persons, 22.9 MB: more than the 20 MiB ``ech-gateway init`` used to write
    (quarantined then, naming ``[limits] max_document_bytes``); now every person is stored
    and the delivery is taken as sending nothing."""
    data = town(109)
    assert data.count(b"<eCH-0020:baseDeliveryPerson>") == 5014
    assert len(data) > 20 * 1024 * 1024
    config = write_initial_config(tmp_path)

    async def run() -> None:
        async with running(config):
            drop(tmp_path / "registry" / "outbox", "base.xml", data)
            await until(lambda: states(tmp_path / "gateway.db", "SELECT state FROM messages"
                                       " WHERE state NOT IN ('received', 'normalised')"),
                        timeout=120)

    asyncio.run(run())
    db = tmp_path / "gateway.db"
    assert states(db, "SELECT state, reason FROM messages") == [
        ("not_relevant", "baseDelivery seeds the person state and sends nothing")]
    assert states(db, "SELECT count(*) FROM persons") == [(5014,)]


def _whole(data: bytes) -> Normalised | str:
    """What the normaliser makes of ``data`` parsed whole, as before (or the reason)."""
    try:
        root = parse_untrusted(data, max_bytes=CONTEXT.max_bytes, keep_blank_text=False).getroot()
        return normalise(root, data)
    except InputRejected as exc:
        return str(exc)


def _streamed(data: bytes) -> Normalised | str | None:
    try:
        return gateway_normalise(RawInput("registry", "base.xml", data), CONTEXT)
    except InputRejected as exc:
        return str(exc)


_FIRST_VN = b"<eCH-0044:vn>7565108772783</eCH-0044:vn>"
_VALID_FROM = b"<eCH-0020:baseDeliveryValidFrom>2026-10-01</eCH-0020:baseDeliveryValidFrom>"
_CLOSE = b"</eCH-0020:baseDelivery>"


@pytest.mark.parametrize("data", [
    pytest.param(town(3), id="three copies"),
    pytest.param(BASE.replace(_VALID_FROM, b"", 5).replace(b"eventDate>2026-10-01<",
                                                           b"eventDate>2026-09-30<"),
                 id="persons dated by the header"),
    pytest.param(BASE.replace(_VALID_FROM, b"<eCH-0020:baseDeliveryValidFrom>2026-13-01"
                              b"</eCH-0020:baseDeliveryValidFrom>", 1), id="a malformed date"),
    pytest.param(BASE.replace(_FIRST_VN, b"<eCH-0044:vn>7565108772784</eCH-0044:vn>"),
                 id="a wrong check digit"),
    pytest.param(BASE.replace(b'version="3.0"', b'version="2.0"', 1), id="another version"),
    pytest.param(BASE.replace(_CLOSE, _CLOSE + b"<eCH-0020:moveIn/>", 1), id="two events"),
    pytest.param(BASE.replace(_FIRST_VN, b"<eCH-0044:vn>x</eCH-0044:vn>").replace(
        _CLOSE, _CLOSE + b"<eCH-0020:moveIn/>", 1), id="two events and a bad person"),
    pytest.param(_PARTS.sub(rb"\1<!-- none -->\3", BASE), id="no messages"),
    pytest.param(BASE.replace(b"<eCH-0058:senderId>1-230-1</eCH-0058:senderId>", b"")
                 .replace(_VALID_FROM, b""), id="a header without senderId"),
    pytest.param(BASE.replace(b"</eCH-0020:delivery>", b"</eCH-0020:deliver>"),
                 id="malformed at the end"),
    pytest.param(BASE.replace(b"Prishtin\xc3\xab", b"&ouml;", 1), id="an undefined entity"),
    pytest.param(BASE.replace(b"<eCH-0020:delivery ", b"<!DOCTYPE x []><eCH-0020:delivery ", 1),
                 id="a DOCTYPE"),
])
def test_a_base_delivery_read_a_person_at_a_time_is_what_the_whole_tree_gave(data: bytes) -> None:
    assert b"baseDelivery" in data[:1 << 16]
    whole, streamed = _whole(data), _streamed(data)
    if isinstance(whole, str):
        assert streamed == whole
        return
    assert isinstance(streamed, Normalised)
    assert (streamed.kind, streamed.not_relevant, streamed.facts) == (
        whole.kind, whole.not_relevant, whole.facts)
    assert [p.model_dump() for p in streamed.persons] == [p.model_dump() for p in whole.persons]


def test_the_streamed_document_lets_go_of_each_element_handed_out() -> None:
    """The persons read, the tree keeps none of them: what is left is the header and the
    emptied event."""
    document = StreamedDocument(town(2), max_bytes=1 << 28, depth=2, name="messages")
    handed = [len(message) for message in document]
    assert len(handed) == 92 and all(handed)
    root = document.root
    assert [child.tag.rpartition("}")[2] for child in root] == ["deliveryHeader", "baseDelivery"]
    assert len(root[1]) == 0
    assert len(root[0]) > 5, "elements not so named stay"


def _peak_mib(reset: bool = False) -> float:
    """This process's peak RSS (VmHWM) in MiB; ``reset``: start it over from the RSS now."""
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_recording_a_base_delivery_does_not_read_its_input_again(tmp_path: Path) -> None:
    """The outcome of a base delivery (it sends nothing, it has no eCH-0223 form) is recorded
    without touching the stored input: an empty canonical form written beside it made
    SQLite read the whole row and build it anew, two copies of the input in memory (for
    60,000 persons, 274 MB: the daemon went from 634 to 1,448 MiB). Here 40 MB of
    comments and the corpus's 46 persons."""
    worker_stages.init_worker(load_settings(write_initial_config(tmp_path / "gateway")))
    padding = b"".join(b"<!-- " + b"x" * 1_000_000 + b" -->" for _ in range(40))
    data = BASE.replace(b"<eCH-0020:baseDelivery>", padding + b"<eCH-0020:baseDelivery>", 1)
    raw = RawInput("registry", "base.xml", data)
    store = SQLiteStore(tmp_path / "gateway.db")
    store.start()
    try:
        [(mid, _new)] = await store.add_raw([raw])
        [step] = worker_stages.normalise_work([(mid, raw)])
        assert isinstance(step, Normalised)
        results = worker_stages.finish_work([(mid, raw, step)], {})
        before = _peak_mib(reset=True)
        await store.record_processing(results)
        grown = _peak_mib() - before
    finally:
        store.close()
    assert states(tmp_path / "gateway.db", "SELECT state, length(raw) FROM messages"
                  " JOIN payloads ON message = id") == [("not_relevant", len(data))]
    assert states(tmp_path / "gateway.db", "SELECT count(*) FROM persons") == [(46,)]
    assert grown < 20, f"recording took {grown:.0f} MiB more: the 40 MB input was read again"


async def test_a_large_input_is_stored_whole_without_sqlite_keeping_a_copy(tmp_path: Path) -> None:
    """A 40 MB input is stored byte for byte (and read back so), and storing it leaves no
    copy behind: bound as a parameter, SQLite copied it and the writer's cached statement
    kept that copy until the next input (a 274 MB base delivery: 872 MiB at the peak, 611
    after, against 350 and 350 now)."""
    padding = b"".join(b"<!-- " + bytes([65 + n % 26]) * 1_000_000 + b" -->" for n in range(40))
    data = BASE.replace(b"<eCH-0020:baseDelivery>", padding + b"<eCH-0020:baseDelivery>", 1)
    small = RawInput("registry", "small.xml", BASE)
    store = SQLiteStore(tmp_path / "gateway.db")
    store.start()
    try:
        before = _peak_mib(reset=True)
        [(big_id, _new), (small_id, _new2)] = await store.add_raw(
            [RawInput("registry", "base.xml", data), small])
        grown = _peak_mib() - before
        pending = {p.message: bytes(p.data) for p in await store.inputs([big_id, small_id])}
    finally:
        store.close()
    assert pending == {big_id: data, small_id: BASE}
    assert grown < 20, f"storing took {grown:.0f} MiB more: SQLite copied the 40 MB input"


def test_a_worker_lets_go_of_a_large_input_once_finished_and_keeps_small_ones(
        tmp_path: Path) -> None:
    """A worker keeps the inputs it normalised for their finish (and a finish again); once
    finished, those over ``KEPT_BYTES`` are let go of, oldest first: four base deliveries of
    128 MB took each worker to 1.3 GB, one 765 MiB. Finished again, such an input is
    normalised again from its bytes, with the same outcome; a small one stays kept."""
    worker_stages.init_worker(load_settings(write_initial_config(tmp_path)))
    padding = b"".join(b"<!-- " + b"x" * 1_000_000 + b" -->"
                       for _ in range(worker_stages.KEPT_BYTES // 1_000_000 + 2))
    big = RawInput("registry", "big.xml",
                   BASE.replace(b"<eCH-0020:baseDelivery>", padding + b"<eCH-0020:baseDelivery>", 1))
    small = RawInput("registry", "small.xml", BASE)
    [big_step] = worker_stages.normalise_work([(1001, big)])
    [first] = worker_stages.finish_kept([1001], {}) or []
    assert worker_stages.finish_kept([1001], {}) is None, "the large input was let go of"
    assert isinstance(big_step, Normalised)
    [again] = worker_stages.finish_work([(1001, big, big_step)], {})
    assert (again.state, again.reason, again.persons) == (first.state, first.reason, first.persons)
    assert len(first.persons) == 46

    worker_stages.normalise_work([(1002, small)])
    [kept] = worker_stages.finish_kept([1002], {}) or []
    assert worker_stages.finish_kept([1002], {}) is not None, "a small input stays kept"
    assert kept.persons == first.persons

