"""A ``baseDelivery`` read a person at a time: a town's register without its whole tree.

A registry's first delivery states every resident it keeps in one document
(about 4.6 KB a person: 90 MB for 20,000). Its tree took lxml more memory than
the persons read from it, so a delivery that says ``baseDelivery`` near its
start is parsed as a stream (:class:`~gateway.api.StreamedDocument`): each
``messages`` element of the ``baseDelivery`` is read as it ends and then
dropped from the tree. What is left (the root, the header, the emptied event)
goes through the same checks as a document parsed whole, before any person
read is used, so every input gets the outcome and the reason it got before.
"""

from __future__ import annotations

from datetime import date

from gateway.api import DOCUMENT_LIMIT, InputRejected, PersonState, StreamedDocument

from . import _state
from ._events import EventData, read_event
from ._xml import E20, Element, date_of, local

#: Near the start of a delivery (before the persons): the event is a base delivery.
MARKER = b"baseDelivery"


class BaseRead:
    """The persons of the first ``baseDelivery`` of an eCH-0020 ``delivery``, read as its
    ``messages`` came (each with its ``baseDeliveryValidFrom``, if it has one), or the first
    rejection reading them gave."""

    def __init__(self) -> None:
        #: the ``baseDelivery`` element the persons come from
        self.event: Element | None = None
        self.taken: list[tuple[EventData, date | None]] = []
        self.error: InputRejected | None = None

    def take(self, message: Element) -> None:
        """Read the person of ``message`` (a ``messages`` element two below the root)."""
        event = message.getparent()
        if self.error is not None or event is None or local(event) != "baseDelivery":
            return
        root = event.getparent()
        if root is None or root.tag != f"{E20}delivery":
            return
        if self.event is None:
            self.event = event
        elif event is not self.event:
            return  # a second event: the delivery is refused for it
        try:
            self.taken.append(_read(message))
        except InputRejected as exc:
            self.error = exc


def _read(message: Element) -> tuple[EventData, date | None]:
    """The event of one ``messages`` element and its ``baseDeliveryValidFrom``, if any."""
    ev = read_event(message, "baseDelivery")
    valid = next((child for child in message if local(child) == "baseDeliveryValidFrom"), None)
    return ev, date_of(valid) if valid is not None else None


def streamed(data: bytes, max_bytes: int) -> tuple[Element, BaseRead]:
    """The root of ``data`` without its base delivery's ``messages``, and their persons.

    :raises InputRejected: what ``parse_untrusted`` refuses, with its reason.
    """
    read = BaseRead()
    document = StreamedDocument(data, max_bytes=max_bytes, depth=2, name="messages",
                                keep_blank_text=False, setting=DOCUMENT_LIMIT)
    for message in document:
        read.take(message)
    return document.root, read


def base_persons(el: Element, as_of: date, read: BaseRead | None) -> list[PersonState]:
    """The persons the ``baseDelivery`` ``el`` states: read from its ``messages`` (``read``
    is ``None``: the document was parsed whole), or as ``read`` took them while streaming;
    one without ``baseDeliveryValidFrom`` as of ``as_of``.

    :raises InputRejected: a person's data is missing or malformed, or there is no ``messages``.
    """
    if read is not None and read.event is el:
        if read.error is not None:
            raise read.error
        taken = read.taken
    else:
        taken = [_read(message) for message in el if local(message) == "messages"]
    return [_state.stated(ev, valid or as_of) for ev, valid in taken]
