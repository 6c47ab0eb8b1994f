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
from ._events import read_event
from ._header import header as read_header
from ._xml import E20, Element, date_of, local

#: Near the start of a delivery (before the persons): the event is a base delivery.
MARKER = b"baseDelivery"


class BaseRead:
    """The persons of the first ``baseDelivery`` of an eCH-0020 ``delivery``, read as its
    ``messages`` came, or the first rejection reading them gave."""

    def __init__(self) -> None:
        #: the ``baseDelivery`` element the persons come from
        self.event: Element | None = None
        self.persons: list[PersonState] = []
        self.error: InputRejected | None = None
        self._as_of: date | None = None

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
            ev = read_event(message, "baseDelivery")
            valid = [child for child in message if local(child) == "baseDeliveryValidFrom"]
            as_of = date_of(valid[0]) if valid else self._delivery_date(root)
            self.persons.append(_state.stated(ev, as_of))
        except InputRejected as exc:
            self.error = exc

    def _delivery_date(self, root: Element) -> date:
        """The date of a person without ``baseDeliveryValidFrom``: the header's event date,
        else its message date. A header that cannot say is refused by the checks of the
        whole delivery first, so what is raised here is never the reason given."""
        if self._as_of is None:
            kids = [child for child in root if local(child)]
            if not kids or local(kids[0]) != "deliveryHeader":
                raise InputRejected("no deliveryHeader before the baseDelivery")
            header = read_header(kids[0])
            self._as_of = header.event_date or header.message_date.date()
        return self._as_of


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
    is ``None``: the document was parsed whole), or as ``read`` took them while streaming.

    :raises InputRejected: a person's data is missing or malformed, or there is no ``messages``.
    """
    if read is not None and read.event is el:
        if read.error is not None:
            raise read.error
        return read.persons
    messages = [child for child in el if local(child) == "messages"]
    persons = []
    for message in messages:
        ev = read_event(message, "baseDelivery")
        valid = [child for child in message if local(child) == "baseDeliveryValidFrom"]
        persons.append(_state.stated(ev, date_of(valid[0]) if valid else as_of))
    return persons
