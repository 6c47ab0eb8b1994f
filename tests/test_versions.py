"""eCH-0223 versions 1.0, 1.3, 1.4 and 1.5: validation, the ``validate`` command, conversion."""

from __future__ import annotations

import asyncio
import io
import pickle
import random
import re
import subprocess
import sys
import zipfile
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from lxml import etree

import plugins.ech0223 as ech0223_plugin
from gateway.assembly import load_config, partner_ech0223
from gateway.cli import main
from gateway.config import write_initial_config
from gateway.contracts import NormaliseContext, Normalised, PartnerVersion, RawInput
from gateway.ech0223 import sample_event_report, sample_person_event, write_message
from gateway.ech0223.samples import PERSON_EVENTS
from gateway.ech0223.versions import EVENTS, VERSIONS, convert, upgrade
from gateway.errors import ConversionRefused, InputRejected
from gateway.xml.safe import parse_untrusted
from gateway.xml.validation import ECH0223_VERSIONS, SchemaSet, validate, validate_files
from tests.flow import FIXTURES, StubTransport, drop, plugin_manager, running, states, until, write_config
from tests.official import OFFICIAL_DIR, official_schema_set, require_shared

V14_FULL = FIXTURES / "valid-pem14-full-persondata.xml"
V10_FULL = FIXTURES / "valid-pem10-full-persondata.xml"
V15_FULL = FIXTURES / "valid-pem-full-persondata.xml"


# ---------------------------------------------------------------------------
# validation and the validate command
# ---------------------------------------------------------------------------


def test_every_version_validates_with_its_own_rules() -> None:
    assert ECH0223_VERSIONS == ("1.5", "1.4", "1.3", "1.0")
    data = V14_FULL.read_bytes()  # othercaseOfMigration and dateTime originalCreationDate
    verdicts = {v: validate(data, ech0223_version=v) for v in ECH0223_VERSIONS}
    assert {v: r.valid for v, r in verdicts.items()} == {
        "1.5": False, "1.4": True, "1.3": False, "1.0": False}
    assert verdicts["1.4"].kind == "eCH-0223 1.4 personEventMessage"
    assert "othercaseOfMigration" in verdicts["1.3"].errors[0].message


def test_versionless_files_follow_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V10_FULL)], ech0223_version="1.0") == 0
    assert capsys.readouterr().out == f"{V10_FULL}: valid (eCH-0223 1.0 personEventMessage)\n"
    assert validate_files([str(V10_FULL)], ech0223_version="1.3") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{V10_FULL}: INVALID (eCH-0223 1.3 personEventMessage)\n")
    assert "originalCreationDate" in out and "dateTime" in out


def test_a_document_saying_1_5_is_1_5_whatever_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V15_FULL)], ech0223_version="1.0") == 0
    assert capsys.readouterr().out == f"{V15_FULL}: valid (eCH-0223 1.5 personEventMessage)\n"


