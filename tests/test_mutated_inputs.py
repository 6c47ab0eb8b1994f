"""Broken eCH-0020 deliveries, eCH-0223 messages, export rows and sedex files, made by
mutating good ones: each is decided, never a crash.

A registry's export goes wrong in more ways than the corpus's bad files show:
elements left out, written twice, in another order, or holding text of the
wrong kind. Each seeded mutation of a good delivery goes through both stages
as a worker runs them (normalise, then finish with the base delivery's
persons): it is routed, not relevant, or quarantined with a reason that says
where (an element path or a line); no plugin error, no exception.
"""

from __future__ import annotations

import copy
import random
import re
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway import worker_stages
from gateway.config import load_settings, write_initial_config
from gateway.contracts import NormaliseContext, RawInput
from gateway.errors import InputRejected
from gateway.person_state import StoredPerson
from gateway.store import MessageState, Processed
from gateway.xml.validation import default_schema_set
from plugins.mapping.normaliser import MAPPING_META, normalise
from plugins.sedex.envelope import (
    Envelope,
    build_envelope,
    build_receipt,
    parse_envelope,
    parse_receipt,
)
from tests.flow import seeded_states

ECH0020 = Path(__file__).parent / "fixtures" / "ech0020"
CONFORMANCE = Path(__file__).parent / "fixtures" / "conformance"
REPO = Path(__file__).resolve().parent.parent
NOVA_CSV = REPO / "config" / "examples" / "nova" / "einwohner-2026-12-01.csv"
NOVA_MAPPING = REPO / "config" / "mappings" / "nova.toml"
#: Cell values a mutated export row gets: empty, wrong type or format, out of range, unknown codes.
CELLS = ("", " ", "x", "9" * 40, "31.02.2026", "2026-01-01", "-1", "ä" * 300, "0", "01.01.1900",
         "99999", "CH", "XX", "M", "W", "ledig", "??", "756.0000.0000.00", "12.12.2099")
#: How an export's rejected row is named.
ROW = re.compile(r"row \d+ \(line \d+\): ")
#: Texts a mutated leaf element gets: empty, blank, wrong type, out of range, too long.
TEXTS = ("", " ", "x", "9" * 40, "2026-13-45", "-1", "ä" * 300, "0", "1900-01-01", "99999",
         "CH", "true", "2026-02-29")
MUTATIONS = 1500
#: How the core words a quarantine that is a normaliser's fault, not the input's.
PLUGIN_FAULTS = ("normaliser error", "processing this input crashed")
#: Where a refused sedex file's reason says the problem is: a line, or the eCH-0090 field.
SEDEX_WHERE = re.compile(r"line \d+|messageId|senderId|recipientId|messageType|messageClass"
                         r"|eventDate|messageDate|statusCode|statusInfo")
#: Where a reason says the problem is: an element path, or a line of the document.
WHERE = re.compile(r"/[A-Za-z]|line \d+")


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str) and e is not root]


