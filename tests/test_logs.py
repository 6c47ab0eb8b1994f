"""Log redaction hides the values schema errors quote, whatever their shape; it keeps what
names the problem (elements, facets, types, file paths)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from gateway.assembly import make_validator
from gateway.logs import JsonFormatter, TextFormatter, partner_text, redact, setup_command
from gateway.plugin_types import GatewayEvent
from gateway.xml.validation import SchemaSet, validate
from plugins.alerts import gateway_event
from tests.flow import FIXTURES, drop, running, states, until, write_config

MINIMAL = (FIXTURES / "valid-pem-minimal.xml").read_text(encoding="utf-8")
#: Names as registries hold them: an apostrophe, a line break, umlauts, 300 characters.
NAMES = ["O'Brien-Müller", "Anna\nMaria Lüthi", "Zoë d'Aubigné-Bärtschi", "Ä" * 150 + "ö" * 150]
#: Elements whose schema errors quote the value, with the part of the message naming the rule.
PLACES = {
    "<eCH-0039:messageDate>2024-03-04T08:00:00+01:00<": "atomic type",
    "<eCH-0039:action>1<": "[facet 'enumeration']",
    "<eCH-0039:testDeliveryFlag>true<": "testDeliveryFlagType",
}


def misplaced(name: str, place: str) -> bytes:
    """The minimal message with ``name`` written into the element ``place`` opens."""
    tag = place.split(">")[0]
    return MINIMAL.replace(place, f"{tag}>{escape(name)}<").encode()


def quarantine_reason(data: bytes) -> str:
    """The reason the processor stores for ``data``: real lxml messages, joined as it joins them."""
    validate_message = make_validator(SchemaSet.from_directory())
    problems = validate_message(data, "1.5")
    assert problems, "the message must be invalid"
    return "invalid eCH-0223 1.5: " + "; ".join(problems[:3])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("place", "rule"), PLACES.items())
def test_schema_errors_lose_the_value_and_keep_element_and_facet(
        name: str, place: str, rule: str) -> None:
    reason = quarantine_reason(misplaced(name, place))
    assert name in reason, "the real lxml message quotes the value (the store keeps it)"
    out = redact(reason)
    for part in {name, *name.split("\n"), "Brien", "Aubign", "Lüthi", "ÄÄ"}:
        if part in name:
            assert part not in out, f"{part!r} leaked: {out}"
    element = place[1:].split(">")[0].split(":")[1]
    assert f"}}{element}'" in out, "the element name stays"
    assert rule in out, "the rule (facet, type) stays"
    assert "line " in out


def test_pattern_and_length_facets_keep_their_figures() -> None:
    report = validate(misplaced("4.2.1-" + "x" * 20, "<eCH-0058:productVersion>4.2.1<"))
    (issue,) = report.errors
    out = redact(issue.message)
    assert out == issue.message, "a length error quotes no value; facet and lengths stay"
    assert "[facet 'maxLength']" in out and "'10'" in out


def test_key_sequences_and_unknown_quoted_values_are_hidden_paths_stay() -> None:
    text = ("Element '{urn:x}person': Duplicate key-sequence ['O'Brien', '756.1234'] in unique"
            " identity-constraint '{urn:x}ids'.; cannot move"
            " '/var/lib/ech-gateway/registry/outbox/mutation-0001.xml': Permission denied;"
            " sender said 'Anna Meier'")
    out = redact(text)
    assert "Brien" not in out and "756.1234" not in out and "Anna Meier" not in out
    assert "'/var/lib/ech-gateway/registry/outbox/mutation-0001.xml'" in out
    assert "identity-constraint '{urn:x}ids'" in out


@pytest.mark.parametrize("said", [
    "no resident Anna O'Brien born 1990-05-01", "line one\nAnna Meier\nline three",
    "/persons/Anna Meier: unknown", "{urn:x}Anna Meier", "Anna Meier " + "x" * 500])
def test_what_a_partner_wrote_stays_in_the_reason_and_out_of_logs(said: str) -> None:
    """A SOAP fault string or an answer's body may name a person: quoted, a log hides it."""
    reason = f"SOAP fault soap:Client: {partner_text(said)}"
    assert "Anna" in reason  # the store keeps the reason whole
    assert "Anna" not in redact(reason) and redact(reason).startswith("SOAP fault soap:Client: '")