def test_versionless_without_option_gets_a_hint_naming_the_versions_that_fit(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_files([str(V14_FULL)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{V14_FULL}: INVALID (eCH-0223 1.5 personEventMessage)"
    assert "'version' is required but missing" in lines[1]
    assert lines[2] == ("  hint: eCH-0223 1.4 / 1.3 / 1.0 documents have no version attribute;"
                        " this one is valid as 1.4: validate it with --ech0223-version 1.4")
    assert len(lines) == 3


def test_no_hint_when_the_version_is_not_the_only_problem(
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = FIXTURES / "invalid-enum-pem14-prolongationl.xml"  # valid in 1.5 but for the version
    assert validate_files([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "hint: eCH-0223 1.4 / 1.3 / 1.0 documents have no version attribute, but this one is" \
           " valid as none of them either; as 1.5 it needs version=\"1.5\"" in out
    broken = FIXTURES / "invalid-unexpected-pem14-deadline.xml"  # versionless, 1.5 only in part
    assert validate_files([str(FIXTURES / "invalid-type-pem13-originalcreationdate-date.xml"),
                           str(broken)]) == 1
    assert "hint" not in capsys.readouterr().out.split(str(broken))[0]


def test_cli_option(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "validate", *args],
                              capture_output=True, text=True, timeout=60, check=False)

    done = run("--ech0223-version", "1.4", str(V14_FULL), str(V15_FULL))
    assert (done.returncode, done.stdout.splitlines()) == (0, [
        f"{V14_FULL}: valid (eCH-0223 1.4 personEventMessage)",
        f"{V15_FULL}: valid (eCH-0223 1.5 personEventMessage)"])
    done = run(str(V14_FULL))
    assert done.returncode == 1 and "--ech0223-version 1.4" in done.stdout
    done = run("--ech0223-version", "1.2", str(V14_FULL))
    assert done.returncode == 2 and "invalid choice: '1.2'" in done.stderr


# ---------------------------------------------------------------------------
# conversion between versions
# ---------------------------------------------------------------------------

E = "{http://www.ech.ch/xmlns/eCH-0223/1}"
XS = "{http://www.w3.org/2001/XMLSchema}"


@pytest.fixture(scope="module")
def official() -> SchemaSet:
    return official_schema_set()


def events_in_official_xsd(version: str) -> set[str]:
    path = require_shared(OFFICIAL_DIR / f"eCH-0223-{version.replace('.', '-')}.xsd")
    root = etree.parse(str(path)).getroot()
    kind = root.find(f"{XS}simpleType[@name='personEventType']")
    assert kind is not None
    return {str(e.get("value")) for e in kind.iter(f"{XS}enumeration")}


@pytest.mark.parametrize("version", VERSIONS)
def test_event_lists_are_the_official_ones(version: str) -> None:
    assert EVENTS[version] == events_in_official_xsd(version)


def samples() -> list[tuple[str, bytes]]:
    """Every 1.5 personEvent, with and without personData, pretty or not, with varied optional
    parts (documents, business information, deadline, reportingDate, birthAddonData)."""
    out = []
    for seed in range(6 * len(PERSON_EVENTS)):
        event = PERSON_EVENTS[seed % len(PERSON_EVENTS)]
        message = sample_person_event(random.Random(seed), event=event, full=seed % 6 != 5)
        out.append((event, write_message(message, pretty_print=seed % 2 == 0)))
    reports = [write_message(sample_event_report(random.Random(n), reference_message_id=str(n)))
               for n in range(5)]
    return out + [("", report) for report in reports]


SAMPLES = samples()


@pytest.mark.parametrize("target", VERSIONS)
def test_every_conversion_is_valid_in_the_official_xsd_of_its_target(
        target: str, official: SchemaSet) -> None:
    seen: Counter[str] = Counter()
    for event, data in SAMPLES:
        result = convert(data, target)
        report = official.validate(result.xml, ech0223_version=target)
        assert report.valid, (event, target, report.errors)
        root = etree.fromstring(result.xml)
        assert root.get("version") == ("1.5" if target == "1.5" else None)
        expected = [f"{name} dropped: not in eCH-0223 {target}" for name in ONLY_15
                    if target != "1.5" and etree.fromstring(data).find(f"{E}content/{E}" + name.replace(
                        "/", f"/{E}")) is not None]
        if event and event not in EVENTS[target]:
            seen["event"] += 1
            expected.append(
                f"personEvent {event} is not in eCH-0223 {target}: sent as othercaseOfMigration,"
                " with a businessComment saying so" if target == "1.4" else
                f"personEvent {event} is not in eCH-0223 {target}"
                + (" (nor is othercaseOfMigration)" if event != "othercaseOfMigration" else "")
                + ", so the message has no personEvent; the businessComment says so")
        assert list(result.warnings) == expected, event
        seen.update(w.split(" ", 1)[0] for w in result.warnings)
    if target != "1.5":  # the samples exercised every kind of change
        assert set(seen) >= {"event", *ONLY_15}, seen


ONLY_15 = ("personData/birthAddonData", "personData/comesFrom/reportingDate",
           "businessInformation/deadline")


def test_to_1_5_returns_the_input_itself() -> None:
    data = V15_FULL.read_bytes()
    result = convert(data, "1.5")
    assert result.xml is data and result.warnings == ()
    tree = parse_untrusted(data, max_bytes=1 << 20)
    assert etree.fromstring(convert(tree, "1.5").xml).get("version") == "1.5"


def test_full_1_5_to_1_4_and_1_0_in_detail(official: SchemaSet) -> None:
    data = V15_FULL.read_bytes()
    to14 = convert(data, "1.4")
    assert to14.warnings == tuple(f"{name} dropped: not in eCH-0223 1.4" for name in ONLY_15)
    root = etree.fromstring(to14.xml)
    assert root.find(f"{E}content/{E}businessInformation/{E}encashment") is not None
    dates = [e.text for e in root.iter(f"{E}originalCreationDate")]
    assert dates == ["2024-02-20T10:15:00+01:00", "2024-03-01T14:00:00Z"]
    to10 = convert(data, "1.0")
    assert official.validate(to10.xml, ech0223_version="1.0").valid
    dates = [e.text for e in etree.fromstring(to10.xml).iter(f"{E}originalCreationDate")]
    assert dates == ["2024-02-20", "2024-03-01"]  # the date as written, not moved to UTC
    # whitespace stays tidy where elements went
    assert b"</eCH-0223:encashment>\n    </eCH-0223:businessInformation>" in to10.xml


def test_a_1_0_date_of_24_00_is_the_next_day(official: SchemaSet) -> None:
    """``2024-02-29T24:00:00`` is the start of 1 March: its 1.0 date is 2024-03-01."""
    data = V15_FULL.read_bytes().replace(b"2024-02-20T10:15:00+01:00",
                                         b"2024-02-29T24:00:00+01:00")
    to10 = convert(data, "1.0")
    assert official.validate(to10.xml, ech0223_version="1.0").valid
    dates = [e.text for e in etree.fromstring(to10.xml).iter(f"{E}originalCreationDate")]
    assert dates == ["2024-03-01", "2024-03-01"]


def test_a_schema_location_hint_follows_the_version(official: SchemaSet) -> None:
    hint = "http://www.ech.ch/xmlns/eCH-0223/1 http://www.ech.ch/xmlns/eCH-0223/1/eCH-0223-1-5.xsd"
    data = V15_FULL.read_bytes().replace(
        b'version="1.5"', b'version="1.5" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        b' xsi:schemaLocation="' + hint.encode() + b'"')
    where = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
    older = convert(data, "1.3").xml
    assert etree.fromstring(older).get(where) == hint.replace("1-5.xsd", "1-3.xsd")
    assert official.validate(older, ech0223_version="1.3").valid
    assert etree.fromstring(upgrade(older, "1.3").xml).get(where) == hint


def test_event_note_is_appended_to_the_comment(official: SchemaSet) -> None:
    data = V15_FULL.read_bytes().replace(b">moveIn<", b">prolongationL<")
    result = convert(data, "1.4")
    root = etree.fromstring(result.xml)
    assert root.findtext(f"{E}content/{E}personEvent") == "othercaseOfMigration"
    assert root.findtext(f"{E}content/{E}businessInformation/{E}businessComment") == (
        "Bitte Aufenthaltsbewilligung prüfen und Verfügung zustellen.\n"
        "personEvent prolongationL is not in eCH-0223 1.4")
    assert official.validate(result.xml, ech0223_version="1.4").valid


def test_event_note_creates_business_information_after_the_documents(
        official: SchemaSet) -> None:
    tree = parse_untrusted(V15_FULL.read_bytes().replace(b">moveIn<", b">declarationOfCommitment<"),
                           max_bytes=1 << 20)
    content = tree.getroot().find(f"{E}content")
    assert content is not None
    business = content.find(f"{E}businessInformation")
    assert business is not None
    content.remove(business)
    before = etree.tostring(tree)
    result = convert(tree, "1.3")
    assert etree.tostring(tree) == before, "the caller's tree is not changed"
    out = etree.fromstring(result.xml).find(f"{E}content")
    assert out is not None
    assert [etree.QName(c).localname for c in out][-3:] == [
        "document", "document", "businessInformation"]
    assert out.find(f"{E}personEvent") is None
    assert out.findtext(f"{E}businessInformation/{E}businessComment") == (
        "personEvent declarationOfCommitment is not in eCH-0223 1.3 (nor is"
        " othercaseOfMigration), so the message has no personEvent")
    assert official.validate(result.xml, ech0223_version="1.3").valid


def test_a_full_comment_is_shortened_to_make_room(official: SchemaSet) -> None:
    long = "Ä" * 1020
    data = V15_FULL.read_bytes().replace(b">moveIn<", b">prolongationL<").replace(
        "Bitte Aufenthaltsbewilligung prüfen und Verfügung zustellen.".encode(), long.encode())
    result = convert(data, "1.4")
    note = "personEvent prolongationL is not in eCH-0223 1.4"
    comment = etree.fromstring(result.xml).findtext(f"{E}content/{E}businessInformation/"
                                                    f"{E}businessComment")
    assert comment is not None and len(comment) == 1024
    assert comment.endswith("Ä…\n" + note)
    assert result.warnings[-1] == (f"businessComment shortened by {1020 - (1024 - len(note) - 2)}"
                                   " characters to make room for the personEvent note")
    assert official.validate(result.xml, ech0223_version="1.4").valid


def test_refuse_policy_raises_naming_value_and_version() -> None:
    data = V15_FULL.read_bytes().replace(b">moveIn<", b">prolongationL<")
    with pytest.raises(ConversionRefused) as caught:
        convert(data, "1.4", unsupported="refuse")
    assert str(caught.value) == ("personEvent prolongationL is not in eCH-0223 1.4"
                                 " (unsupported_event is refuse)"
                                 " (at /personEventMessage/content/personEvent)")
    assert isinstance(caught.value, InputRejected)  # quarantined like any unusable input
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.event, again.version, str(again)) == ("prolongationL", "1.4", str(caught.value))
    assert convert(V15_FULL.read_bytes(), "1.0", unsupported="refuse").warnings  # moveIn is fine


def test_convert_refuses_what_is_not_1_5() -> None:
    with pytest.raises(ValueError, match=re.escape("eCH-0223 version '1.2' is unknown")):
        convert(V15_FULL.read_bytes(), "1.2")
    with pytest.raises(ValueError, match=re.escape(
            "convert takes eCH-0223 1.5, not a document with version=None")):
        convert(V14_FULL.read_bytes(), "1.3")
    with pytest.raises(InputRejected, match="malformed XML"):
        convert(b"<a>", "1.4")
    with pytest.raises(ValueError, match="unsupported must be one of othercase, refuse, not 'drop'"):
        convert(V15_FULL.read_bytes(), "1.4", unsupported="drop")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("valid-*1[034]-*.xml")))
def test_upgrade_of_every_older_fixture_is_valid_1_5(name: str, official: SchemaSet) -> None:
    version = {"10": "1.0", "13": "1.3", "14": "1.4"}[name.split("-")[1][-2:]]
    result = upgrade((FIXTURES / name).read_bytes(), version)
    assert official.validate(result.xml, ech0223_version="1.5").valid, result.warnings


def test_upgrade_1_0_dates_become_midnight_in_their_zone() -> None:
    data = V10_FULL.read_bytes().replace(b">2024-02-20<", b">2024-02-20+01:00<")
    result = upgrade(data, "1.0")
    root = etree.fromstring(result.xml)
    assert root.get("version") == "1.5" and result.warnings == ()
    assert [e.text for e in root.iter(f"{E}originalCreationDate")] == [
        "2024-02-20T00:00:00+01:00", "2024-03-01T00:00:00Z"]
    assert etree.fromstring(upgrade(V14_FULL.read_bytes(), "1.4").xml).findtext(
        f"{E}content/{E}document/{E}originalCreationDate") == "2024-02-20T10:15:00+01:00"


def test_upgrade_change_occupation_follows_the_policy(official: SchemaSet) -> None:
    data = (FIXTURES / "valid-pem13-full-persondata.xml").read_bytes()
    result = upgrade(data, "1.3")
    root = etree.fromstring(result.xml)
    assert root.findtext(f"{E}content/{E}personEvent") == "othercaseOfMigration"
    assert root.findtext(f"{E}content/{E}businessInformation/{E}businessComment", "").endswith(
        "\npersonEvent changeOccupation is not in eCH-0223 1.5")
    assert result.warnings == ("personEvent changeOccupation is not in eCH-0223 1.5: sent as"
                               " othercaseOfMigration, with a businessComment saying so",)
    assert official.validate(result.xml, ech0223_version="1.5").valid
    with pytest.raises(ConversionRefused, match=re.escape("changeOccupation is not in eCH-0223 1.5")):
        upgrade(data, "1.3", unsupported="refuse")


def test_upgrade_takes_versionless_documents_only() -> None:
    data = V15_FULL.read_bytes()
    assert upgrade(data, "1.5").xml is data
    with pytest.raises(ValueError, match=re.escape(
            "1.4 has no version attribute; this document says '1.5'")):
        upgrade(data, "1.4")
    with pytest.raises(InputRejected, match=re.escape(
            "originalCreationDate '2024-02-20T10:15:00+01:00' is not")):
        upgrade(V14_FULL.read_bytes(), "1.0")


# ---------------------------------------------------------------------------
# inbound: the eCH-0223 normaliser takes every version and hands on 1.5
# ---------------------------------------------------------------------------

LIMITS = dict(max_bytes=1 << 20, max_zip_entries=10, max_zip_bytes=1 << 22, max_zip_ratio=100)


def normalise(data: bytes, source: str = "registry", **partners: PartnerVersion) -> Normalised:
    context = NormaliseContext(**LIMITS, partners=partners)  # type: ignore[arg-type]
    result = ech0223_plugin.gateway_normalise(raw=RawInput(source, "m.xml", data), context=context)
    assert result is not None
    return result


@pytest.mark.parametrize(("name", "guessed"), [
    ("valid-pem14-full-persondata.xml", "1.4"),  # othercaseOfMigration: 1.4 only
    ("valid-pem13-full-persondata.xml", "1.4"),  # 1.3 and 1.4 look alike: read as 1.4
    ("valid-pem10-full-persondata.xml", "1.0"),  # date originalCreationDate
    ("valid-er10-single-reason.xml", "1.4"),
])
def test_versionless_input_from_a_non_partner_is_read_as_the_newest_that_fits(
        name: str, guessed: str, official: SchemaSet) -> None:
    data = (FIXTURES / name).read_bytes()
    result = normalise(data)
    assert result.version == "1.5" and result.xml != data
    assert result.xml == upgrade(data, guessed).xml
    assert result.tree is not None and result.tree.getroot().get("version") == "1.5"
    assert official.validate(result.tree, ech0223_version="1.5").valid


def test_versionless_input_from_a_partner_is_read_as_its_version(
        caplog: pytest.LogCaptureFixture) -> None:
    data = (FIXTURES / "valid-pem13-full-persondata.xml").read_bytes()  # changeOccupation
    with caplog.at_level("WARNING", logger="plugins.ech0223"):
        result = normalise(data, "canton", canton=PartnerVersion("1.3"))
    assert result.xml == upgrade(data, "1.3").xml
    assert result.message_id == "b8e0c3a2-4f5d-4a61-8c3e-2d9f7a1b6e04"
    assert [r.getMessage() for r in caplog.records] == [
        "eCH-0223 1.3 input 'm.xml' from canton, upgraded to 1.5: personEvent changeOccupation"
        " is not in eCH-0223 1.5: sent as othercaseOfMigration, with a businessComment saying so"]
    with pytest.raises(ConversionRefused, match=re.escape("changeOccupation is not in eCH-0223 1.5")):
        normalise(data, "canton", canton=PartnerVersion("1.3", "refuse"))
    with pytest.raises(InputRejected, match=re.escape(
            "invalid eCH-0223 1.0 (the version of partner 'canton'): line 2")):
        normalise(data, "canton", canton=PartnerVersion("1.0"))


def test_versionless_input_that_fits_no_version_is_rejected_with_the_reason() -> None:
    data = (FIXTURES / "invalid-unexpected-pem14-deadline.xml").read_bytes()
    with pytest.raises(InputRejected, match=re.escape(
            "personEventMessage without version attribute is valid in none of eCH-0223"
            " 1.4, 1.3, 1.0; as 1.4: line ")) as caught:
        normalise(data)
    assert "deadline" in str(caught.value)
    with pytest.raises(InputRejected, match=re.escape(
            "but partner 'canton' is configured for eCH-0223 1.5; versions 1.0 to 1.4 have no"
            " version attribute: set [partners.canton] ech0223_version to the one it sends (this"
            ' file is valid as 1.4, 1.3 or 1.0: e.g. ech0223_version = "1.4")')):
        normalise((FIXTURES / "valid-pem10-minimal.xml").read_bytes(), "canton",
                  canton=PartnerVersion("1.5"))


async def test_a_versionless_registry_file_waits_for_the_version_the_init_config_names(
        tmp_path: Path) -> None:
    """The registry partner of ``init`` runs 1.5 unless set: a versionless eCH-0223 1.4 file
    in registry/outbox is quarantined naming the key and the value; set as the template's
    comment says, the file is taken."""
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-fast.toml").write_text(
        '[sources.registry]\npoll_interval = "50ms"\nsettle = "50ms"\n'
        '[dispatcher]\nidle_poll = "50ms"\n')
    db, outbox = tmp_path / "gateway.db", tmp_path / "registry" / "outbox"
    async with running(config):
        drop(outbox, "v14.xml", (FIXTURES / "valid-pem14-changeoccupation.xml").read_bytes())
        await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])
    assert states(db, "SELECT reason FROM messages") == [(
        "personEventMessage without version attribute, but partner 'registry' is configured for"
        " eCH-0223 1.5; versions 1.0 to 1.4 have no version attribute: set [partners.registry]"
        ' ech0223_version to the one it sends (this file is valid as 1.4, 1.3 or 1.0: e.g.'
        ' ech0223_version = "1.4") (at /personEventMessage)',)]
    text = config.read_text()
    assert '\n# ech0223_version = "1.4"\n' in text
    config.write_text(text.replace('\n# ech0223_version = "1.4"\n', '\nech0223_version = "1.4"\n'))
    out = io.StringIO()
    with redirect_stdout(out):
        assert await asyncio.to_thread(main, ["--config", str(config), "messages", "replay", "1"]) == 0
    assert out.getvalue() == "message 1: processed again, now routed\n"


