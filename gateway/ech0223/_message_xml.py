"""XML binding tables of the header, documents and eCH-0223 types (eCH-0039/0058/0223)."""

from __future__ import annotations

from . import codes
from ._binding import E39, E58, E223, XSI, Attr, Item, Layout, strings, tokens
from ._person_xml import (
    BIRTH_ADDON_DATA,
    BIRTH_DATA,
    JOB_DATA,
    MARITAL_DATA,
    MUNICIPALITY,
    NAME_DATA,
    NATIONALITY_DATA,
    PERSON_IDENTIFICATION,
    RELIGION_DATA,
    RESIDENCE_PERMIT_DATA,
    SWISS_ADDRESS,
)
from ._xsd import BOOLEAN, DATE, DATETIME, INTEGER, TEXT, TOKEN
from .document import Document, File, LangText
from .header import Extension, Header, PartialDelivery, Reference, SendingApplication
from .message import (
    BusinessInformation,
    ComesFrom,
    Content,
    EventReport,
    GoesTo,
    Notice,
    ParentalRelation,
    PersonData,
    PersonEventMessage,
    Reason,
    Response,
)

# --- eCH-0039 and eCH-0058 -----------------------------------------------------------------

LANG = Attr(E39 + "lang", "lang", TEXT)
LANG_TEXT = Layout(LangText, attrs=(LANG,), text=TEXT)
FILE = Layout(File, (
    Item(E39 + "pathFileName", "path_file_name"),
    Item(E39 + "mimeType", "mime_type"),
    Item(E39 + "internalSortOrder", "internal_sort_order", INTEGER, "?"),
    Item(E39 + "version", "version", TEXT, "?"),
    Item(E39 + "hashCode", "hash_code", TEXT, "?"),
    Item(E39 + "hashCodeAlgorithm", "hash_code_algorithm", TEXT, "?"),
), attrs=(LANG,))  # fmt: skip
DOCUMENT = Layout(Document, (
    Item(E39 + "uuid", "uuid"),
    Item(E39 + "titles", "titles", LANG_TEXT, inner=E39 + "title"),
    Item(E39 + "status", "status", tokens("documentStatus", codes.DocumentStatus)),
    Item(E39 + "files", "files", FILE, inner=E39 + "file"),
    Item(E39 + "classification", "classification",
         tokens("classification", codes.Classification), "?"),
    Item(E39 + "openToThePublic", "open_to_the_public",
         tokens("openToThePublic", codes.OpenToThePublic), "?"),
    Item(E39 + "hasPrivacyProtection", "has_privacy_protection", BOOLEAN, "?"),
    Item(E39 + "openingDate", "opening_date", DATE, "?"),
    Item(E39 + "owner", "owner", TEXT, "?"),
    Item(E39 + "signer", "signer", TEXT, "?"),
    Item(E39 + "ourRecordReference", "our_record_reference", TEXT, "?"),
    Item(E39 + "comments", "comments", LANG_TEXT, "?", inner=E39 + "comment"),
    Item(E39 + "keywords", "keywords", LANG_TEXT, "?", inner=E39 + "keyword"),
    Item(E39 + "isLeadingDocument", "is_leading_document", BOOLEAN, "?"),
    Item(E39 + "sortOrder", "sort_order", INTEGER, "?"),
    Item(E39 + "documentKind", "document_kind", TEXT, "?"),
    Item(E223 + "originalCreationDate", "original_creation_date", DATETIME),
), attrs=(LANG,))  # fmt: skip
HEADER = Layout(Header, (
    Item(E39 + "senderId", "sender_id"),
    Item(E39 + "originalSenderId", "original_sender_id", TEXT, "?"),
    Item(E39 + "declarationLocalReference", "declaration_local_reference", TEXT, "?"),
    Item(E39 + "recipientId", "recipient_id", TEXT, "*"),
    Item(E39 + "messageId", "message_id"),
    Item(E39 + "referenceMessageId", "reference_message_id", TEXT, "?"),
    Item(E39 + "businessProcessId", "business_process_id", TEXT, "?"),
    Item(E39 + "ourBusinessReferenceId", "our_business_reference_id", TEXT, "?"),
    Item(E39 + "yourBusinessReferenceId", "your_business_reference_id", TEXT, "?"),
    Item(E39 + "uniqueIdBusinessTransaction", "unique_id_business_transaction", TEXT, "?"),
    Item(E39 + "messageType", "message_type"),
    Item(E39 + "subMessageType", "sub_message_type", TEXT, "?"),
    Item(E39 + "sendingApplication", "sending_application", Layout(SendingApplication, (
        Item(E58 + "manufacturer", "manufacturer"),
        Item(E58 + "product", "product"),
        Item(E58 + "productVersion", "product_version"),
    ))),
    Item(E39 + "partialDelivery", "partial_delivery", Layout(PartialDelivery, (
        Item(E58 + "uniqueIdDelivery", "unique_id_delivery"),
        Item(E58 + "totalNumberOfPackages", "total_number_of_packages", INTEGER),
        Item(E58 + "numberOfActualPackage", "number_of_actual_package", INTEGER),
    )), "?"),
    Item(E39 + "subject", "subject", TEXT, "?"),
    Item(E39 + "comment", "comment", TEXT, "?"),
    Item(E39 + "messageDate", "message_date", DATETIME),
    Item(E39 + "initialMessageDate", "initial_message_date", DATETIME, "?"),
    Item(E39 + "eventDate", "event_date", DATE, "?"),
    Item(E39 + "modificationDate", "modification_date", DATE, "?"),
    Item(E39 + "action", "action", strings("action", codes.Action)),
    Item(E39 + "testDeliveryFlag", "test_delivery_flag", BOOLEAN),
    Item(E39 + "responseExpected", "response_expected", BOOLEAN, "?"),
    Item(E39 + "businessCaseClosed", "business_case_closed", BOOLEAN, "?"),
    Item(E39 + "extension", "extension", Layout(Extension, (
        Item(E39 + "reference", "reference", Layout(Reference, (
            Item(E39 + "uuid", "uuid"),
            Item(E39 + "serviceInventoryId", "service_inventory_id", TEXT, "?"),
            Item(E39 + "serviceId", "service_id", TEXT, "?"),
            Item(E39 + "serviceTitle", "service_title", TEXT, "?"),
            Item(E39 + "serviceProvider", "service_provider", TEXT, "?"),
            Item(E39 + "caseId", "case_id", TEXT, "?"),
            Item(E39 + "caseTitle", "case_title", TEXT, "?"),
            Item(E39 + "caseAnnotation", "case_annotation", TEXT, "?"),
        ))),
    )), "?"),
))  # fmt: skip

