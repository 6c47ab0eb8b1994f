"""Person data: eCH-0044 identification, eCH-0011 person data, eCH-0021 add-ons."""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from ._base import EchModel, at_most_one, exactly_one
from .codes import (
    KindOfEmployment,
    MaritalStatus,
    NationalityStatus,
    PartnershipAbolition,
    ResidencePermit,
    SeparationKind,
    Sex,
    UidCategory,
    Unknown,
)
from .place import AddressInformation, Country, SwissMunicipality

_TZ = r"(Z|[+-]\d\d:\d\d)?"

# --- eCH-0044 v4 ---------------------------------------------------------------------------


class NamedPersonId(EchModel):
    """eCH-0044 ``namedPersonIdType``: an ID with the category of its issuer."""

    person_id_category: str
    person_id: str


class DatePartiallyKnown(EchModel):
    """eCH-0044 ``datePartiallyKnownType``: exactly one of a full date, year-month, year.

    ``year_month`` (xs:gYearMonth) and ``year`` (xs:gYear) have no Python type and are
    kept as their lexical strings.
    """

    year_month_day: date | None = None
    year_month: str | None = Field(default=None, pattern=rf"^\s*\d{{4}}-\d\d{_TZ}\s*$")
    year: str | None = Field(default=None, pattern=rf"^\s*\d{{4}}{_TZ}\s*$")

    @model_validator(mode="after")
    def _choice(self) -> DatePartiallyKnown:
        exactly_one(self, "datePartiallyKnown", "year_month_day", "year_month", "year")
        return self


class PersonIdentificationLight(EchModel):
    """eCH-0044 ``personIdentificationLightType``; ``vn`` is the 13-digit AHV number."""

    vn: int | None = Field(default=None, ge=7560000000001, le=7569999999999)
    local_person_id: NamedPersonId | None = None
    other_person_id: list[NamedPersonId] = Field(default_factory=list)
    official_name: str
    first_name: str
    original_name: str | None = None
    sex: Sex | None = None
    date_of_birth: DatePartiallyKnown | None = None


# --- eCH-0011 v8 ---------------------------------------------------------------------------


class ForeignerName(EchModel):
    """eCH-0011 ``foreignerNameType``."""

    name: str | None = None
    first_name: str | None = None


class NameData(EchModel):
    """eCH-0011 ``nameDataType``; at most one of the two foreign-name alternatives."""

    official_name: str
    first_name: str
    original_name: str | None = None
    alliance_name: str | None = None
    alias_name: str | None = None
    other_name: str | None = None
    call_name: str | None = None
    name_on_foreign_passport: ForeignerName | None = None
    declared_foreign_name: ForeignerName | None = None

    @model_validator(mode="after")
    def _choice(self) -> NameData:
        at_most_one(self, "nameData", "name_on_foreign_passport", "declared_foreign_name")
        return self


class ForeignCountry(EchModel):
    """The ``foreignCountry`` alternative of eCH-0011 ``generalPlaceType``."""

    country: Country
    town: str | None = None


class GeneralPlace(EchModel):
    """eCH-0011 ``generalPlaceType``: exactly one of unknown, Swiss town, foreign country."""

    unknown: Unknown | None = None
    swiss_town: SwissMunicipality | None = None
    foreign_country: ForeignCountry | None = None

    @model_validator(mode="after")
    def _choice(self) -> GeneralPlace:
        exactly_one(self, "generalPlace", "unknown", "swiss_town", "foreign_country")
        return self


class BirthData(EchModel):
    """eCH-0011 ``birthDataType``."""

    date_of_birth: DatePartiallyKnown
    place_of_birth: GeneralPlace
    sex: Sex


class CountryInfo(EchModel):
    """One ``countryInfo`` of eCH-0011 ``nationalityDataType``."""

    country: Country
    nationality_valid_from: date | None = None


class NationalityData(EchModel):
    """eCH-0011 ``nationalityDataType``."""

    nationality_status: NationalityStatus
    country_info: list[CountryInfo] = Field(default_factory=list)


class SeparationData(EchModel):
    """eCH-0011 ``separationDataType``."""

    separation: SeparationKind | None = None
    separation_valid_from: date | None = None
    separation_valid_till: date | None = None


class MaritalData(EchModel):
    """eCH-0011 ``maritalDataType``."""

    marital_status: MaritalStatus
    date_of_marital_status: date | None = None
    cancelation_reason: PartnershipAbolition | None = None
    official_proof_of_marital_status_yes_no: bool | None = None
    separation_data: SeparationData | None = None


class ResidencePermitData(EchModel):
    """eCH-0011 ``residencePermitDataType``; ``residence_permit`` None is ``xsi:nil``."""

    residence_permit: ResidencePermit | None
    residence_permit_valid_from: date | None = None
    residence_permit_valid_till: date | None = None
    entry_date: date | None = None


class ReligionData(EchModel):
    """eCH-0011 ``religionDataType``; ``religion`` is a 3 to 6 digit code."""

    religion: str = Field(pattern=r"^\d{3,6}$")
    religion_valid_from: date | None = None


# --- eCH-0021 v7 ---------------------------------------------------------------------------


class NameOfParent(EchModel):
    """eCH-0021 ``nameOfParentType``: first and official name, or only one of them."""

    first_name: str | None = None
    official_name: str | None = None
    first_name_only: str | None = None
    official_name_only: str | None = None
    official_proof_of_name_of_parents_yes_no: bool | None = None

    @model_validator(mode="after")
    def _choice(self) -> NameOfParent:
        both = (self.first_name is None) == (self.official_name is None)
        if not both:
            raise ValueError("nameOfParent needs first_name and official_name together")
        exactly_one(self, "nameOfParent", "first_name", "first_name_only", "official_name_only")
        return self


class BirthAddonData(EchModel):
    """eCH-0021 ``birthAddonDataType``."""

    name_of_father: NameOfParent | None = None
    name_of_mother: NameOfParent | None = None


class UidStructure(EchModel):
    """eCH-0021 ``uidStructureType`` (the company UID, e.g. CHE-123.456.789)."""

    uid_organisation_id_categorie: UidCategory
    uid_organisation_id: int = Field(ge=1, le=999_999_999)


class OccupationData(EchModel):
    """eCH-0021 ``occupationDataType``; ``uid`` is the ``UID`` element."""

    uid: UidStructure | None = None
    employer: str | None = None
    place_of_work: AddressInformation | None = None
    place_of_employer: AddressInformation | None = None
    occupation_valid_from: date | None = None
    occupation_valid_till: date | None = None


class JobData(EchModel):
    """eCH-0021 ``jobDataType``."""

    kind_of_employment: KindOfEmployment
    job_title: str | None = None
    occupation_data: list[OccupationData] = Field(default_factory=list)
