"""eCH-0223 model: lossless round trips, valid samples, clear rejections."""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pydantic import ValidationError

from gateway.ech0223 import (
    NS,
    AddressInformation,
    DatePartiallyKnown,
    EventReport,
    GeneralPlace,
    NamedPersonId,
    NameOfParent,
    PersonEventMessage,
    read_message,
    reader,
    sample_event_report,
    sample_person_event,
    write_message,
)
from gateway.ech0223._base import EchModel, remembered
from gateway.ech0223._message_xml import PERSON_EVENT_MESSAGE
from gateway.ech0223._xsd import parse_date, parse_integer
from gateway.ech0223.samples import PERSON_EVENTS
from gateway.errors import InputRejected

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas" / "official"
M, H, S, P, D = (
    f'xmlns:{p}="http://www.ech.ch/xmlns/eCH-{n}"'
    for p, n in (("m", "0223/1"), ("h", "0039/3"), ("s", "0058/4"), ("p", "0044/4"), ("d", "0011/8"))
)
A, AD, MU, C = (
    f'xmlns:{p}="http://www.ech.ch/xmlns/eCH-{n}"'
    for p, n in (("a", "0021/7"), ("ad", "0010/5"), ("mu", "0007/5"), ("c", "0008/3"))
)
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
HEADER = """<m:header><h:senderId>1-2511-1</h:senderId><h:messageId>m-1</h:messageId>
<h:messageType>http://www.ech.ch/xmlns/eCH-0223/1</h:messageType><h:sendingApplication>
<s:manufacturer>X</s:manufacturer><s:product>Y</s:product><s:productVersion>1</s:productVersion>
</h:sendingApplication><h:messageDate>2024-03-01T10:00:00Z</h:messageDate><h:action>1</h:action>
<h:testDeliveryFlag>true</h:testDeliveryFlag></m:header>"""
PERSON = "<p:officialName>Núñez</p:officialName><p:firstName>José</p:firstName>"
MINIMAL = f"""<m:personEventMessage {M} {H} {S} {P} version="1.5">{HEADER}
<m:content><m:personIdentification>{PERSON}</m:personIdentification></m:content>
</m:personEventMessage>"""

