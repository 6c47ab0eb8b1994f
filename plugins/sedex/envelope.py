"""eCH-0090 envelopes and receipts, versions 1 and 2 (DOMAIN.md §1.3, §1.4).

We write v1 envelopes by default (the file interface wants them) and read
both versions of envelopes and receipts. Everything read goes through the
safe parser; an envelope must be valid, a receipt only needs a usable
``messageId``. A receipt's schema violations are sorted: the ones real
receipts have and that change nothing about what the receipt says (a
participant ID off its pattern, as in the sedex documentation's own
example; a v2 status code in a v1 receipt) are kept as
:attr:`SedexReceipt.warning`, the others as :attr:`SedexReceipt.problem`,
so the delivery it answers is flagged for review instead of lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.api import InputRejected, parse_untrusted, validate
from plugins.sedex.options import PARTICIPANT_ID

NAMESPACES = {1: "http://www.ech.ch/xmlns/eCH-0090/1", 2: "http://www.ech.ch/xmlns/eCH-0090/2"}
_VERSION_OF = {ns: v for v, ns in NAMESPACES.items()}

#: sedex ``messageId``: 1-36 characters, safe in file names.
MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
MESSAGE_TYPE_MAX = 2_699_999
_DATETIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")
#: Receipt schema violations that leave its meaning intact (see the module docstring).
_TOLERATED = re.compile(r"Element '\{[^}]*\}(?:(?:senderId|recipientId)': \[facet 'pattern'\]"
                        r"|statusCode': \[facet 'enumeration'\])")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields of an ``envelope`` we write and read."""

    message_id: str
    message_type: int
    message_class: int
    sender_id: str
    recipient_ids: tuple[str, ...]
    event_date: datetime
    message_date: datetime
    reference_message_id: str | None = None
    version: int = 1


@dataclass(frozen=True, slots=True)
class SedexReceipt:
    """A ``receipt`` as read.

    ``problem`` names a schema violation that puts the receipt to review,
    ``warning`` one that is only worth telling (see the module docstring).
    """

    version: int
    message_id: str
    status_code: str
    status_info: str
    recipient_id: str
    event_date: datetime | None
    problem: str | None = None
    warning: str | None = None


def format_datetime(value: datetime) -> str:
    """``xs:dateTime`` with offset; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("sedex dates must be timezone-aware")
    return value.isoformat(timespec="milliseconds")


def parse_datetime(text: str) -> datetime:
    """Read ``xs:dateTime``; without an offset it is taken as local time."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an xs:dateTime: {text!r}")
    base, fraction, zone = match.groups()
    value = datetime.fromisoformat(base + (fraction or "")[:7] + (zone or ""))
    return value if value.tzinfo is not None else value.astimezone()


def _check_fields(env: Envelope) -> None:
    pattern = PARTICIPANT_ID.get(env.version)
    if pattern is None:
        raise ValueError(f"unknown eCH-0090 version {env.version}")
    ids = (("messageId", env.message_id), ("referenceMessageId", env.reference_message_id))
    for label, mid in ids:
        if mid is not None and not MESSAGE_ID.fullmatch(mid):
            raise ValueError(f"{label} {mid!r} is not 1-36 characters of [A-Za-z0-9-]")
    if not 0 <= env.message_type <= MESSAGE_TYPE_MAX:
        raise ValueError(f"messageType {env.message_type} outside 0..{MESSAGE_TYPE_MAX}")
    if env.message_class in (1, 2, 3) and env.reference_message_id is None:
        raise ValueError(f"messageClass {env.message_class} requires a referenceMessageId")
    if not env.recipient_ids:
        raise ValueError("an envelope needs at least one recipientId")
    for pid in (env.sender_id, *env.recipient_ids):
        if not pattern.fullmatch(pid):
            raise ValueError(f"{pid!r} is not an eCH-0090 v{env.version} participant ID")


def _element(version: int, root: str, children: Sequence[tuple[str, str]]) -> etree._Element:
    ns = NAMESPACES[version]
    element = etree.Element(f"{{{ns}}}{root}", nsmap={"eCH-0090": ns}, version=f"{version}.0")
    for tag, text in children:
        etree.SubElement(element, f"{{{ns}}}{tag}").text = text
    return element


