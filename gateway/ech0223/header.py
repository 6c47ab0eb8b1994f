"""The message header: eCH-0039 v3 ``headerType`` (the eCH-0058 v4 header)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from ._base import EchModel
from .codes import Action


class SendingApplication(EchModel):
    """eCH-0058 ``sendingApplicationType``."""

    manufacturer: str
    product: str
    product_version: str


class PartialDelivery(EchModel):
    """eCH-0058 ``partialDeliveryType``: this message is one package of several."""

    unique_id_delivery: str
    total_number_of_packages: int
    number_of_actual_package: int


class Reference(EchModel):
    """eCH-0039 ``referenceType``: the service and business case a message belongs to."""

    uuid: str
    service_inventory_id: str | None = None
    service_id: str | None = None
    service_title: str | None = None
    service_provider: str | None = None
    case_id: str | None = None
    case_title: str | None = None
    case_annotation: str | None = None


class Extension(EchModel):
    """eCH-0039 ``extensionType``."""

    reference: Reference


class Header(EchModel):
    """eCH-0039 v3 ``headerType``: eCH-0058 v4 without ``attachment``, typed ``extension``."""

    sender_id: str
    original_sender_id: str | None = None
    declaration_local_reference: str | None = None
    recipient_id: list[str] = Field(default_factory=list)
    message_id: str
    reference_message_id: str | None = None
    business_process_id: str | None = None
    our_business_reference_id: str | None = None
    your_business_reference_id: str | None = None
    unique_id_business_transaction: str | None = None
    message_type: str
    sub_message_type: str | None = None
    sending_application: SendingApplication
    partial_delivery: PartialDelivery | None = None
    subject: str | None = None
    comment: str | None = None
    message_date: datetime
    initial_message_date: datetime | None = None
    event_date: date | None = None
    modification_date: date | None = None
    action: Action
    test_delivery_flag: bool
    response_expected: bool | None = None
    business_case_closed: bool | None = None
    extension: Extension | None = None
