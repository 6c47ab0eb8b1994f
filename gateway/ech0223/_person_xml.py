"""XML binding tables of the person and place types (eCH-0007/0008/0010/0044/0011/0021)."""

from __future__ import annotations

from . import codes
from ._binding import E07, E08, E10, E11, E21, E44, Item, Layout, strings, tokens
from ._xsd import BOOLEAN, DATE, INTEGER, TEXT, TOKEN, UID_NUMBER
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

SEX = strings("sex", codes.Sex)
CANTON = tokens("cantonAbbreviation", codes.Canton)

# --- eCH-0007, eCH-0008, eCH-0010 ----------------------------------------------------------

MUNICIPALITY = Layout(SwissMunicipality, (
    Item(E07 + "municipalityId", "municipality_id", INTEGER, "?"),
    Item(E07 + "municipalityName", "municipality_name", TOKEN),
    Item(E07 + "cantonAbbreviation", "canton_abbreviation", CANTON, "?"),
    Item(E07 + "historyMunicipalityId", "history_municipality_id", INTEGER, "?"),
))  # fmt: skip
COUNTRY = Layout(Country, (
    Item(E08 + "countryId", "country_id", INTEGER, "?"),
    Item(E08 + "countryIdISO2", "country_id_iso2", TOKEN, "?"),
    Item(E08 + "countryNameShort", "country_name_short", TOKEN),
))  # fmt: skip
_STREET = (
    Item(E10 + "addressLine1", "address_line1", TOKEN, "?"),
    Item(E10 + "addressLine2", "address_line2", TOKEN, "?"),
    Item(E10 + "street", "street", TOKEN, "?"),
    Item(E10 + "houseNumber", "house_number", TOKEN, "?"),
    Item(E10 + "dwellingNumber", "dwelling_number", TOKEN, "?"),
)
SWISS_ADDRESS = Layout(SwissAddressInformation, (
    *_STREET,
    Item(E10 + "locality", "locality", TOKEN, "?"),
    Item(E10 + "town", "town", TOKEN),
    Item(E10 + "swissZipCode", "swiss_zip_code", INTEGER),
    Item(E10 + "swissZipCodeAddOn", "swiss_zip_code_add_on", TEXT, "?"),
    Item(E10 + "swissZipCodeId", "swiss_zip_code_id", INTEGER, "?"),
    Item(E10 + "country", "country", TOKEN),
))  # fmt: skip
ADDRESS = Layout(AddressInformation, (
    *_STREET,
    Item(E10 + "postOfficeBoxNumber", "post_office_box_number", INTEGER, "?"),
    Item(E10 + "postOfficeBoxText", "post_office_box_text", TOKEN, "?"),
    Item(E10 + "locality", "locality", TOKEN, "?"),
    Item(E10 + "town", "town", TOKEN),
    Item(E10 + "swissZipCode", "swiss_zip_code", INTEGER, "?"),
    Item(E10 + "swissZipCodeAddOn", "swiss_zip_code_add_on", TEXT, "?"),
    Item(E10 + "swissZipCodeId", "swiss_zip_code_id", INTEGER, "?"),
    Item(E10 + "foreignZipCode", "foreign_zip_code", TOKEN, "?"),
    Item(E10 + "country", "country", TOKEN),
))  # fmt: skip

# --- eCH-0044 ------------------------------------------------------------------------------

NAMED_PERSON_ID = Layout(NamedPersonId, (
    Item(E44 + "personIdCategory", "person_id_category", TOKEN),
    Item(E44 + "personId", "person_id", TOKEN),
))  # fmt: skip
DATE_PARTIALLY_KNOWN = Layout(DatePartiallyKnown, (
    Item(E44 + "yearMonthDay", "year_month_day", DATE, "?"),
    Item(E44 + "yearMonth", "year_month", TEXT, "?"),
    Item(E44 + "year", "year", TEXT, "?"),
))  # fmt: skip
PERSON_IDENTIFICATION = Layout(PersonIdentificationLight, (
    Item(E44 + "vn", "vn", INTEGER, "?"),
    Item(E44 + "localPersonId", "local_person_id", NAMED_PERSON_ID, "?"),
    Item(E44 + "otherPersonId", "other_person_id", NAMED_PERSON_ID, "*"),
    Item(E44 + "officialName", "official_name", TOKEN),
    Item(E44 + "firstName", "first_name", TOKEN),
    Item(E44 + "originalName", "original_name", TOKEN, "?"),
    Item(E44 + "sex", "sex", SEX, "?"),
    Item(E44 + "dateOfBirth", "date_of_birth", DATE_PARTIALLY_KNOWN, "?"),
))  # fmt: skip

# --- eCH-0011 ------------------------------------------------------------------------------

