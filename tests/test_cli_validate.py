"""``ech-gateway validate`` on registry input: the real eCH-0020 corpus, exports, other XML.

eCH-0223 and eCH-0090 files are covered in tests/test_cli.py and tests/test_validation.py;
here are the files a commune's registry writes, judged as the daemon would process them.
"""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.testing import running
from tests.flow import FIXTURES, drop, states, until

CORPUS = Path(__file__).parent / "fixtures" / "ech0020"


@pytest.fixture(autouse=True)
def _no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No gateway.toml where validate would look for one, unless a test gives --config."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECH_GATEWAY_CONFIG", raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert not err, err
    return code, out


def _verdicts(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith(" ")]


def test_an_ech0020_delivery_is_said_to_become_a_valid_ech0223_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The base delivery first tells the person's state; the move then completes from it."""
    base, move = CORPUS / "baseDelivery.xml", CORPUS / "move.xml"
    code, out = cli(capsys, "validate", str(base), str(move))
    assert code == 0, out
    assert _verdicts(out) == [
        f"{base}: eCH-0020 baseDelivery: taken, sends nothing: baseDelivery seeds the person"
        " state and sends nothing",
        f"{move}: eCH-0020 move: valid: becomes eCH-0223 1.5 personEventMessage (move),"
        " messageId 12426e55-90b3-51b4-ab8f-27438ef94f97"]
    assert "unexpected root element" not in out


def test_an_identification_only_event_without_a_state_says_what_it_needs(
        capsys: pytest.CaptureFixture[str]) -> None:
    move = CORPUS / "move.xml"
    code, out = cli(capsys, "validate", str(move))
    assert code == 1
    verdict, hint = out.splitlines()
    assert verdict.startswith(f"{move}: eCH-0020 move: REJECTED: move of a person the gateway"
                              " has no state of")
    assert verdict.endswith("(at /delivery/move/movePerson)")
    assert hint.startswith("  hint: no state of this person is known here (no configuration"
                           " found: only the files before it on the command line tell one)")
    assert f"`ech-gateway validate baseDelivery.xml {move}`" in hint


def test_an_event_without_counterpart_is_taken_and_sends_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "validate", str(CORPUS / "changeSex.xml"))
    assert code == 0
    assert out.endswith(": eCH-0020 changeSex: taken, sends nothing: eCH-0020 event changeSex"
                        " has no eCH-0223 counterpart\n")


@pytest.mark.parametrize(("name", "field"), [
    ("malformed.xml", "malformed XML at line 28"),
    ("missing-required.xml", "/delivery/changeResidencePermit/residencePermitData)"),
    ("permit-nil.xml", "/delivery/changeResidencePermit/residencePermitData/residencePermit)"),
    ("unknown-event.xml", "unknown event element changeSecondaryResidence"),
    ("vn-check-digit.xml", "VN 756.****.****.93 has a wrong check digit"),
])
def test_a_bad_delivery_is_rejected_naming_the_field(
        capsys: pytest.CaptureFixture[str], name: str, field: str) -> None:
    bad = CORPUS / "bad" / name
    code, out = cli(capsys, "validate", str(CORPUS / "baseDelivery.xml"), str(bad))
    assert code == 1
    [verdict] = [line for line in _verdicts(out) if line.startswith(str(bad))]
    assert "REJECTED: " in verdict and field in verdict, verdict


def test_the_partner_version_is_made_and_validated_too(
        capsys: pytest.CaptureFixture[str]) -> None:
    """eCH-0223 1.0 lacks othercaseOfMigration: the conversion's warning is shown."""
    fixed = CORPUS / "correctResidencePermit.xml"
    code, out = cli(capsys, "validate", "--ech0223-version", "1.0",
                    str(CORPUS / "baseDelivery.xml"), str(fixed))
    assert code == 0, out
    assert f"{fixed}: eCH-0020 correctResidencePermit: valid: becomes eCH-0223 1.5 and 1.0" \
           " personEventMessage (othercaseOfMigration)" in out
    assert out.splitlines()[-1] == (
        "  warning: eCH-0223 1.0: personEvent othercaseOfMigration is not in eCH-0223 1.0, so the"
        " message has no personEvent; the businessComment says so")  # not "(nor is ...)" again


