"""Plain records passed between the core and the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts import Attachment, Decision, Normalised, Route, Travels
from gateway.person_state import PersonChange, PersonState
from gateway.store.states import MessageState


@dataclass(frozen=True, slots=True)
class Inbound(Travels):
    """What the way back found out about a partner's message (:mod:`gateway.inbound`).

    :param partner: the partner that sent it (its transport, or a source's ``partner``).
    :param matched: how the person was found (``vn``, ``local``, ``names``, ``registry``,
        ``operator``), ``None`` when nobody or several were.
    :param candidates: with ``needs_review``, the persons it could be about, each
        ``{"person": <id or None>, "keys": [...], "name": ..., "born": ...}``.
    :param reference_message_id: the header ``referenceMessageId`` (the message it answers).
    :param business_process_id: the header ``businessProcessId``.
    :param our_reference: the case's reference on our side (the header's
        ``yourBusinessReferenceId``).
    :param their_reference: the partner's reference (the header's ``ourBusinessReferenceId``).
    :param recipients: the header's ``recipientId``s: who sent what it answers.
    """

    partner: str
    matched: str | None = None
    candidates: tuple[Mapping[str, Any], ...] = ()
    reference_message_id: str | None = None
    business_process_id: str | None = None
    our_reference: str | None = None
    their_reference: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(slots=True)
class Processed(Travels):
    """What processing decided about one stored input: all that recording it commits.

    :param persons: person-state updates (what the input says of each person),
        merged into the stored states when recorded; as :class:`PersonChange` when
        the merge was worked out already (in a worker).
    :param decision: what the rules decided (``None``: no rule decided, or none asked).
    :param payloads: each partner's payload where it differs from the canonical XML
        (another eCH-0223 version).
    :param inbound: set for a partner's message on its way back to the registry.
    :param message_id: with no ``normalised`` message, the eCH-0223 header's ``messageId``
        read from the input all the same (a quarantined input, see :class:`InputRejected
        <gateway.errors.InputRejected>`); recording keeps it where it may
        (:func:`gateway.store._intake_ops.record_processing`).
    :param sender_id: the header's ``senderId``, likewise.
    """

    message: int
    state: MessageState
    reason: str | None = None
    normalised: Normalised | None = None
    raw_is_canonical: bool = True
    routes: list[Route] = field(default_factory=list)
    detail: Mapping[str, Any] = field(default_factory=dict)
    persons: tuple[PersonState | PersonChange, ...] = ()
    decision: Decision | None = None
    payloads: Mapping[str, bytes] = field(default_factory=dict)
    inbound: Inbound | None = None
    message_id: str | None = None
    sender_id: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery claimed for one attempt, with what the transport needs."""

    delivery: int
    message: int
    partner: str
    attempt: int
    attempt_ref: str
    message_id: str | None
    payload: bytes
    attachments: tuple[Attachment, ...]
    resumed: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a send attempt achieved.

    :param kind: ``sent`` (receipt awaited), ``delivered``, ``transient``,
        ``permanent``, ``unsure``: the attempt may or may not have reached
        the partner (its files could not be made durable), so it is repeated
        later as the same attempt (same ``attempt_ref``), never as a new one;
        or ``local``: a fault on this machine stopped it (the partner is
        paused), so it stays ``sending`` and is repeated as the same attempt
        once the fault clears, without counting.
    """

    delivery: int
    attempt_ref: str
    kind: str
    detail: str = ""
    #: ``transient``: seconds the partner asked us to wait before the next attempt.
    retry_after: float | None = None
    #: ``sent`` or ``delivered``: whom the transport addressed
    #: (:attr:`~gateway.outbound.SendResult.recipient`).
    recipient: str | None = None
    #: ``unsure`` because something on this machine hangs (:class:`~gateway.errors.LocalHang`):
    #: the partner is paused, as for ``local``.
    hung: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    """An input stored but not processed yet (after a crash)."""

    message: int
    source: str
    ref: str
    data: bytes
    meta: Mapping[str, str]