def test_input_with_a_version_attribute_is_taken_as_it_is() -> None:
    data = V15_FULL.read_bytes()
    result = normalise(data, "canton", canton=PartnerVersion("1.0"))
    assert (result.xml, result.version) == (data, "1.5")


def test_partner_versions_come_from_the_configuration(tmp_path: Path) -> None:
    config = write_config(tmp_path, partner='[partners.canton]\ntransport = "stub"\n'
                          'ech0223_version = "1.4"\nunsupported_event = "refuse"\n'
                          '[partners.canton.stub]\n')
    settings = load_config(config, plugin_manager())
    assert partner_ech0223(settings) == {"canton": PartnerVersion("1.4", "refuse")}


async def test_a_1_0_file_is_delivered_as_1_5_and_stored_as_received(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    data = V10_FULL.read_bytes()
    named = re.findall(rb"<eCH-0039:pathFileName>([^<]+)<", data)  # the scans it describes
    scans = {name.decode(): b"%d" % n for n, name in enumerate(named)}
    scans["files/mietvertrag.pdf"] = b"test"  # what its stated SHA-256 hashCode is of
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("message.xml", data)
        for name, scan in scans.items():
            zf.writestr(name, scan)
    async with running(config):
        drop(tmp_path / "in", "old.zip", buf.getvalue())
        await until(lambda: states(tmp_path / "gateway.db",
                                   "SELECT state FROM deliveries") == [("delivered",)])
    [(version,)] = states(tmp_path / "gateway.db", "SELECT version FROM messages")
    [(raw, canonical)] = states(tmp_path / "gateway.db", "SELECT raw, canonical FROM payloads")
    assert (version, raw, canonical) == ("1.5", buf.getvalue(), upgrade(data, "1.0").xml)
    [item] = StubTransport.sent["canton"]
    assert item.payload == canonical
    assert {f"files/{a.name}": a.data for a in item.attachments} == scans