# Every lexical oddity the schema allows and Python types would lose: booleans as 0/1,
# nanoseconds and offsets, 24:00, dates with zones, signs and leading zeros, blanks in
# tokens, xsi:nil="1", xsi:schemaLocation, CDATA, character references, comments and PIs.
ODD = f"""<?xml version="1.0" encoding="UTF-8"?><!-- comment -->
<m:personEventMessage {M} {H} {S} {P} {D} {A} {AD} {MU} {C} {XSI}
 xsi:schemaLocation="http://www.ech.ch/xmlns/eCH-0223/1 eCH-0223-1-5.xsd" version=" 1.5 ">
<m:header><h:senderId>1-2511-1</h:senderId><h:recipientId>2-ZH-1</h:recipientId>
<h:recipientId>2-BE-1</h:recipientId><h:messageId>msg-0001</h:messageId>
<h:messageType>http://www.ech.ch/xmlns/eCH-0223/1</h:messageType><h:sendingApplication>
<s:manufacturer>Hersteller AG</s:manufacturer><s:product>Einwohner</s:product>
<s:productVersion>7.1</s:productVersion></h:sendingApplication><h:partialDelivery>
<s:uniqueIdDelivery>D-1</s:uniqueIdDelivery><s:totalNumberOfPackages>02</s:totalNumberOfPackages>
<s:numberOfActualPackage>+1</s:numberOfActualPackage></h:partialDelivery>
<h:messageDate>2024-03-01T10:00:00.123456789-05:00</h:messageDate>
<h:initialMessageDate>2024-02-29T24:00:00Z</h:initialMessageDate>
<h:eventDate>2024-03-01Z</h:eventDate><h:modificationDate>2024-03-02+01:00</h:modificationDate>
<h:action>10</h:action><h:testDeliveryFlag>1</h:testDeliveryFlag>
<h:responseExpected>0</h:responseExpected><h:businessCaseClosed> false </h:businessCaseClosed>
<h:extension><h:reference><h:uuid>0b1c</h:uuid><h:caseId>K-7</h:caseId></h:reference>
</h:extension></m:header>
<m:content><m:personIdentification><p:vn>07561234567897</p:vn><p:otherPersonId>
<p:personIdCategory>CH.ZEMIS</p:personIdCategory><p:personId>12345678.9</p:personId>
</p:otherPersonId><p:officialName>Núñez &amp; Söhne</p:officialName>
<p:firstName><![CDATA[José]]></p:firstName><p:originalName>Ga&#x308;rcia</p:originalName>
<p:dateOfBirth><p:yearMonth>1980-05+02:00</p:yearMonth></p:dateOfBirth>
</m:personIdentification><m:personEvent>undoSeperation</m:personEvent><m:personData>
<m:nameData><d:officialName>Núñez</d:officialName><d:firstName>José</d:firstName>
<d:declaredForeignName><d:name>NUNEZ</d:name></d:declaredForeignName></m:nameData>
<m:birthData><d:dateOfBirth><p:year>1980Z</p:year></d:dateOfBirth>
<d:placeOfBirth><d:unknown> 0 </d:unknown></d:placeOfBirth><d:sex>1</d:sex></m:birthData>
<m:birthAddonData><a:nameOfFather><a:officialNameOnly>Núñez</a:officialNameOnly></a:nameOfFather>
<a:nameOfMother><a:firstName>Ana</a:firstName><a:officialName>Peña</a:officialName>
<a:officialProofOfNameOfParentsYesNo>1</a:officialProofOfNameOfParentsYesNo></a:nameOfMother>
</m:birthAddonData><m:nationalityData><d:nationalityStatus>2</d:nationalityStatus>
<d:countryInfo><d:country><c:countryId>08236</c:countryId>
<c:countryNameShort>Spanien</c:countryNameShort></d:country>
<d:nationalityValidFrom>0999-01-01</d:nationalityValidFrom></d:countryInfo></m:nationalityData>
<m:maritalData><d:maritalStatus>2</d:maritalStatus>
<d:dateOfMaritalStatus>2001-06-30-12:00</d:dateOfMaritalStatus>
<d:officialProofOfMaritalStatusYesNo>0</d:officialProofOfMaritalStatusYesNo>
<d:separationData><d:separation>2</d:separation></d:separationData></m:maritalData>
<m:residencePermitData><d:residencePermit xsi:nil="1"/><d:entryDate>2019-12-31</d:entryDate>
</m:residencePermitData><m:jobData><a:kindOfEmployment>3</a:kindOfEmployment>
<a:occupationData><a:UID><a:uidOrganisationIdCategorie>CHE</a:uidOrganisationIdCategorie>
<a:uidOrganisationId>1234567</a:uidOrganisationId></a:UID><a:placeOfWork>
<ad:postOfficeBoxNumber>0042</ad:postOfficeBoxNumber><ad:postOfficeBoxText>Postfach</ad:postOfficeBoxText>
<ad:town>Lyon</ad:town><ad:foreignZipCode>69001</ad:foreignZipCode><ad:country>FR</ad:country>
</a:placeOfWork></a:occupationData></m:jobData><m:residenceAddress>
<ad:street>Bahnhofstrasse</ad:street><ad:town>Zürich</ad:town>
<ad:swissZipCode>+8004</ad:swissZipCode><ad:swissZipCodeId>007</ad:swissZipCodeId>
<ad:country>CH</ad:country></m:residenceAddress><m:municipality>
<mu:municipalityId>0261</mu:municipalityId><mu:municipalityName>Zürich</mu:municipalityName>
<mu:cantonAbbreviation>
 ZH </mu:cantonAbbreviation><mu:historyMunicipalityId>-0</mu:historyMunicipalityId>
</m:municipality><m:religionData><d:religion>000111</d:religion></m:religionData>
<m:goesTo><m:municipalityName>Bern</m:municipalityName><m:departureDate>2024-02-29</m:departureDate>
<m:countryNameShort>  Schweiz  </m:countryNameShort></m:goesTo></m:personData><?pi data?>
<m:document h:lang="de"><h:uuid>doc-1</h:uuid><h:titles><h:title h:lang="de">Mietvertrag</h:title>
<h:title h:lang="fr">Bail</h:title></h:titles><h:status> signed </h:status><h:files><h:file>
<h:pathFileName>files/a.pdf</h:pathFileName><h:mimeType>application/pdf</h:mimeType>
<h:internalSortOrder>0010</h:internalSortOrder></h:file></h:files>
<h:hasPrivacyProtection>1</h:hasPrivacyProtection><h:comments><h:comment>erste</h:comment>
<h:comment h:lang="it">seconda</h:comment></h:comments><h:sortOrder>+3</h:sortOrder>
<m:originalCreationDate>2023-12-31T23:59:59.5</m:originalCreationDate></m:document>
<m:businessInformation><m:businessComment>  Zeile 1
Zeile 2  </m:businessComment><m:businessKey> Rückfragen </m:businessKey>
<m:encashment>0</m:encashment><m:deadline>2024-04-01+14:00</m:deadline></m:businessInformation>
</m:content></m:personEventMessage>""".encode()


