"""eCH-0020 v3 deliveries as vendors write them, beyond the fixture corpus.

Each delivery here is a corpus file changed the way registry software differs
(optional parts, codes, dates, order of arrival), checked against the official
eCH-0020 XSD before the gateway sees it, then judged by ``rules explain`` as the
daemon would, with the person state the files before it tell.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from gateway.cli import main
from gateway.config import write_initial_config
from tests.flow import FIXTURES
from tests.official import official_xsd

CORPUS = Path(__file__).parent / "fixtures" / "ech0020"
NS = {"e20": "http://www.ech.ch/xmlns/eCH-0020/3", "e58": "http://www.ech.ch/xmlns/eCH-0058/5",
      "e44": "http://www.ech.ch/xmlns/eCH-0044/4", "e11": "http://www.ech.ch/xmlns/eCH-0011/8",
      "e223": "http://www.ech.ch/xmlns/eCH-0223/1"}
#: Valon Berisha of baseDelivery.xml: Kosovar, permit B 0202 valid till 2027-05-31.
BERISHA = "7565108772783"


@pytest.fixture(autouse=True)
def _no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECH_GATEWAY_CONFIG", raising=False)


def variant(tmp_path: Path, fixture: str, name: str, edit: Callable[[etree._Element], None],
            event_date: str | None = None, xsd: str = "eCH-0020-3-0.xsd") -> Path:
    """``fixture`` of the corpus (or the eCH-0223 conformance set) changed by ``edit``, with a
    fresh messageId and, if given, another event date; valid against the official XSD."""
    source = CORPUS / fixture if (CORPUS / fixture).is_file() else FIXTURES / fixture
    root = etree.parse(str(source)).getroot()
    header = root.find("e20:deliveryHeader", NS)
    if header is not None:
        header.find("e58:messageId", NS).text = str(uuid.uuid4())
        if event_date is not None:
            header.find("e58:eventDate", NS).text = event_date
            header.find("e58:messageDate", NS).text = f"{event_date}T09:00:00+01:00"
    edit(root)
    schema = official_xsd(xsd)
    assert schema.validate(root), schema.error_log.last_error
    path = tmp_path / name
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def explain(capsys: pytest.CaptureFixture[str], tmp_path: Path, *files: Path) -> dict[str, list[str]]:
    """``rules explain`` of ``files`` on a fresh gateway: each file's lines by its name."""
    config = tmp_path / "gw" / "gateway.toml"
    if not config.exists():
        write_initial_config(config.parent)
    main(["--config", str(config), "rules", "explain", *map(str, files)])
    out = capsys.readouterr().out
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        if not line.startswith((" ", "(")):
            name = line.partition(":")[0]
            found[name] = []
        if found:
            found[name].append(line)
    return found


def only_berisha(nationality_status: str) -> Callable[[etree._Element], None]:
    """The base delivery with Berisha alone, his nationalityStatus set and no country."""
    def edit(root: etree._Element) -> None:
        base = root.find("e20:baseDelivery", NS)
        for messages in base.findall("e20:messages", NS)[1:]:
            base.remove(messages)
        data = base.find(".//e20:nationalityData", NS)
        data.find("e11:nationalityStatus", NS).text = nationality_status
        data.remove(data.find("e11:countryInfo", NS))
    return edit


@pytest.mark.parametrize(("status", "nationality"), [("0", "unknown"), ("1", "stateless")])
def test_the_nationality_status_is_read_as_ech0011_codes_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, status: str, nationality: str) -> None:
    """eCH-0011 ``nationalityStatus``: 0 unknown, 1 stateless (2 known). 0 read as stateless
    and 1 as unknown, so rules on ``nationality`` matched the other persons."""
    base = variant(tmp_path, "baseDelivery.xml", "base.xml", only_berisha(status))
    explained = explain(capsys, tmp_path, base, CORPUS / "moveOut.xml")
    facts = next(line for line in explained["moveOut.xml"] if line.startswith("  facts: "))
    assert f" nationality={nationality}," in facts


def test_an_ech0223_message_naming_no_known_nationality_is_the_registrys_choice(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """eCH-0223 from the registry with nationalityStatus 0 (unknown) goes to the canton by
    the rule for messages that name no nationality; it was taken for stateless and dropped."""
    def unknown(root: etree._Element) -> None:
        data = root.find(".//e223:nationalityData", NS)
        data.find("e11:nationalityStatus", NS).text = "0"
        for info in data.findall("e11:countryInfo", NS):
            data.remove(info)
    message = variant(tmp_path, "valid-pem-full-persondata.xml", "unknown.xml", unknown,
                      xsd="eCH-0223-1-5.xsd")
    lines = explain(capsys, tmp_path, message)["unknown.xml"]
    assert "  decided by rules[2] registry-ech0223: the registry wrote eCH-0223 itself and it names" \
           " no nationality: the registry's choice stands" in lines