@pytest.mark.parametrize("text", [
    "invalid eCH-0223 from partner 'canton': line 45: line 3 of {}",
    "eCH-0223 1.4 input from source 'from-canton', upgraded to 1.5",
    "for registry 'registry-b': about a resident found by VN: to the registry 'registry_2'",
    "rule 'foreign-nationals' matched",
])
def test_the_partners_and_sources_of_the_configuration_stay_named(text: str) -> None:
    """They are configuration, not personal data: an operator must see which partner."""
    assert redact(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("invalid eCH-0223 from partner 'canton': sender said 'Anna Meier'",
     "invalid eCH-0223 from partner 'canton': sender said '…'"),
    ("partner 'Anna Muster' unknown", "partner '…' unknown"),
    ("source 'anna muster'", "source '…'"),
    ("partner 'müller'", "partner '…'"),
    ("registry 'Muster'", "registry '…'"),
    ("SOAP fault from partner 'canton': " + partner_text("no partner 'muster' known"),
     "SOAP fault from partner 'canton': '…'"),
])
def test_a_persons_name_after_the_word_partner_is_hidden_all_the_same(text: str,
                                                                      shown: str) -> None:
    """Only a name of the configuration's form (lower case, digits, - and _) is kept."""
    assert redact(text) == shown


def test_quarantine_warning_names_no_person(caplog: pytest.LogCaptureFixture) -> None:
    reason = quarantine_reason(misplaced(NAMES[0], "<eCH-0039:action>1<"))
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("message.quarantined", 3, None, {"reason": reason}))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "Brien" not in record.getMessage() and "Müller" not in record.getMessage()
    assert "{http://www.ech.ch/xmlns/eCH-0039/3}action" in record.getMessage()


@pytest.mark.asyncio
async def test_daemon_logs_a_misfiled_name_without_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path)
    with caplog.at_level(logging.INFO):
        async with running(config) as gateway:
            drop(tmp_path / "in", "m.xml", misplaced(NAMES[1], next(iter(PLACES))))
            await until(lambda: states(gateway.settings.store.path,
                                       "SELECT state FROM messages") == [("quarantined",)])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "message 1 quarantined" in logged and "messageDate" in logged
    assert "Anna" not in logged and "Lüthi" not in logged



@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_a_traceback_in_the_log_loses_the_values_its_error_quotes(
        formatter: logging.Formatter) -> None:
    """A plugin's bug is logged with its traceback; the error may quote the input it choked on
    (pydantic's ``input_value='...'``)."""
    try:
        raise ValueError("1 validation error for Person: input_value='Anna Muster',"
                         " vn 756.1234.5678.97")
    except ValueError:
        record = logging.LogRecord("gateway.processor", logging.ERROR, __file__, 1,
                                   "normaliser failed on message %d", (7,), sys.exc_info())
    out = formatter.format(record)
    if isinstance(formatter, JsonFormatter):
        line = json.loads(out)
        out = f"{line['msg']}\n{line['exc']}"
    assert "Anna" not in out and "5678" not in out
    assert "normaliser failed on message 7" in out and "Traceback (most recent call last)" in out
    assert "ValueError: 1 validation error for Person: input_value='…'" in out


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_a_vn_in_a_file_name_never_reaches_the_log(formatter: logging.Formatter) -> None:
    """Log lines name files as they are, and a registry may name a person's files by their
    VN; whatever line carries one, the formatter hides it (references stay readable)."""
    record = logging.LogRecord(
        "plugins.folder.source", logging.WARNING, __file__, 1,
        "source %s: cannot read %s (%s); attempt %s, digest %s", (
            "registry", "/srv/drop/7561234567897_permit.xml and 756.1234.5678.97.pdf,"
            " 756_1234_5678_97.pdf, 756-1234-5678-97.pdf",
            "Permission denied", "0a1b2c3d-7561-4000-8000-756123456789", "a" * 64), None)
    out = formatter.format(record)
    if isinstance(formatter, JsonFormatter):
        out = json.loads(out)["msg"]
    assert "7561234567897" not in out and "1234.5678" not in out and "1234_5678" not in out, out
    assert "1234-5678" not in out, out
    assert "/srv/drop/756…_permit.xml and 756….pdf, 756….pdf, 756….pdf (Permission denied)" in out
    assert "attempt 0a1b2c3d-7561-4000-8000-756123456789, digest " + "a" * 64 in out


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger, restored after the test (which takes pytest's handlers off it first,
    as a command-line process starts: without any)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize(("configured", "written"), [
    ("DEBUG", logging.WARNING), ("INFO", logging.WARNING), ("WARNING", logging.WARNING),
    ("ERROR", logging.ERROR)])
def test_a_command_logs_at_warning_or_the_stricter_level_configured(
        bare_root: logging.Logger, configured: str, written: int) -> None:
    bare_root.handlers[:] = []
    setup_command(configured, "json")
    [handler] = bare_root.handlers
    assert (bare_root.level, type(handler.formatter)) == (written, JsonFormatter)
    setup_command()  # again, as once the configuration is read: replaced, not added
    assert len(bare_root.handlers) == 1


def test_a_command_leaves_the_logging_its_host_program_set_up(bare_root: logging.Logger) -> None:
    """An application (or a test runner) calling ``gateway.cli.main`` keeps its handlers."""
    own = logging.NullHandler()
    bare_root.handlers[:] = [own]
    bare_root.setLevel(logging.DEBUG)
    setup_command("ERROR", "json")
    assert (bare_root.handlers, bare_root.level) == ([own], logging.DEBUG)