def test_an_export_is_pointed_to_map_test(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "nova.json"
    export.write_text('[{"vn": "756.1234.5678.97"}]')
    rows = tmp_path / "nova.csv"
    rows.write_text("vn;name\n756.1234.5678.97;Muster\n")
    code, out = cli(capsys, "validate", str(export), str(rows))
    assert code == 1
    assert out.splitlines() == [
        f"{export}: NOT CHECKED: a JSON document: a JSON or CSV export is read by a folder"
        f" source's mapping; see what it makes of each row with `ech-gateway map-test --source"
        f" NAME {export}`",
        f"{rows}: NOT CHECKED: not XML (CSV?): a JSON or CSV export is read by a folder"
        f" source's mapping; see what it makes of each row with `ech-gateway map-test --source"
        f" NAME {rows}`"]


def test_other_xml_names_what_the_gateway_takes(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.xml"
    other.write_text('<list xmlns="urn:example"/>')
    code, out = cli(capsys, "validate", str(other))
    assert code == 1
    assert out.splitlines()[0] == f"{other}: INVALID"
    assert "unexpected root element {urn:example}list" in out
    assert out.splitlines()[-1] == ("  nor is it registry input the gateway takes"
                                    " (formats: csv, eCH-0020, eCH-0223, json)")


def test_ech0223_alone_needs_no_configuration(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The configuration is read at the first registry input only, as before for eCH-0223."""
    broken = tmp_path / "gateway.toml"
    broken.write_text("[gateway\n")
    code, out = cli(capsys, "--config", str(broken), "validate",
                    str(FIXTURES / "valid-pem-minimal.xml"))
    assert (code, out) == (0, f"{FIXTURES / 'valid-pem-minimal.xml'}: valid"
                              " (eCH-0223 1.5 personEventMessage)\n")


def test_the_state_comes_from_the_database_as_the_daemon_would_use_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After the daemon took the base delivery, the move validates alone, as the message the
    daemon makes of it; the base delivery again is said to be a duplicate."""
    config = write_initial_config(tmp_path)
    db = tmp_path / "gateway.db"
    code, out = cli(capsys, "--config", str(config), "validate", str(CORPUS / "move.xml"))
    assert code == 1
    assert f"(no database at {db})" in out

    async def run() -> None:
        async with running(config):
            drop(tmp_path / "registry" / "outbox", "baseDelivery.xml",
                 (CORPUS / "baseDelivery.xml").read_bytes())
            await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])
            drop(tmp_path / "registry" / "outbox", "move.xml", (CORPUS / "move.xml").read_bytes())
            await until(lambda: ("routed",) in states(db, "SELECT state FROM messages"))

    asyncio.run(run())
    [(made,)] = states(db, "SELECT message_id FROM messages WHERE ref = 'move.xml'")
    code, out = cli(capsys, "--config", str(config), "validate", str(CORPUS / "death.xml"),
                    str(CORPUS / "baseDelivery.xml"))
    assert code == 0, out
    assert ": eCH-0020 death: valid: becomes eCH-0223 1.5 personEventMessage (death)" in out
    assert ("  note: the database holds these bytes from source registry already (message 1):"
            " the daemon would take the file as a duplicate and go no further") in out
    code, out = cli(capsys, "validate", str(CORPUS / "move.xml"))  # ./gateway.toml
    assert code == 0, out
    assert f"messageId {made}" in out


def test_a_zip_of_an_ech0223_message_is_taken_as_the_daemon_takes_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "message.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("message.xml", (FIXTURES / "valid-pem-minimal.xml").read_bytes())
    code, out = cli(capsys, "validate", str(bundle))
    assert (code, out) == (0, f"{bundle}: eCH-0223: valid: becomes eCH-0223 1.5"
                              " personEventMessage, messageId 3f2c1b7e-8d4a-4c1e-9b5a-0a7d2e6f4c11\n")


def test_an_ech0020_v2_delivery_is_said_to_be_v2_where_the_gateway_judges_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A v2 delivery was "unexpected root element" (validate) or "no normaliser recognised
    this input" (daemon, rules explain): the normaliser now says only v3 is taken, for all."""
    v2 = tmp_path / "move-v2.xml"
    v2.write_bytes((CORPUS / "move.xml").read_bytes()
                   .replace(b"eCH-0020/3", b"eCH-0020/2").replace(b"eCH-0058/5", b"eCH-0058/3")
                   .replace(b'version="3.0"', b'version="2.3"'))
    said = ("eCH-0020 v2 (http://www.ech.ch/xmlns/eCH-0020/2) is not taken: the gateway takes"
            " only eCH-0020 v3 (http://www.ech.ch/xmlns/eCH-0020/3); have the registry write v3"
            " (at /delivery)")
    config = write_initial_config(tmp_path / "gw")
    db = tmp_path / "gw" / "gateway.db"

    async def run() -> None:
        async with running(config):
            drop(tmp_path / "gw" / "registry" / "outbox", v2.name, v2.read_bytes())
            await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])

    asyncio.run(run())
    assert states(db, "SELECT reason FROM messages") == [(said,)]
    assert cli(capsys, "validate", str(v2)) == (1, f"{v2}: REJECTED: {said}\n")
    code, out = cli(capsys, "--config", str(config), "rules", "explain", str(v2))
    assert (code, out) == (1, f"{v2.name}: quarantined: {said}\n")


