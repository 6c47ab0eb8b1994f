"""The eCH-0223 writer writes text exactly as lxml would serialise the same document.

lxml re-serialising what it parsed from the writer's output must give the very
same bytes (the same escaping, prefixes and empty-element form), and the values
must read back unchanged, for ordinary messages and for texts full of the
characters that need escaping. Characters XML cannot carry are refused.
"""

from __future__ import annotations

import random

import pytest
from lxml import etree

from gateway.ech0223 import (
    Document,
    File,
    LangText,
    read_message,
    sample_event_report,
    sample_person_event,
    write_message,
)


def _as_lxml_writes_it(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data), xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("seed", range(40))
def test_samples_are_written_as_lxml_would(seed: int) -> None:
    rng = random.Random(seed)
    for message in (sample_person_event(rng, full=seed % 4 != 0),
                    sample_event_report(rng, reference_message_id="4c6e2a51-3f8e-4d5e-9a37-1b2c3d4e5f60")):
        data = write_message(message)
        assert data == _as_lxml_writes_it(data)
        assert read_message(data) == message
        pretty = write_message(message, pretty_print=True)
        assert b"\n  <" in pretty and read_message(pretty) == message


def test_characters_that_need_escaping_are_escaped_as_lxml_does() -> None:
    rng = random.Random(7)
    message = sample_person_event(rng, event="moveIn")
    awkward = 'Müller & Söhne <AG> "quoted" \'single\' ]]> tab\there\r\nline'
    message.header.subject = awkward
    title = LangText(text=awkward, lang="de")
    document = Document(uuid="b6f1c9e2-7d3a-4e8b-9c1d-2e3f4a5b6c7d", titles=[title], status="created",
                        files=[File(path_file_name="files/a&b <c>.pdf", mime_type="application/pdf")],
                        original_creation_date=message.header.message_date)
    message.content.document = [document]
    message.schema_location = 'http://www.ech.ch/xmlns/eCH-0223/1 a&b<"c">\tx.xsd'
    data = write_message(message)
    assert data == _as_lxml_writes_it(data)
    escaped = "Müller &amp; Söhne &lt;AG&gt; \"quoted\" 'single' ]]&gt; tab\there&#13;\nline"
    assert escaped.encode() in data
    assert b'a&amp;b&lt;&quot;c&quot;&gt;&#9;x.xsd' in data
    again = read_message(data)
    assert isinstance(again, type(message)) and again.header.subject == awkward
    assert again.schema_location == message.schema_location


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x0b", "\ufffe", "\ud800"])
def test_characters_xml_cannot_carry_are_refused(bad: str) -> None:
    message = sample_person_event(random.Random(1), event="death")
    message.header.subject = f"before{bad}after"
    with pytest.raises(ValueError):
        write_message(message)