class _LocalSchemas(etree.Resolver):
    """Resolve the official schemaLocation URLs to the files of the same name."""

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:
        local = SCHEMAS / system_url.rsplit("/", 1)[-1]
        if not local.is_file():
            return None
        return self.resolve_string(local.read_bytes(), context, base_url=str(local))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    if not (SCHEMAS / "eCH-0223-1-5.xsd").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"official XSDs missing at {SCHEMAS}")
        pytest.skip(f"official XSDs not found at {SCHEMAS} (shared/ is not beside the repo)")
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "eCH-0223-1-5.xsd"), parser))


def assert_equivalent(a: etree._Element, b: etree._Element) -> None:
    """Same elements, attributes, order and leaf texts; comments and PIs ignored."""
    assert (a.tag, sorted(a.items())) == (b.tag, sorted(b.items()))
    kids_a, kids_b = list(a.iterchildren(etree.Element)), list(b.iterchildren(etree.Element))
    assert [k.tag for k in kids_a] == [k.tag for k in kids_b], a.tag
    if not kids_a:
        assert (a.text or "") == (b.text or ""), a.tag
    for x, y in zip(kids_a, kids_b, strict=True):
        assert_equivalent(x, y)


def round_trip(data: bytes) -> PersonEventMessage | EventReport:
    message = read_message(data)
    written = write_message(message)
    assert_equivalent(etree.fromstring(data), etree.fromstring(written))
    assert read_message(written) == message
    assert write_message(read_message(written)) == written
    return message


def samples(count: int = 300) -> list[PersonEventMessage | EventReport]:
    made: list[PersonEventMessage | EventReport] = []
    for seed in range(count):
        rng = random.Random(seed)
        message = sample_person_event(rng, full=seed % 5 != 0)
        made += [message, sample_event_report(rng, reference_message_id=message.header.message_id)]
    return made


def test_samples_round_trip_losslessly() -> None:
    for message in samples():
        written = write_message(message)
        assert read_message(written) == message
        round_trip(written)


def test_samples_are_valid(schema: etree.XMLSchema) -> None:
    for message in samples():
        schema.assertValid(etree.fromstring(write_message(message)))
    for event in PERSON_EVENTS:
        for seed in range(3):
            message = sample_person_event(random.Random(seed), event=event)
            schema.assertValid(etree.fromstring(write_message(message)))


def test_a_permit_starting_on_29_february_ends_on_28_february(schema: etree.XMLSchema) -> None:
    message = sample_person_event(random.Random(1303))  # a one-year permit from 2024-02-29
    permit = message.content.person_data.residence_permit_data
    assert permit.residence_permit_valid_from == date(2024, 2, 29)
    assert permit.residence_permit_valid_till == date(2025, 2, 28)
    schema.assertValid(etree.fromstring(write_message(message)))


def test_samples_are_deterministic_and_realistic() -> None:
    assert write_message(sample_person_event(random.Random(7))) == write_message(
        sample_person_event(random.Random(7))
    )
    events, permits = set(), set()
    for seed in range(300):
        message = sample_person_event(random.Random(seed))
        content = message.content
        events.add(content.person_event)
        vn = content.person_identification.vn
        if vn is not None:
            digits = [int(d) for d in str(vn)]
            assert len(digits) == 13 and str(vn).startswith("756")
            assert (sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12])) + digits[12]) % 10 == 0
        assert content.person_data is not None
        countries = [i.country.country_id for i in content.person_data.nationality_data.country_info]
        assert any(c != 8100 for c in countries)
        permit = content.person_data.residence_permit_data.residence_permit
        permits.add(permit[:2] if permit else None)
        assert content.person_data.municipality.municipality_id
    assert len(events) > 30 and {"02", "03", "05", "07", None} <= permits
    with pytest.raises(ValueError, match="personEvent"):
        sample_person_event(random.Random(1), event="changeOccupation")


