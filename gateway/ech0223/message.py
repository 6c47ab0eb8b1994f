"""The eCH-0223 types themselves and the two root elements."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator

from ._base import EchModel
from .codes import BusinessKey, EchVersion, PersonEvent
from .document import Document
from .header import Header
from .person import (
    BirthAddonData,
    BirthData,
    JobData,
    MaritalData,
    NameData,
    NationalityData,
    PersonIdentificationLight,
    ReligionData,
    ResidencePermitData,
)
from .place import SwissAddressInformation, SwissMunicipality


class ParentalRelation(EchModel):
    """eCH-0223 ``parentalRelationType``."""

    father: PersonIdentificationLight | None = None
    mother: PersonIdentificationLight | None = None


class ComesFrom(EchModel):
    """eCH-0223 ``comesFromType``; ``reporting_date`` is new in 1.5."""

    municipality_name: str
    arrival_date: date
    reporting_date: date | None = None
    country_name_short: str
    canton_abbreviation: str | None = None


class GoesTo(EchModel):
    """eCH-0223 ``goesToType``."""

    municipality_name: str
    departure_date: date
    country_name_short: str
    canton_abbreviation: str | None = None


class PersonData(EchModel):
    """eCH-0223 ``personDataType``; ``birth_addon_data`` is new in 1.5."""

    name_data: NameData
    birth_data: BirthData
    birth_addon_data: BirthAddonData | None = None
    nationality_data: NationalityData
    marital_data: MaritalData
    residence_permit_data: ResidencePermitData
    job_data: JobData | None = None
    residence_address: SwissAddressInformation
    municipality: SwissMunicipality
    parental_relation: ParentalRelation | None = None
    religion_data: ReligionData
    comes_from: ComesFrom | None = None
    goes_to: GoesTo | None = None


class BusinessInformation(EchModel):
    """eCH-0223 ``businessInformationType``; ``deadline`` is new in 1.5."""

    business_comment: str | None = None
    business_key: BusinessKey | None = None
    encashment: bool | None = None
    deadline: date | None = None


class Content(EchModel):
    """eCH-0223 ``contentType``: the person, the event, its data and documents."""

    person_identification: PersonIdentificationLight
    person_event: PersonEvent | None = None
    person_data: PersonData | None = None
    document: list[Document] = Field(default_factory=list)
    business_information: BusinessInformation | None = None


class PersonEventMessage(EchModel):
    """Root ``personEventMessage``: a delivery from the commune.

    ``schema_location`` keeps the root's ``xsi:schemaLocation`` for a lossless round trip.
    """

    version: EchVersion = "1.5"
    schema_location: str | None = None
    header: Header
    content: Content

    @model_validator(mode="after")
    def _version_rules(self) -> PersonEventMessage:
        for document in self.content.document:
            if not isinstance(document.original_creation_date, datetime):
                raise ValueError(f"eCH-0223 {self.version} needs originalCreationDate as a datetime")
        return self


class Reason(EchModel):
    """eCH-0223 ``reasonCodeType``: one reason for a rejection."""

    reason_code_number: int
    reason_code_text: str


class Notice(EchModel):
    """eCH-0223 ``noticeType``: a free explanation of at most 250 characters."""

    notice_text: str


class Response(EchModel):
    """eCH-0223 ``responseType``: who was rejected and why."""

    person_identification: PersonIdentificationLight
    reason: list[Reason] = Field(min_length=1)
    notice: Notice | None = None


class EventReport(EchModel):
    """Root ``eventReport``: the canton's negative business response.

    ``schema_location`` keeps the root's ``xsi:schemaLocation`` for a lossless round trip.
    """

    version: EchVersion = "1.5"
    schema_location: str | None = None
    header: Header
    response: Response