# --- eCH-0223 ------------------------------------------------------------------------------

PERSON_DATA = Layout(PersonData, (
    Item(E223 + "nameData", "name_data", NAME_DATA),
    Item(E223 + "birthData", "birth_data", BIRTH_DATA),
    Item(E223 + "birthAddonData", "birth_addon_data", BIRTH_ADDON_DATA, "?"),
    Item(E223 + "nationalityData", "nationality_data", NATIONALITY_DATA),
    Item(E223 + "maritalData", "marital_data", MARITAL_DATA),
    Item(E223 + "residencePermitData", "residence_permit_data", RESIDENCE_PERMIT_DATA),
    Item(E223 + "jobData", "job_data", JOB_DATA, "?"),
    Item(E223 + "residenceAddress", "residence_address", SWISS_ADDRESS),
    Item(E223 + "municipality", "municipality", MUNICIPALITY),
    Item(E223 + "parentalRelation", "parental_relation", Layout(ParentalRelation, (
        Item(E223 + "father", "father", PERSON_IDENTIFICATION, "?"),
        Item(E223 + "mother", "mother", PERSON_IDENTIFICATION, "?"),
    )), "?"),
    Item(E223 + "religionData", "religion_data", RELIGION_DATA),
    Item(E223 + "comesFrom", "comes_from", Layout(ComesFrom, (
        Item(E223 + "municipalityName", "municipality_name", TOKEN),
        Item(E223 + "arrivalDate", "arrival_date", DATE),
        Item(E223 + "reportingDate", "reporting_date", DATE, "?"),
        Item(E223 + "countryNameShort", "country_name_short"),
        Item(E223 + "cantonAbbreviation", "canton_abbreviation", TEXT, "?"),
    )), "?"),
    Item(E223 + "goesTo", "goes_to", Layout(GoesTo, (
        Item(E223 + "municipalityName", "municipality_name", TOKEN),
        Item(E223 + "departureDate", "departure_date", DATE),
        Item(E223 + "countryNameShort", "country_name_short"),
        Item(E223 + "cantonAbbreviation", "canton_abbreviation", TEXT, "?"),
    )), "?"),
))  # fmt: skip
CONTENT = Layout(Content, (
    Item(E223 + "personIdentification", "person_identification", PERSON_IDENTIFICATION),
    Item(E223 + "personEvent", "person_event", strings("personEvent", codes.PersonEvent), "?"),
    Item(E223 + "personData", "person_data", PERSON_DATA, "?"),
    Item(E223 + "document", "document", DOCUMENT, "*"),
    Item(E223 + "businessInformation", "business_information", Layout(BusinessInformation, (
        Item(E223 + "businessComment", "business_comment", TEXT, "?"),
        Item(E223 + "businessKey", "business_key", tokens("businessKey", codes.BusinessKey), "?"),
        Item(E223 + "encashment", "encashment", BOOLEAN, "?"),
        Item(E223 + "deadline", "deadline", DATE, "?"),
    )), "?"),
))  # fmt: skip
RESPONSE = Layout(Response, (
    Item(E223 + "personIdentification", "person_identification", PERSON_IDENTIFICATION),
    Item(E223 + "reason", "reason", Layout(Reason, (
        Item(E223 + "reasonCodeNumber", "reason_code_number", INTEGER),
        Item(E223 + "reasonCodeText", "reason_code_text"),
    )), "+"),
    Item(E223 + "notice", "notice", Layout(Notice, (
        Item(E223 + "noticeText", "notice_text"),
    )), "?"),
))  # fmt: skip
_ROOT_ATTRS = (
    Attr("version", "version", tokens("version", codes.EchVersion), required=True),
    Attr(XSI + "schemaLocation", "schema_location", TEXT),
)
PERSON_EVENT_MESSAGE = Layout(PersonEventMessage, (
    Item(E223 + "header", "header", HEADER),
    Item(E223 + "content", "content", CONTENT),
), _ROOT_ATTRS)  # fmt: skip
EVENT_REPORT = Layout(EventReport, (
    Item(E223 + "header", "header", HEADER),
    Item(E223 + "response", "response", RESPONSE),
), _ROOT_ATTRS)  # fmt: skip