def _serialise(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def build_envelope(env: Envelope) -> bytes:
    """The envelope XML of ``env``, checked against the project's schema.

    :raises ValueError: when sedex would refuse the envelope (bad IDs,
        type out of range, naive dates, missing reference).
    """
    _check_fields(env)
    children = [
        ("messageId", env.message_id),
        ("messageType", str(env.message_type)),
        ("messageClass", str(env.message_class)),
    ]
    if env.reference_message_id is not None:
        children.append(("referenceMessageId", env.reference_message_id))
    children.append(("senderId", env.sender_id))
    children += [("recipientId", r) for r in env.recipient_ids]
    children += [
        ("eventDate", format_datetime(env.event_date)),
        ("messageDate", format_datetime(env.message_date)),
    ]
    element = _element(env.version, "envelope", children)
    problem = _schema_problem(element)
    if problem is not None:
        raise ValueError(f"envelope does not match eCH-0090 v{env.version}: {problem}")
    return _serialise(element)


class EnvelopeTemplate:
    """Envelopes that differ only in messageId and dates, without rebuilding the XML.

    The template is an envelope made (and schema-checked) once by
    :func:`build_envelope`; each :meth:`render` substitutes the attempt's
    messageId and the dates, which are checked by pattern and type.
    """

    _ID = "MESSAGEIDPLACEHOLDER"
    _EVENT = datetime(1999, 1, 1, 1, 1, 1, 111000).astimezone()
    _SENT = datetime(1998, 2, 2, 2, 2, 2, 222000).astimezone()

    def __init__(self, message_type: int, message_class: int, sender_id: str,
                 recipient_ids: tuple[str, ...], version: int) -> None:
        text = build_envelope(Envelope(self._ID, message_type, message_class, sender_id,
                                       recipient_ids, self._EVENT, self._SENT,
                                       version=version)).decode()
        slots = {self._ID: "id", format_datetime(self._EVENT): "event",
                 format_datetime(self._SENT): "sent"}
        for marker in slots:
            if text.count(marker) != 1:
                raise ValueError(f"envelope template has {text.count(marker)} {marker!r}")
        pattern = re.compile("|".join(map(re.escape, slots)))
        #: The text around the three slots, and which slot follows each piece but the last.
        self._pieces = pattern.split(text)
        self._slots = [slots[m] for m in pattern.findall(text)]

    def render(self, message_id: str, event_date: datetime, message_date: datetime) -> bytes:
        """The envelope for one attempt."""
        return self.render_text(message_id, format_datetime(event_date),
                                format_datetime(message_date))

    def render_text(self, message_id: str, event_date: str, message_date: str) -> bytes:
        """:meth:`render` with the dates formatted already (:func:`format_datetime`): a
        batch of attempts shares its messageDate."""
        if not MESSAGE_ID.fullmatch(message_id):
            raise ValueError(f"messageId {message_id!r} is not 1-36 characters of [A-Za-z0-9-]")
        values = {"id": message_id, "event": event_date, "sent": message_date}
        out = [self._pieces[0]]
        for slot, piece in zip(self._slots, self._pieces[1:], strict=True):
            out += (values[slot], piece)
        return "".join(out).encode()


def build_receipt(env: Envelope, recipient_id: str, code: int, info: str, at: datetime) -> bytes:
    """A v2 receipt for ``env`` as the sedex client writes it (one per recipient)."""
    children = [
        ("eventDate", format_datetime(at)),
        ("statusCode", str(code)),
        ("statusInfo", info[:255]),
        ("messageId", env.message_id),
        ("messageType", str(env.message_type)),
        ("messageClass", str(env.message_class)),
        ("senderId", env.sender_id),
        ("recipientId", recipient_id),
    ]
    return _serialise(_element(2, "receipt", children))


def _open(data: bytes, max_bytes: int, root_name: str) -> tuple[etree._Element, int, str]:
    """Parse safely; return the root, its eCH-0090 version and namespace."""
    root = parse_untrusted(data, max_bytes=max_bytes).getroot()
    qname = etree.QName(root)
    version = _VERSION_OF.get(qname.namespace or "")
    if version is None or qname.localname != root_name:
        raise InputRejected(f"not an eCH-0090 {root_name}: root element {qname.text}")
    return root, version, NAMESPACES[version]


def _text(root: etree._Element, ns: str, tag: str) -> str:
    text = root.findtext(f"{{{ns}}}{tag}")
    if text is None or not text.strip():
        raise InputRejected(f"missing {tag}")
    return text.strip()


def _int(root: etree._Element, ns: str, tag: str) -> int:
    text = _text(root, ns, tag)
    try:
        return int(text)
    except ValueError:
        raise InputRejected(f"{tag} is not a number") from None


def _date(root: etree._Element, ns: str, tag: str) -> datetime:
    try:
        return parse_datetime(_text(root, ns, tag))
    except ValueError as exc:
        raise InputRejected(f"bad {tag}: {exc}") from None


def parse_envelope(data: bytes, *, max_bytes: int) -> Envelope:
    """Read an envelope of either version.

    :raises InputRejected: when it is not a valid eCH-0090 envelope.
    """
    root, version, ns = _open(data, max_bytes, "envelope")
    problem = _schema_problem(root)
    if problem is not None:
        raise InputRejected(f"invalid eCH-0090 v{version} envelope: {problem}")
    reference = root.findtext(f"{{{ns}}}referenceMessageId")
    env = Envelope(
        message_id=_text(root, ns, "messageId"),
        message_type=_int(root, ns, "messageType"),
        message_class=_int(root, ns, "messageClass"),
        sender_id=_text(root, ns, "senderId"),
        recipient_ids=tuple((r.text or "").strip() for r in root.iterfind(f"{{{ns}}}recipientId")),
        event_date=_date(root, ns, "eventDate"),
        message_date=_date(root, ns, "messageDate"),
        reference_message_id=reference.strip() if reference is not None else None,
        version=version,
    )
    try:
        _check_fields(env)
    except ValueError as exc:
        raise InputRejected(f"invalid eCH-0090 v{version} envelope: {exc}") from None
    return env


def parse_receipt(data: bytes, *, max_bytes: int) -> SedexReceipt:
    """Read a receipt of either version.

    :raises InputRejected: when it is no receipt or has no usable messageId.
    """
    root, version, ns = _open(data, max_bytes, "receipt")
    message_id = _text(root, ns, "messageId")
    if not MESSAGE_ID.fullmatch(message_id):
        raise InputRejected("receipt messageId is not 1-36 characters of [A-Za-z0-9-]")
    issues = _schema_issues(root)
    tolerated = [i for i in issues if _TOLERATED.search(i)]
    problem = next((i for i in issues if i not in tolerated), None)
    try:
        event_date: datetime | None = parse_datetime(root.findtext(f"{{{ns}}}eventDate") or "")
    except ValueError as exc:
        event_date, problem = None, problem or f"bad eventDate: {exc}"
    return SedexReceipt(
        version=version,
        message_id=message_id,
        status_code=(root.findtext(f"{{{ns}}}statusCode") or "").strip(),
        status_info=(root.findtext(f"{{{ns}}}statusInfo") or "").strip(),
        recipient_id=(root.findtext(f"{{{ns}}}recipientId") or "").strip(),
        event_date=event_date,
        problem=problem,
        warning="; ".join(tolerated) or None,
    )


def _schema_problem(root: etree._Element) -> str | None:
    """The first violation of the project's eCH-0090 schema (v1 or v2), or ``None``."""
    return next(iter(_schema_issues(root)), None)


def _schema_issues(root: etree._Element) -> list[str]:
    """Every violation of the project's eCH-0090 schema (v1 or v2), as ``line N: message``."""
    report = validate(root)
    if report.valid:
        return []
    return [f"line {e.line}: {e.message}" for e in report.errors] or [f"not valid {report.kind}"]
