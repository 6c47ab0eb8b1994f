"""The objects the core hands to plugins and gets back from them.

A plugin never touches the store: a source gets an :class:`Intake`; a
transport gets :class:`~gateway.outbound.OutboundItem` objects and a
:class:`~gateway.outbound.ReceiptSink` (:mod:`gateway.outbound`).
Everything here is plain data or a small protocol: the records that flow
between the core and its plugins, from input to the decision what to send.
What a source or transport *is*, and what it is created with, is in
:mod:`gateway.plugin_types`; a vendor imports all of them through
:mod:`gateway.api`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

if TYPE_CHECKING:
    from lxml import etree

    from gateway.person_state import PersonState


class Travels:
    """Base of records that cross to worker processes: they pickle as a constructor call.

    The dataclass default for slotted classes goes through ``fields()`` for
    every object; this is about three times faster to unpickle, and batches
    of messages cross processes on every step. The arguments are read by an
    ``operator.attrgetter`` made once per class: half the cost of a comprehension.
    The same getter makes :meth:`replaced` copies.
    """

    __slots__: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), _fields_of(type(self))(self)

    def replaced(self, **changes: Any) -> Self:
        """A copy with ``changes``, as ``dataclasses.replace`` makes it at three times the cost
        (each message is copied several times between its stages)."""
        cls = type(self)
        values = list(_fields_of(cls)(self))
        for name, value in changes.items():
            try:
                values[cls.__slots__.index(name)] = value
            except ValueError:
                raise TypeError(f"{cls.__name__} has no field {name!r}") from None
        return cls(*values)


def _fields_of(cls: type[Travels]) -> Callable[[Any], tuple[Any, ...]]:
    """What reads the constructor arguments of a :class:`Travels` record (a tuple)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        names = cls.__slots__
        fields = _FIELDS[cls] = (operator.attrgetter(*names) if len(names) > 1
                                 else lambda record: tuple([getattr(record, name) for name in names]))
    return fields


#: Per :class:`Travels` class, what reads its constructor arguments (a tuple) from a record.
_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


#: ``RawInput.meta`` key: why input a transport submits under its partner's name is not
#: from that partner (sedex: another ``senderId`` in a shared inbox). It is decided by the
#: rules like registry input; an eCH-0223 message is quarantined with this reason, never
#: taken as the partner's (:mod:`gateway.inbound`).
NOT_FROM_PARTNER = "not_from_partner"
#: ``RawInput.meta`` key a transport sets on a message from a partner that its own envelope
#: says answers an earlier one: the ref of our attempt it names (sedex: the envelope's
#: ``referenceMessageId``, the envelope messageId of the attempt). A message whose eCH-0223
#: header names no ``referenceMessageId`` answers that attempt's message (:mod:`gateway.inbound`).
ANSWERED_ATTEMPT = "reference_message_id"
#: ``RawInput.meta`` key a source sets on input whose files it moves away once stored: the
#: folder they go to (sedex: ``processed``, a refused pair ``processed/rejected``), for an
#: operator to find them (``messages show``). The names are the input's own meta (sedex:
#: ``envelope_name`` and ``payload_name``, a lone file ``file_name``).
MOVED_TO = "moved_to"
#: The ``RawInput.meta`` keys naming the files an input came in (sedex: its envelope and
#: payload, a lone file), which :data:`MOVED_TO` says where they went.
FILE_KEYS = ("envelope_name", "payload_name", "file_name")


