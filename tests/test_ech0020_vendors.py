"""eCH-0020 v3 deliveries as vendors write them, beyond the fixture corpus.

Each delivery here is a corpus file changed the way registry software differs
(optional parts, codes, dates, order of arrival), checked against the official
eCH-0020 XSD before the gateway sees it, then judged by ``rules explain`` as the
daemon would, with the person state the files before it tell.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.plugins import get_plugin_manager
from tests.flow import FIXTURES, StubPlugin, StubTransport, running, states, until, write_config
from tests.official import official_xsd
from tests.test_ech0020_flow import DEFAULT_RULES

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


def test_a_stateless_persons_event_goes_to_the_canton_by_default(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A stateless person is a foreigner in Swiss law and holds a permit as any other: the
    migration office's concern. The default rules forwarded foreign nationals only and
    dropped the stateless as "not a foreign national"."""
    base = variant(tmp_path, "baseDelivery.xml", "base.xml", only_berisha("1"))
    lines = explain(capsys, tmp_path, base, CORPUS / "moveOut.xml")["moveOut.xml"]
    assert "  decided by rules[1] foreign-nationals: the person was foreign or stateless before" \
           " the event: the migration office's concern" in lines, lines
    assert "  → canton (eCH-0223 1.5)" in lines


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


def berisha(root: etree._Element) -> None:
    """The event's person is Berisha (VN and local id of the base delivery)."""
    person = root[1][0]
    ident = person.find("e20:personIdentification", NS)
    ident = person if ident is None else ident
    ident.find("e44:vn", NS).text = BERISHA
    ident.find("e44:localPersonId/e44:personId", NS).text = "100101"
    ident.find("e44:officialName", NS).text, ident.find("e44:firstName", NS).text = "Berisha", "Valon"
    other = ident.find("e44:otherPersonId", NS)
    if other is not None:
        ident.remove(other)