# -- the size limit ---------------------------------------------------------------------------


def test_the_configured_document_limit_refuses_as_the_daemon_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``[limits] max_document_bytes = "8KiB"``: validate rejects a 13411-byte eCH-0223
    message naming the setting (it checked it against 64 MiB: valid), takes a 1596-byte one
    (exit 1, as for an invalid file); the daemon with the same configuration quarantines
    the large one for the same limit."""
    config = write_initial_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert 'max_document_bytes = "128MiB"' in text
    config.write_text(text.replace('max_document_bytes = "128MiB"', 'max_document_bytes = "8KiB"'),
                      encoding="utf-8")
    full, small = FIXTURES / "valid-pem-full-persondata.xml", FIXTURES / "valid-pem-minimal.xml"
    assert small.stat().st_size <= 8192 < full.stat().st_size == 13411

    code, out = cli(capsys, "--config", str(config), "validate", str(full), str(small))

    assert code == 1
    assert _verdicts(out) == [
        f"{full}: REJECTED: input is 13411 bytes, more than [limits] max_document_bytes (8192)",
        f"{small}: valid (eCH-0223 1.5 personEventMessage)"]

    async def run() -> None:
        async with running(config):
            drop(tmp_path / "registry" / "outbox", full.name, full.read_bytes())
            await until(lambda: states(tmp_path / "gateway.db", "SELECT state FROM messages")
                        == [("quarantined",)])

    asyncio.run(run())
    [(reason,)] = states(tmp_path / "gateway.db", "SELECT reason FROM messages")
    assert reason.startswith("document of 13411 bytes is larger than the limit of 8192 bytes"
                             " ([limits] max_document_bytes)")


def test_without_a_configuration_validate_names_its_own_limit_and_the_setting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No configuration: 64 MiB, as before; the reason says whose limit that is, and the
    file's own size (not the bytes read to find it too large)."""
    big = tmp_path / "big.xml"
    with big.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1000)  # sparse: no 64 MiB written
    code, out = cli(capsys, "validate", str(big))
    assert (code, out) == (1, f"{big}: REJECTED: input is 67109864 bytes, more than validate's"
                              " own limit without a configuration (67108864; with one, its"
                              " [limits] max_document_bytes)\n")
