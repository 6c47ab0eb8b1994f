"""Places: eCH-0007 municipality, eCH-0008 country, eCH-0010 addresses."""

from __future__ import annotations

from pydantic import model_validator

from ._base import EchModel, at_most_one, requires
from .codes import Canton


class SwissMunicipality(EchModel):
    """eCH-0007 v5 ``swissMunicipalityType``; ``municipality_id`` is the BFS number."""

    municipality_id: int | None = None
    municipality_name: str
    canton_abbreviation: Canton | None = None
    history_municipality_id: int | None = None


class Country(EchModel):
    """eCH-0008 v3 ``countryType``; ``country_id`` is the BFS country number (8100 = CH)."""

    country_id: int | None = None
    country_id_iso2: str | None = None
    country_name_short: str


class SwissAddressInformation(EchModel):
    """eCH-0010 v5 ``swissAddressInformationType`` (a Swiss postal address)."""

    address_line1: str | None = None
    address_line2: str | None = None
    street: str | None = None
    house_number: str | None = None
    dwelling_number: str | None = None
    locality: str | None = None
    town: str
    swiss_zip_code: int
    swiss_zip_code_add_on: str | None = None
    swiss_zip_code_id: int | None = None
    country: str

    @model_validator(mode="after")
    def _groups(self) -> SwissAddressInformation:
        requires(self, "address", "street", "house_number", "dwelling_number")
        return self


class AddressInformation(EchModel):
    """eCH-0010 v5 ``addressInformationType``: Swiss or foreign postal address.

    The schema's groups are flattened: ``house_number``/``dwelling_number`` need
    ``street``, ``post_office_box_number`` needs ``post_office_box_text``, the Swiss zip
    code add-ons need ``swiss_zip_code``, which excludes ``foreign_zip_code``.
    """

    address_line1: str | None = None
    address_line2: str | None = None
    street: str | None = None
    house_number: str | None = None
    dwelling_number: str | None = None
    post_office_box_number: int | None = None
    post_office_box_text: str | None = None
    locality: str | None = None
    town: str
    swiss_zip_code: int | None = None
    swiss_zip_code_add_on: str | None = None
    swiss_zip_code_id: int | None = None
    foreign_zip_code: str | None = None
    country: str

    @model_validator(mode="after")
    def _groups(self) -> AddressInformation:
        requires(self, "address", "street", "house_number", "dwelling_number")
        requires(self, "address", "post_office_box_text", "post_office_box_number")
        requires(self, "address", "swiss_zip_code", "swiss_zip_code_add_on", "swiss_zip_code_id")
        at_most_one(self, "address", "swiss_zip_code", "foreign_zip_code")
        return self