def permit_till(till: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        berisha(root)
        data = root.find(".//e20:residencePermitData", NS)
        data.find("e11:residencePermitValidFrom", NS).text = "2025-06-01"
        data.find("e11:residencePermitValidTill", NS).text = till
    return edit


def state_before(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("  person state before: "))


def test_an_event_arriving_after_a_later_one_does_not_undo_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The prolongation of 20 November is known; the one of 10 November arrives after it
    (a delivery held up), and the base delivery of 1 October is sent again. Each only
    fills in what the state lacks: the move of 25 November still has the permit valid
    till 2029, not the older ones (sent to the canton as the person's data)."""
    files = [
        CORPUS / "baseDelivery.xml",
        variant(tmp_path, "changeResidencePermit-prolongationB.xml", "later.xml",
                permit_till("2029-05-31"), "2026-11-20"),
        variant(tmp_path, "changeResidencePermit-prolongationB.xml", "earlier.xml",
                permit_till("2028-05-31"), "2026-11-10"),
        variant(tmp_path, "move.xml", "move-1.xml", berisha, "2026-11-21"),
        variant(tmp_path, "baseDelivery.xml", "base-again.xml", lambda root: None),
        variant(tmp_path, "move.xml", "move-2.xml", berisha, "2026-11-25"),
    ]
    explained = explain(capsys, tmp_path, *files)
    assert "permit_valid_till=2027-05-31," in state_before(explained["later.xml"])
    for name in ("move-1.xml", "move-2.xml"):
        assert "permit_valid_till=2029-05-31," in state_before(explained[name]), name


def test_a_correction_dated_back_still_corrects_the_state(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A correctResidencePermit whose eventDate is the date of the fact it corrects, before
    the state's: the corrected permit stands for the events after it."""
    def corrected(root: etree._Element) -> None:
        permit_till("2027-06-30")(root)
    files = [
        CORPUS / "baseDelivery.xml",
        variant(tmp_path, "move.xml", "move-1.xml", berisha, "2026-11-20"),
        variant(tmp_path, "correctResidencePermit.xml", "correction.xml", corrected, "2025-06-01"),
        variant(tmp_path, "move.xml", "move-2.xml", berisha, "2026-11-25"),
    ]
    explained = explain(capsys, tmp_path, *files)
    assert "permit_valid_till=2027-06-30," in state_before(explained["move-2.xml"])


@pytest.mark.parametrize("fixture", ["changeResidencePermit-prolongationB.xml",
                                     "correctResidencePermit.xml"])
def test_a_permit_event_of_a_person_not_seeded_goes_to_the_canton(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, fixture: str) -> None:
    """A permit event goes out without personData for a person the gateway has no state of
    (the change of permit is itself what the office needs), but the default rule dropped it:
    'not a foreign national (unknown)'. Who holds a residence permit is no Swiss."""
    lines = explain(capsys, tmp_path, CORPUS / fixture)[fixture]
    assert "  person state before: none" in lines
    assert "  decided by rules[1] foreign-nationals: the person was foreign or stateless before the" \
           " event: the migration office's concern" in lines
    assert "  → canton (eCH-0223 1.5)" in lines


def test_a_new_permit_code_of_the_same_category_is_no_duplicate(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """B for EU/EFTA nationals (0201) becomes B for others (0202), valid as before: a change
    of permit the canton must see as such, not a re-issued card (``duplicateOfPermit``)."""
    def eu_permit(root: etree._Element) -> None:
        data = root.find(".//e20:residencePermitData", NS)
        data.find("e11:residencePermit", NS).text = "0201"
    def same_validity(root: etree._Element) -> None:
        permit_till("2027-05-31")(root)
        root.find(".//e20:residencePermitData/e11:entryDate", NS).text = "2016-06-01"
    files = [variant(tmp_path, "baseDelivery.xml", "base.xml", eu_permit),
             variant(tmp_path, "changeResidencePermit-prolongationB.xml", "changed.xml", same_validity)]
    facts = next(line for line in explain(capsys, tmp_path, *files)["changed.xml"]
                 if line.startswith("  facts: "))
    assert " event=othercaseOfMigration," in facts


def test_a_local_id_written_with_blanks_around_it_finds_its_person(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Registry software that indents text as well as elements writes ``<personIdCategory>``
    with blanks around ``MU.230``: an ``xs:token``, the same id. A person the registry
    knows by local id alone was not found, and the move was quarantined (no state)."""
    def without_vn(root: etree._Element) -> None:
        ident = root.find(".//e20:personIdentification", NS)
        ident.remove(ident.find("e44:vn", NS))
    def indented(root: etree._Element) -> None:
        berisha(root)
        person = root[1][0]
        person.remove(person.find("e44:vn", NS))
        category = person.find("e44:localPersonId/e44:personIdCategory", NS)
        category.text = f"\n\t\t\t\t{category.text}\n\t\t\t"
    files = [variant(tmp_path, "baseDelivery.xml", "base.xml", without_vn),
             variant(tmp_path, "move.xml", "move.xml", indented)]
    lines = explain(capsys, tmp_path, *files)["move.xml"]
    assert lines[0] == "move.xml: personEventMessage, person local:MU.230:100101"
    assert lines[1].startswith("  person state before: nationality=foreign, ")
    assert "  → canton (eCH-0223 1.5)" in lines


#: Elements of moveIn-abroad.xml whose XSD types derive from xs:token (eCH-0044 names and
#: ids, eCH-0011 names and towns, eCH-0007/0008 names and codes, eCH-0010 address lines,
#: eCH-0021 job data).
TOKENS = {"officialName", "firstName", "name", "town", "countryIdISO2", "countryNameShort",
          "municipalityName", "street", "houseNumber", "personIdCategory", "personId",
          "jobTitle", "employer"}


def indented(root: etree._Element) -> None:
    """Each token-typed text on lines of its own, indented as its element, as some registry
    software writes it; the official name a double name broken over two lines."""
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in TOKENS and len(el) == 0:
            text = "Öztürk\n\t\t\t\t\tKaya" if el.text == "Öztürk" else el.text
            el.text = f"\n\t\t\t\t\t{text}\n\t\t\t\t"


async def test_blanks_around_token_texts_are_no_part_of_the_values(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Names, towns, streets and codes are xs:token: the value is the text collapsed. They
    were kept with the vendor's line breaks and tabs, in the person state (which showed
    them so) and in what went to the canton."""
    config = write_config(tmp_path, extra=DEFAULT_RULES)
    config.write_text(config.read_text().replace('route_to = ["canton"]\n', ""))
    move_in = variant(tmp_path, "moveIn-abroad.xml", "moveIn.xml", indented)
    pm = get_plugin_manager()
    pm.register(StubPlugin(), name="stub")
    async with running(config, pm):
        (tmp_path / "in" / "moveIn.xml").write_bytes(move_in.read_bytes())
        db = tmp_path / "gateway.db"
        await until(lambda: states(db, "SELECT state FROM messages") == [("routed",)])
        await until(lambda: len(StubTransport.sent.get("canton", [])) == 1)
    sent = etree.fromstring(StubTransport.sent["canton"][0].payload)
    leaves = [el for el in sent.iter() if isinstance(el.tag, str) and len(el) == 0]
    assert [(etree.QName(el).localname, el.text) for el in leaves
            if el.text != " ".join((el.text or "").split())] == []
    assert sent.findtext(".//e223:content/e223:personIdentification/e44:officialName",
                         namespaces=NS) == "Öztürk Kaya"
    site = write_initial_config(tmp_path / "site")  # the CLI on that database
    site.write_text(site.read_text().replace('path = "gateway.db"', f'path = "{db}"'))
    assert main(["--config", str(site), "persons", "show", "7563686861295", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)["state"]
    assert state["identification"]["official_name"] == "Öztürk Kaya"
    assert state["name_data"]["official_name"] == "Öztürk Kaya"
    assert state["name_data"]["name_on_foreign_passport"] == {"name": "OZTURK", "first_name": "EMRE"}
    assert state["birth_data"]["place_of_birth"]["foreign_country"]["town"] == "İstanbul"
    assert state["residence_address"]["street"] == "Wülflingerstrasse"
    assert state["municipality"]["municipality_name"] == "Winterthur"
    assert state["identification"]["local_person_id"] == {"person_id_category": "MU.230",
                                                         "person_id": "100201"}