FOREIGNER_NAME = Layout(ForeignerName, (
    Item(E11 + "name", "name", TOKEN, "?"),
    Item(E11 + "firstName", "first_name", TOKEN, "?"),
))  # fmt: skip
NAME_DATA = Layout(NameData, (
    Item(E11 + "officialName", "official_name", TOKEN),
    Item(E11 + "firstName", "first_name", TOKEN),
    Item(E11 + "originalName", "original_name", TOKEN, "?"),
    Item(E11 + "allianceName", "alliance_name", TOKEN, "?"),
    Item(E11 + "aliasName", "alias_name", TOKEN, "?"),
    Item(E11 + "otherName", "other_name", TOKEN, "?"),
    Item(E11 + "callName", "call_name", TOKEN, "?"),
    Item(E11 + "nameOnForeignPassport", "name_on_foreign_passport", FOREIGNER_NAME, "?"),
    Item(E11 + "declaredForeignName", "declared_foreign_name", FOREIGNER_NAME, "?"),
))  # fmt: skip
FOREIGN_COUNTRY = Layout(ForeignCountry, (
    Item(E11 + "country", "country", COUNTRY),
    Item(E11 + "town", "town", TOKEN, "?"),
))  # fmt: skip
GENERAL_PLACE = Layout(GeneralPlace, (
    Item(E11 + "unknown", "unknown", tokens("unknown", codes.Unknown), "?"),
    Item(E11 + "swissTown", "swiss_town", MUNICIPALITY, "?"),
    Item(E11 + "foreignCountry", "foreign_country", FOREIGN_COUNTRY, "?"),
))  # fmt: skip
BIRTH_DATA = Layout(BirthData, (
    Item(E11 + "dateOfBirth", "date_of_birth", DATE_PARTIALLY_KNOWN),
    Item(E11 + "placeOfBirth", "place_of_birth", GENERAL_PLACE),
    Item(E11 + "sex", "sex", SEX),
))  # fmt: skip
NATIONALITY_DATA = Layout(NationalityData, (
    Item(E11 + "nationalityStatus", "nationality_status",
         strings("nationalityStatus", codes.NationalityStatus)),
    Item(E11 + "countryInfo", "country_info", Layout(CountryInfo, (
        Item(E11 + "country", "country", COUNTRY),
        Item(E11 + "nationalityValidFrom", "nationality_valid_from", DATE, "?"),
    )), "*"),
))  # fmt: skip
MARITAL_DATA = Layout(MaritalData, (
    Item(E11 + "maritalStatus", "marital_status", strings("maritalStatus", codes.MaritalStatus)),
    Item(E11 + "dateOfMaritalStatus", "date_of_marital_status", DATE, "?"),
    Item(E11 + "cancelationReason", "cancelation_reason",
         strings("partnershipAbolition", codes.PartnershipAbolition), "?"),
    Item(E11 + "officialProofOfMaritalStatusYesNo", "official_proof_of_marital_status_yes_no",
         BOOLEAN, "?"),
    Item(E11 + "separationData", "separation_data", Layout(SeparationData, (
        Item(E11 + "separation", "separation", strings("separation", codes.SeparationKind), "?"),
        Item(E11 + "separationValidFrom", "separation_valid_from", DATE, "?"),
        Item(E11 + "separationValidTill", "separation_valid_till", DATE, "?"),
    )), "?"),
))  # fmt: skip
RESIDENCE_PERMIT_DATA = Layout(ResidencePermitData, (
    Item(E11 + "residencePermit", "residence_permit",
         strings("residencePermit", codes.ResidencePermit), nillable=True),
    Item(E11 + "residencePermitValidFrom", "residence_permit_valid_from", DATE, "?"),
    Item(E11 + "residencePermitValidTill", "residence_permit_valid_till", DATE, "?"),
    Item(E11 + "entryDate", "entry_date", DATE, "?"),
))  # fmt: skip
RELIGION_DATA = Layout(ReligionData, (
    Item(E11 + "religion", "religion"),
    Item(E11 + "religionValidFrom", "religion_valid_from", DATE, "?"),
))  # fmt: skip

# --- eCH-0021 ------------------------------------------------------------------------------

NAME_OF_PARENT = Layout(NameOfParent, (
    Item(E21 + "firstName", "first_name", TOKEN, "?"),
    Item(E21 + "officialName", "official_name", TOKEN, "?"),
    Item(E21 + "firstNameOnly", "first_name_only", TOKEN, "?"),
    Item(E21 + "officialNameOnly", "official_name_only", TOKEN, "?"),
    Item(E21 + "officialProofOfNameOfParentsYesNo", "official_proof_of_name_of_parents_yes_no",
         BOOLEAN, "?"),
))  # fmt: skip
BIRTH_ADDON_DATA = Layout(BirthAddonData, (
    Item(E21 + "nameOfFather", "name_of_father", NAME_OF_PARENT, "?"),
    Item(E21 + "nameOfMother", "name_of_mother", NAME_OF_PARENT, "?"),
))  # fmt: skip
OCCUPATION_DATA = Layout(OccupationData, (
    Item(E21 + "UID", "uid", Layout(UidStructure, (
        Item(E21 + "uidOrganisationIdCategorie", "uid_organisation_id_categorie",
             strings("uidOrganisationIdCategorie", codes.UidCategory)),
        Item(E21 + "uidOrganisationId", "uid_organisation_id", UID_NUMBER),
    )), "?"),
    Item(E21 + "employer", "employer", TOKEN, "?"),
    Item(E21 + "placeOfWork", "place_of_work", ADDRESS, "?"),
    Item(E21 + "placeOfEmployer", "place_of_employer", ADDRESS, "?"),
    Item(E21 + "occupationValidFrom", "occupation_valid_from", DATE, "?"),
    Item(E21 + "occupationValidTill", "occupation_valid_till", DATE, "?"),
))  # fmt: skip
JOB_DATA = Layout(JobData, (
    Item(E21 + "kindOfEmployment", "kind_of_employment",
         strings("kindOfEmployment", codes.KindOfEmployment)),
    Item(E21 + "jobTitle", "job_title", TOKEN, "?"),
    Item(E21 + "occupationData", "occupation_data", OCCUPATION_DATA, "*"),
))  # fmt: skip