def test_unusual_lexical_forms_survive() -> None:
    message = round_trip(ODD)
    assert isinstance(message, PersonEventMessage)
    header, data = message.header, message.content.person_data
    assert header.message_date == datetime(2024, 3, 1, 10, 0, 0, 123456, timezone(timedelta(hours=-5)))
    assert header.initial_message_date == datetime(2024, 3, 1, tzinfo=UTC)
    assert header.test_delivery_flag is True and header.business_case_closed is False
    assert message.content.person_identification.vn == 7561234567897
    assert data is not None and data.municipality.municipality_id == 261
    assert data.municipality.canton_abbreviation == "ZH"
    assert data.residence_permit_data.residence_permit is None
    assert message.version == "1.5" and message.schema_location is not None
    assert read_message(etree.fromstring(ODD)) == message  # a tree with comments and PIs


def test_written_unusual_document_is_valid(schema: etree.XMLSchema) -> None:
    schema.assertValid(etree.fromstring(ODD))
    schema.assertValid(etree.fromstring(write_message(read_message(ODD))))


def test_changed_values_are_written_canonically() -> None:
    message = read_message(ODD)
    assert isinstance(message, PersonEventMessage)
    message.header.test_delivery_flag = False
    message.header.event_date = date(2024, 3, 1)  # equal value: the original text stays
    assert message.content.person_data is not None
    message.content.person_data.municipality.municipality_id = 230
    written = write_message(message).decode()
    assert "<eCH-0039:testDeliveryFlag>false<" in written
    assert "<eCH-0039:eventDate>2024-03-01Z<" in written
    assert "<eCH-0007:municipalityId>230<" in written
    assert "<eCH-0039:responseExpected>0<" in written
    assert read_message(written.encode()) == message


def test_a_model_remembers_only_the_texts_it_was_read_with() -> None:
    message = read_message(ODD)
    assert isinstance(message, PersonEventMessage)
    assert remembered(message.header)["test_delivery_flag"] == (True, "1")
    assert remembered(message.header.model_copy()) == {}  # a copy is not read from XML
    assert remembered(NamedPersonId(person_id_category="CH.ZAR", person_id="1")) == {}


def test_python_values_are_written_canonically() -> None:
    message = read_message(MINIMAL.encode())
    message.header.message_date = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    message.header.response_expected = True
    written = write_message(message)
    assert written.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b">2024-05-01T08:30:00Z<" in written and b"responseExpected>true<" in written
    assert round_trip(written) == message


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<personEventMessage version='1.5'/>", "not an eCH-0223 message"),
        (MINIMAL.replace("eCH-0223/1", "eCH-0020/3", 1).encode(), "not an eCH-0223 message"),
        (MINIMAL.replace("personEventMessage", "delivery").encode(), "not an eCH-0223 message"),
        (MINIMAL.replace(' version="1.5"', "").encode(), "1.0 to 1.4"),
        (MINIMAL.replace('"1.5"', '"1.4"').encode(), "unsupported eCH-0223 version"),
        (MINIMAL.replace("<h:action>1</h:action>", "").encode(), "missing element action"),
        (MINIMAL.replace("<h:action>1</h:action>", "<h:action>7</h:action>").encode(), "action"),
        (MINIMAL.replace("true</h:test", "yes</h:test").encode(), "xs:boolean"),
        (MINIMAL.replace("10:00:00Z", "10:00Z").encode(), "xs:dateTime"),
        (
            MINIMAL.replace("<p:firstName>", "<p:sex>1</p:sex><p:firstName>").encode(),
            "element .*eCH-0044/4}firstName out of schema order",
        ),
        (
            MINIMAL.replace("</p:firstName>", "</p:firstName><p:nickName/>").encode(),
            "unexpected element .*eCH-0044/4}nickName",
        ),
        (MINIMAL.replace("<h:action>", "<h:action h:lang='de'>").encode(), "unexpected attribute"),
        (b"<m:personEventMessage", "not well-formed"),
    ],
)
def test_bad_documents_are_rejected_clearly(document: bytes, reason: str) -> None:
    with pytest.raises(InputRejected, match=reason) as caught:
        read_message(document)
    assert caught.value.where


def test_choices_are_enforced() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        DatePartiallyKnown(year_month_day=date(2000, 1, 1), year="2000")
    with pytest.raises(ValidationError, match="exactly one"):
        GeneralPlace()
    with pytest.raises(ValidationError, match="together"):
        NameOfParent(first_name="Ana")
    with pytest.raises(ValidationError, match="only one"):
        AddressInformation(town="X", swiss_zip_code=8000, foreign_zip_code="1", country="CH")
    with pytest.raises(ValidationError, match="without street"):
        AddressInformation(town="X", house_number="1", country="CH")
    message = read_message(ODD)
    assert isinstance(message, PersonEventMessage)
    day_only = message.content.document[0].model_copy(update={"original_creation_date": date(2024, 1, 1)})
    content = message.content.model_copy(update={"document": [day_only]})
    with pytest.raises(ValidationError, match="originalCreationDate as a datetime"):
        PersonEventMessage(header=message.header, content=content)
    assert NS.ECH_0223 == "http://www.ech.ch/xmlns/eCH-0223/1"


