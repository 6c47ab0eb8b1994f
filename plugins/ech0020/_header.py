"""The eCH-0223 header (eCH-0039 v3 / eCH-0058 v4) made from an eCH-0020 ``deliveryHeader`` (eCH-0058 v5).

See the package docstring for what is taken over and why.
"""

from __future__ import annotations

import uuid
from typing import get_args

from gateway.api import InputRejected, ech0223

from ._parts import model
from ._xml import Element, children, date_of, datetime_of, missing, text, where

#: Namespace of the eCH-0223 ids: ``uuid5(ID_NAMESPACE, "<senderId> <messageId>")``.
ID_NAMESPACE = uuid.UUID("0a5e6c1e-8f1d-5c55-9b5e-ec4002000223")
#: ``messageType`` of the eCH-0223 header, as the gateway's own eCH-0223 samples write it.
MESSAGE_TYPE = "http://www.ech.ch/xmlns/eCH-0223/1"
#: eCH-0058 v4 actions (v5 has the same codes).
_ACTIONS = frozenset(get_args(ech0223.Header.model_fields["action"].annotation))
#: eCH-0058 ``businessReferenceIdType`` is at most 50 characters.
_REFERENCE_MAX = 50


def derived_id(sender_id: str, message_id: str) -> str:
    """The eCH-0223 ``messageId`` of what ``message_id`` of ``sender_id`` becomes: the same every time."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{sender_id} {message_id}"))


def header(el: Element) -> ech0223.Header:
    """The eCH-0223 header for the eCH-0020 delivery with header ``el``.

    :raises InputRejected: a required header field is missing or malformed.
    """
    kids = children(el)
    for name in ("senderId", "messageId", "sendingApplication", "messageDate", "action",
                 "testDeliveryFlag"):
        if name not in kids:
            raise missing(el, name)
    sender, message_id = text(kids["senderId"]), text(kids["messageId"])
    action = text(kids["action"])
    if action not in _ACTIONS:
        raise InputRejected(f"unknown eCH-0058 action {action[:10]!r}", where(kids["action"]))
    app = children(kids["sendingApplication"])
    for name in ("manufacturer", "product", "productVersion"):
        if name not in app:
            raise missing(kids["sendingApplication"], name)
    reference = kids.get("referenceMessageId")
    process = kids.get("businessProcessId")
    flag = text(kids["testDeliveryFlag"])
    if flag not in ("true", "false", "1", "0"):
        raise InputRejected("testDeliveryFlag is not a boolean", where(kids["testDeliveryFlag"]))
    return model(
        ech0223.Header, el,
        sender_id=sender,
        message_id=derived_id(sender, message_id),
        reference_message_id=derived_id(sender, text(reference)) if reference is not None else None,
        business_process_id=text(process) if process is not None else None,
        our_business_reference_id=message_id if len(message_id) <= _REFERENCE_MAX else None,
        message_type=MESSAGE_TYPE,
        sending_application=ech0223.SendingApplication(
            manufacturer=text(app["manufacturer"]), product=text(app["product"]),
            product_version=text(app["productVersion"])),
        message_date=datetime_of(kids["messageDate"]),
        event_date=date_of(kids["eventDate"]) if "eventDate" in kids else None,
        action=action,
        test_delivery_flag=flag in ("true", "1"),
    )