@dataclass(frozen=True, slots=True)
class RawInput(Travels):
    """Bytes a source obtained, exactly as received, plus what it knows of them.

    :param source: the configured source name (``[sources.<name>]``), or for what a
        transport receives its partner's name.
    :param ref: a reference the operator recognises, e.g. the file name.
    :param data: the raw bytes; stored before anything else happens to them.
    :param meta: source facts (``content_type``, sedex envelope fields,
        :data:`NOT_FROM_PARTNER`, :data:`ANSWERED_ATTEMPT`, :data:`MOVED_TO`, ...).
    """

    source: str
    ref: str
    data: bytes
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Attachment(Travels):
    """A document file travelling with a message (``files/<name>`` in a zip)."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NamedFile(Travels):
    """A file an eCH-0039 ``document`` of a message names, to be sent under ``files/``.

    :param path: its ``pathFileName`` (``files/<name>``).
    :param sha256: the SHA-256 the document states (lower-case hex), if it states one.
    :param where: where the message names it (``/personEventMessage/content/document[1]/...``).
    """

    path: str
    sha256: str | None
    where: str


@dataclass(slots=True)
class Normalised(Travels):
    """An input turned into the canonical eCH-0223 form, or on its way there.

    :param kind: ``personEventMessage`` or ``eventReport`` (or what a normaliser
        names an input that sends nothing, e.g. ``baseDelivery``).
    :param message_id: the eCH-0223 header ``messageId``.
    :param xml: the canonical eCH-0223 XML as it will be delivered; empty while
        ``draft`` is set or when nothing is to be sent.
    :param tree: the parsed form of ``xml`` (validated without reparsing); ``None``
        once the message left the process that parsed it.
    :param version: the eCH-0223 version of ``xml`` (``"1.5"``).
    :param attachments: document files referenced by the message.
    :param reference_message_id: the header ``referenceMessageId``, if any.
    :param action: the header ``action`` (eCH-0039: ``8`` negative report,
        ``9`` positive report, ...), if any.
    :param subject: the keys of the person the message is about (``vn:<13 digits>``,
        ``local:<category>:<id>``): the core looks up that person's last known
        state (stage *enrich*) before ``draft`` is completed and rules decide.
    :param draft: set by a normaliser that can finish the message only knowing
        the person's last state (an eCH-0020 event); the core calls
        ``draft.complete(person)`` after enrichment.
    :param persons: person states this input states (a ``baseDelivery`` seeds
        many): merged into the gateway's person state when the input is recorded.
    :param facts: fields the normaliser exposes to rules (``source_event``, ...).
    :param not_relevant: the normaliser's verdict that nothing is to be sent,
        with the reason (an event without eCH-0223 counterpart).
    :param warnings: what the normaliser had to leave out or assume; journaled.
    :param parts: inputs this one splits into (the rows of an export), each
        stored and processed as an input of its own.
    :param rejected_parts: parts that could not be made, with the reason (row,
        field): stored quarantined, while the good parts go on.
    :param rejected_warnings: what the normaliser says of the ``rejected_parts`` as a
        whole (what every one has wrong, when none could be made); journaled apart from
        ``warnings``: ``messages show`` says them only while every part is still
        rejected as it was made (quarantined for the same reason).
    :param problems: set by the core, not by normalisers: what validating ``xml`` as
        eCH-0223 1.5 found where it was parsed first (``None``: not validated yet), so
        a later stage in another process need not parse it again.
    :param named_files: set by the core, not by normalisers, where ``xml`` was parsed
        first: the files its documents name (``None``: not read yet).
    :param sender_id: the header ``senderId``: a messageId is unique only with it
        (``None``: not known; such messages share one namespace of messageIds).
    :param received_version: the eCH-0223 version the input came in, where it was
        upgraded to ``version`` (``None``: it came in ``version``, or is not eCH-0223);
        journaled, and ``messages show`` says it.
    """

    kind: str
    message_id: str | None
    xml: bytes
    tree: etree._ElementTree | None
    version: str = "1.5"
    attachments: tuple[Attachment, ...] = ()
    reference_message_id: str | None = None
    action: str | None = None
    subject: tuple[str, ...] = ()
    draft: Draft | None = None
    persons: tuple[PersonState, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    not_relevant: str | None = None
    warnings: tuple[str, ...] = ()
    parts: tuple[RawInput, ...] = ()
    rejected_parts: tuple[tuple[RawInput, str], ...] = ()
    rejected_warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] | None = None
    named_files: tuple[NamedFile, ...] | None = None
    sender_id: str | None = None
    received_version: str | None = None


class Draft(Protocol):
    """A message a normaliser finishes once the person's last known state is at hand.

    It may cross processes: a module-level class whose state pickles. The core
    keeps it in the worker process that made it where it can (another worker
    normalises the input again).
    """

    def complete(self, person: PersonState | None) -> Normalised:
        """The finished message (``xml`` and ``tree`` set, or ``not_relevant``).

        :param person: the person's state before this input (``None``: unknown).
        :raises InputRejected: the input cannot become a message (the reason names the field).
        """
        ...


@dataclass(frozen=True, slots=True)
class Decision(Travels):
    """What the rules decided about a message: who gets it, and with what.

    A decision with no ``partners`` is "decided: nobody" (not relevant, for
    ``reason``); no decision at all is ``None``, which the core records as
    not relevant because no rule decided.

    :param rule: the rule that decided (``rules[2] foreign-nationals``, a plugin's name).
    :param reason: why, in words an operator reads in the journal.
    :param partners: the partners that get the message.
    :param business_key: eCH-0223 ``businessKey`` to set.
    :param deadline: eCH-0223 ``deadline`` to set (1.5; dropped for older partners).
    :param business_comment: eCH-0223 ``businessComment`` to set.
    :param documents: document files to attach: patterns in the documents folder,
        with placeholders for the message's person or case (:mod:`gateway.documents`).
    """

    rule: str
    reason: str
    partners: tuple[str, ...] = ()
    business_key: str | None = None
    deadline: date | None = None
    business_comment: str | None = None
    documents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Route(Travels):
    """One routing decision: deliver to ``partner`` because of ``reason``."""

    partner: str
    reason: str


@dataclass(frozen=True, slots=True)
class PartnerVersion(Travels):
    """A partner's eCH-0223 version and its policy for events that version lacks.

    :param version: ``"1.0"``, ``"1.3"``, ``"1.4"`` or ``"1.5"`` (``[partners.<name>] ech0223_version``).
    :param unsupported_event: ``"othercase"`` or ``"refuse"`` (``unsupported_event``).
    """

    version: str = "1.5"
    unsupported_event: Literal["othercase", "refuse"] = "othercase"


#: The setting :attr:`NormaliseContext.max_bytes` comes from, as reasons name it.
DOCUMENT_LIMIT = "[limits] max_document_bytes"


@dataclass(frozen=True, slots=True)
class NormaliseContext:
    """What a normaliser may use: the input limits in force, and the partners' eCH-0223 versions.

    ``partners`` maps a partner name (which is also the source name of what it
    sends us), and the name of a source whose ``partner`` names one, to its
    :class:`PartnerVersion`; see :func:`gateway.assembly.partner_ech0223`.
    """

    max_bytes: int
    max_zip_entries: int
    max_zip_bytes: int
    max_zip_ratio: int
    #: Of an input over its limit, the most bytes a source stores as evidence.
    max_kept_bytes: int = 32 << 20
    partners: Mapping[str, PartnerVersion] = field(default_factory=dict)


class Intake(Protocol):
    """How a source hands over what it obtained.

    Both calls return only after the raw bytes are durably committed; only
    then may the source acknowledge the sender or remove a dropped file.

    An input whose ``meta`` holds ``"idempotency_key"`` is stored once per
    source and key: a repeat with the same bytes is not stored again and gets
    the first input's id; one with other bytes raises
    :class:`~gateway.errors.KeyReuseRejected` and nothing is stored.
    """

    async def submit(self, raws: Sequence[RawInput], *, wait: bool = True) -> list[int]:
        """Store ``raws`` durably, then process them; return their row ids.

        :param wait: ``True``: when processing lags behind, wait for room in its
            queue before returning (a folder source then reads no further).
            ``False``: return as soon as ``raws`` are committed, whatever the
            backlog, for a source whose sender waits for the answer (HTTP);
            the pipeline takes them from the store as it catches up. Nor wait
            while the store cannot write (its disk is full, or another program holds
            the database's write lock longer than ``[store] busy_timeout``): raise
            :class:`~gateway.errors.StoreUnavailable`, nothing stored, so the
            sender can be told to come back (HTTP 503).
        """
        ...

    async def quarantine(self, raw: RawInput, reason: str, *, wait: bool = True) -> int:
        """Store ``raw`` durably as quarantined with ``reason``; return its id.

        It keeps the messageId and senderId of its eCH-0223 header where the gateway
        can read them safely from ``raw.data`` (also a zip's message), as a message
        quarantined by processing does; not of evidence of an input over its limit
        (``meta`` with :data:`~gateway.fileio.KEPT_BYTES`, as :meth:`Evidence.meta
        <gateway.fileio.Evidence.meta>` gives).

        :param wait: as for :meth:`submit`: ``False`` raises ``StoreUnavailable``
            instead of waiting for the store.
        """
        ...