def mutated(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to three elements removed, doubled, moved, or given other text."""
    root = etree.fromstring(data)
    for _ in range(rng.randint(1, 3)):
        elements = _elements(root)
        if not elements:
            break
        element = rng.choice(elements)
        parent = element.getparent()
        assert parent is not None
        operation = rng.randrange(4)
        if operation == 0:
            parent.remove(element)
        elif operation == 1:
            parent.insert(parent.index(element) + 1, copy.deepcopy(element))
        elif operation == 2 and len(element) == 0:
            element.text = rng.choice(TEXTS)
        elif operation == 3:
            siblings = len(parent)
            parent.remove(element)
            parent.insert(rng.randrange(siblings), element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, StoredPerson]:
    """This process as a fresh worker of ``init``'s configuration; the base delivery's
    persons as enrichment finds them, by key."""
    monkeypatch.setattr("gateway.workers.settle_gc", lambda: None)  # not in the test process
    monkeypatch.setattr(worker_stages, "_worker", None)
    monkeypatch.setattr(worker_stages, "_inputs", {})
    monkeypatch.setattr(worker_stages, "_kept", deque())
    worker_stages.init_worker(load_settings(write_initial_config(tmp_path)))
    return seeded_states(RawInput("registry", "base.xml",
                                  (ECH0020 / "baseDelivery.xml").read_bytes()), mid=1)


def _decided(mid: int, raw: RawInput, known: dict[str, StoredPerson]) -> Processed:
    [step] = worker_stages.normalise_work([(mid, raw)])
    if isinstance(step, Processed):
        return step
    [result] = worker_stages.finish_kept([mid], known) or []
    return result


def _mutations(sources: list[Path], count: int, seed: int, known: dict[str, StoredPerson]
               ) -> dict[MessageState, int]:
    """Decide ``count`` seeded mutations of ``sources``, each checked; how many of each state."""
    rng = random.Random(seed)
    seen: dict[MessageState, int] = {}
    for mid in range(100, 100 + count):
        source = rng.choice(sources)
        data = mutated(source.read_bytes(), rng)
        result = _decided(mid, RawInput("registry", source.name, data), known)
        seen[result.state] = seen.get(result.state, 0) + 1
        what = f"{source.name}, mutation {mid}:\n{data.decode()}"
        assert result.state in {MessageState.ROUTED, MessageState.NOT_RELEVANT,
                                MessageState.QUARANTINED}, what
        if result.state is MessageState.QUARANTINED:
            assert result.reason and not result.reason.startswith(PLUGIN_FAULTS), what
            assert WHERE.search(result.reason), f"{result.reason!r} says not where; {what}"
    return seen


def test_a_mutated_delivery_is_decided_and_a_refusal_says_where(
        worker: dict[str, StoredPerson]) -> None:
    events = sorted(p for p in ECH0020.glob("*.xml") if p.name != "baseDelivery.xml")
    seen = _mutations(events, MUTATIONS, 20261205, worker)
    # the mutations reach every outcome, most of them the refusals
    assert seen[MessageState.QUARANTINED] > MUTATIONS // 3
    assert seen[MessageState.ROUTED] > MUTATIONS // 5
    assert seen[MessageState.NOT_RELEVANT] > 0


def test_a_mutated_ech0223_message_is_decided_and_a_refusal_says_where(
        worker: dict[str, StoredPerson]) -> None:
    """The conformance corpus's valid messages, mutated: the schema refuses most (by line)."""
    seen = _mutations(sorted(CONFORMANCE.glob("valid-*.xml")), 600, 20261206, worker)
    assert seen[MessageState.QUARANTINED] > 300 and seen[MessageState.ROUTED] > 0


def test_a_mutated_export_row_is_sent_valid_or_rejected_alone_naming_its_row() -> None:
    """Rows of the shipped Nova CSV with one to three cells changed: each becomes a message
    valid against eCH-0223 1.5, or is rejected naming its row and line."""
    context = NormaliseContext(max_bytes=1 << 20, max_zip_entries=10, max_zip_bytes=1 << 20,
                               max_zip_ratio=10)
    header, *rows = [line for line in NOVA_CSV.read_text(encoding="windows-1252").splitlines()
                     if line]
    rng = random.Random(20261207)
    sent = rejected = 0
    for _ in range(500):
        cells = rng.choice(rows).split(";")
        for _ in range(rng.randint(1, 3)):
            cells[rng.randrange(len(cells))] = rng.choice(CELLS)
        data = f"{header}\r\n{';'.join(cells)}\r\n".encode("windows-1252", errors="replace")
        export = normalise(RawInput("nova", "export.csv", data,
                                    {"content_type": "text/csv", MAPPING_META: str(NOVA_MAPPING)}),
                           context)
        assert export is not None and len(export.parts) + len(export.rejected_parts) == 1, data
        for _part, reason in export.rejected_parts:
            assert ROW.match(reason), (reason, data)
            rejected += 1
        for part in export.parts:
            message = normalise(part, context)
            assert message is not None, data
            report = default_schema_set().validate(message.xml)
            assert report.valid, ([e.message for e in report.errors], data)
            sent += 1
    assert sent > 50 and rejected > 250


def test_a_mutated_sedex_envelope_or_receipt_is_read_or_refused_saying_why() -> None:
    """eCH-0090 envelopes (v1, v2) and receipts (delivered, failed, pending), mutated: each
    is read (a receipt leniently) or refused with a reason naming a line or a field,
    never another exception: a receipt folder must not stop on one."""
    when = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    envelopes = [build_envelope(Envelope(f"m-{v}", 1900223, 0, sender_id="T1-2511-1",
                                         recipient_ids=("T2-2-1",), event_date=when,
                                         message_date=when, version=v)) for v in (1, 2)]
    receipts = [build_receipt(parse_envelope(e, max_bytes=1 << 20), "T2-2-1", code, "info", when)
                for e in envelopes for code in (100, 310, 601)]
    rng = random.Random(20261208)
    read = refused = 0
    for _ in range(1000):
        receipt = rng.randrange(2) == 1
        data = mutated(rng.choice(receipts if receipt else envelopes), rng)
        try:
            (parse_receipt if receipt else parse_envelope)(data, max_bytes=1 << 20)
        except InputRejected as exc:
            assert SEDEX_WHERE.search(str(exc)), (str(exc), data)
            refused += 1
        else:
            read += 1
    assert read > 200 and refused > 200