@pytest.mark.parametrize("text", ["2024-02-29", " 2024-02-29 ", "2024-02-29+01:00"])
def test_dates_are_read_in_every_form_the_schema_allows(text: str) -> None:
    assert parse_date(text) == date(2024, 2, 29)


@pytest.mark.parametrize("text", ["2024-02-30", "2024-W09-4", "20240229", "2024-02-2x", "2024-2-029"])
def test_what_is_no_xs_date_is_refused_even_where_python_would_read_it(text: str) -> None:
    with pytest.raises(ValueError, match="not a supported xs:date"):
        parse_date(text)


@pytest.mark.parametrize(("text", "value"), [("12", 12), ("0012", 12), ("+12", 12), (" -3 ", -3)])
def test_integers_are_read_with_sign_blanks_and_leading_zeros(text: str, value: int) -> None:
    assert parse_integer(text) == value


@pytest.mark.parametrize("text", ["", "1.0", "²", "1 2"])
def test_what_is_no_xs_integer_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an xs:integer"):
        parse_integer(text)


def test_a_remembered_text_is_written_escaped() -> None:
    event_date = "<h:eventDate>&#13;2024-03-01</h:eventDate>"
    document = MINIMAL.replace("</h:messageDate>", f"</h:messageDate>{event_date}")
    message = read_message(document.encode())
    assert message.header.event_date == date(2024, 3, 1)
    written = write_message(message)
    assert b"<eCH-0039:eventDate>&#13;2024-03-01</eCH-0039:eventDate>" in written
    assert read_message(written) == message


def _memories(model: EchModel) -> list[tuple[str, object]]:
    """Each model within ``model`` with the texts it remembers, depth first."""
    found: list[tuple[str, object]] = [(type(model).__name__, dict(remembered(model)))]
    for value in model.__dict__.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, EchModel):
                found += _memories(item)
    return found


def test_the_compiled_readers_read_what_the_table_walk_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [write_message(m) for m in samples(40) if isinstance(m, PersonEventMessage)]
    odd = etree.fromstring(ODD)
    for node in odd.iter(etree.Comment, etree.ProcessingInstruction):  # else the walk reads it all
        node.getparent().remove(node)
    roots = [etree.fromstring(d) for d in documents] + [odd]
    compiled = [reader._read(root, PERSON_EVENT_MESSAGE) for root in roots]
    monkeypatch.setattr(reader, "_read", reader._read_generic)  # nested elements too
    walked = [reader._read(root, PERSON_EVENT_MESSAGE) for root in roots]
    assert compiled == walked
    assert [_memories(m) for m in compiled] == [_memories(m) for m in walked]
    assert any(texts for _, texts in _memories(compiled[-1]))


def test_a_token_is_read_as_its_collapsed_value_and_a_string_as_it_is() -> None:
    """Names, towns and ids derive from xs:token: blanks around them and runs of them are no
    part of the value (they were, and reached the person state). xs:string keeps its blanks
    (businessComment here; goesTo's countryNameShort in ODD), and a no-break space is no blank."""
    indented = MINIMAL.replace("<p:officialName>Núñez</p:officialName>",
                               "<p:officialName>\n\t\tNúñez \t\n  Peña\n\t</p:officialName>") \
                      .replace("<p:firstName>José</p:firstName>",
                               "<p:firstName> José\u00a0Maria </p:firstName>") \
                      .replace("</m:personIdentification>", "</m:personIdentification>"
                               "<m:businessInformation><m:businessComment>  Zeile 1\n  Zeile 2 "
                               "</m:businessComment></m:businessInformation>")
    message = read_message(indented.encode())
    assert isinstance(message, PersonEventMessage)
    ident = message.content.person_identification
    assert (ident.official_name, ident.first_name) == ("Núñez Peña", "José\u00a0Maria")
    business = message.content.business_information
    assert business is not None and business.business_comment == "  Zeile 1\n  Zeile 2 "
    written = write_message(message).decode()
    assert "officialName>Núñez Peña</" in written and "businessComment>  Zeile 1\n  Zeile 2 <" in written
