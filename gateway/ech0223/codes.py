"""Code lists of eCH-0223 1.5 and the schemas it uses, spelled exactly as in the XSDs."""

from __future__ import annotations

from typing import Literal, TypeAlias

#: Versions the model reads and writes. 1.0, 1.3 and 1.4 (no ``version`` attribute) are
#: converted to and from 1.5 as XML by :mod:`gateway.ech0223.versions`.
EchVersion: TypeAlias = Literal["1.5"]

#: eCH-0223 1.5 ``personEventType``; the odd spellings (``undoSeperation``,
#: ``deletedinRegister``, ...) are the official ones.
PersonEvent: TypeAlias = Literal[
    "moveOut", "changeNationality", "undoSwiss", "naturalizeForeigner", "changeResidenceType",
    "birth", "changeName", "undoPartnership", "partnership", "divorce", "death", "marriage",
    "undoSeperation", "separation", "move", "undoMarriage", "undoMissing", "missing",
    "maritalStatusPartner", "deletedinRegister", "moveIn", "correctParentalrelationship",
    "correctReporting", "correctName", "correctNationality", "correctOccupation",
    "correctMaritalInfo", "correctBirthInfo", "correctDeathData", "correctPersonAddionalData",
    "prolongationB", "prolongationC", "prolongationL", "conversionBtoC", "laggardOfFamily",
    "duplicateOfPermit", "othercaseOfMigration", "declarationOfCommitment",
]  # fmt: skip

#: eCH-0223 ``businessKeyType`` (xs:token).
BusinessKey: TypeAlias = Literal[
    "-", "BRB", "IntV", "zk_BRB", "Verfügung", "allg_K", "Rückfragen", "Adacta_AG",
    "Adacta_BRB", "Info_an_EWA", "Inkasso",
]  # fmt: skip

#: eCH-0058 v4 ``actionType`` (xs:string).
Action: TypeAlias = Literal["1", "3", "4", "5", "6", "8", "9", "10", "12"]

#: eCH-0044 ``sexType``: 1 male, 2 female, 3 unknown.
Sex: TypeAlias = Literal["1", "2", "3"]

#: eCH-0011 ``maritalStatusType``: 1 single, 2 married, 3 widowed, 4 divorced, 5 unmarried
#: (marriage undone), 6 registered partnership, 7 partnership dissolved, 9 unknown.
MaritalStatus: TypeAlias = Literal["1", "2", "3", "4", "5", "6", "7", "9"]

#: eCH-0011 ``partnershipAbolitionType``.
PartnershipAbolition: TypeAlias = Literal["1", "2", "3", "4", "9"]

#: eCH-0011 ``separationType``.
SeparationKind: TypeAlias = Literal["1", "2"]

#: eCH-0011 ``nationalityStatusType``: 0 unknown, 1 stateless, 2 known nationality.
NationalityStatus: TypeAlias = Literal["0", "1", "2"]

#: eCH-0006 v2 ``residencePermitType`` (leading zeros are significant).
ResidencePermit: TypeAlias = Literal[
    "01", "0102", "02", "0201", "0202", "03", "0301", "0302", "04", "0401", "0402", "05",
    "0503", "06", "0601", "0602", "060101", "060201", "060102", "060202", "07", "0701",
    "0702", "070101", "070201", "070102", "070202", "070103", "070104", "070204", "070105",
    "070205", "070206", "070907", "08", "0804", "09", "0905", "10", "1006", "100601",
    "100602", "100603", "11", "1107", "12", "1208", "1300",
]  # fmt: skip

#: eCH-0007 v5 ``cantonAbbreviationType`` (xs:token).
Canton: TypeAlias = Literal[
    "ZH", "BE", "LU", "UR", "SZ", "OW", "NW", "GL", "ZG", "FR", "SO", "BS", "BL", "SH", "AR",
    "AI", "SG", "GR", "AG", "TG", "TI", "VD", "VS", "NE", "GE", "JU",
]  # fmt: skip

#: eCH-0021 ``kindOfEmployment``.
KindOfEmployment: TypeAlias = Literal["0", "1", "2", "3", "4"]

#: eCH-0021 ``uidOrganisationIdCategorieType``.
UidCategory: TypeAlias = Literal["CHE", "ADM"]

#: eCH-0011 ``unknownType`` (xs:token): the only value of ``placeOfBirth/unknown``.
Unknown: TypeAlias = Literal["0"]

#: eCH-0039 ``documentStatusType`` (xs:token).
DocumentStatus: TypeAlias = Literal[
    "undefined", "created", "in_process", "signed", "approved", "sent", "canceled",
    "invalidated", "archived", "preserved",
]  # fmt: skip

#: eCH-0039 ``classificationType`` (xs:token).
Classification: TypeAlias = Literal["unclassified", "confidential", "secret", "in_house"]

#: eCH-0039 ``openToThePublicType`` (xs:token).
OpenToThePublic: TypeAlias = Literal["undefined", "public", "not_public"]
