"""Typed eCH-0223 model with a lossless lxml reader and writer.

``read_message`` turns a ``personEventMessage`` or ``eventReport`` (version 1.5) into
pydantic models; ``write_message`` turns them back into the same XML, down to the
lexical form of each value. ``sample_person_event`` and ``sample_event_report`` make
valid, varied messages for demos, benchmarks and tests.
"""

from ._xsd import collapse
from .codes import BusinessKey, EchVersion, PersonEvent
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
from .namespaces import NS, NSMAP
from .person import (
    BirthAddonData,
    BirthData,
    CountryInfo,
    DatePartiallyKnown,
    ForeignCountry,
    ForeignerName,
    GeneralPlace,
    JobData,
    MaritalData,
    NameData,
    NamedPersonId,
    NameOfParent,
    NationalityData,
    OccupationData,
    PersonIdentificationLight,
    ReligionData,
    ResidencePermitData,
    SeparationData,
    UidStructure,
)
from .place import AddressInformation, Country, SwissAddressInformation, SwissMunicipality
from .reader import SUPPORTED_VERSIONS, read_message
from .samples import sample_event_report, sample_person_event
from .writer import write_message

__all__ = [
    "NS",
    "NSMAP",
    "SUPPORTED_VERSIONS",
    "AddressInformation",
    "BirthAddonData",
    "BirthData",
    "BusinessInformation",
    "BusinessKey",
    "ComesFrom",
    "Content",
    "Country",
    "CountryInfo",
    "DatePartiallyKnown",
    "Document",
    "EchVersion",
    "EventReport",
    "Extension",
    "File",
    "ForeignCountry",
    "ForeignerName",
    "GeneralPlace",
    "GoesTo",
    "Header",
    "JobData",
    "LangText",
    "MaritalData",
    "NameData",
    "NameOfParent",
    "NamedPersonId",
    "NationalityData",
    "Notice",
    "OccupationData",
    "ParentalRelation",
    "PartialDelivery",
    "PersonData",
    "PersonEvent",
    "PersonEventMessage",
    "PersonIdentificationLight",
    "Reason",
    "Reference",
    "ReligionData",
    "ResidencePermitData",
    "Response",
    "SendingApplication",
    "SeparationData",
    "SwissAddressInformation",
    "SwissMunicipality",
    "UidStructure",
    "collapse",
    "read_message",
    "sample_event_report",
    "sample_person_event",
    "write_message",
]
