"""Convert eCH-0223 messages between 1.5 (the gateway's canonical form) and 1.0, 1.3, 1.4.

All versions share one namespace. :func:`convert` turns a 1.5 message into an
older version for a partner that runs it; :func:`upgrade` turns an older
inbound message into 1.5. Both are pure: bytes or a tree in, new bytes and a
list of warnings out (the caller's tree is never changed).

What the versions differ in (DOMAIN.md section 4): 1.5 alone has the root
``version`` attribute, ``businessInformation/deadline``, ``comesFrom/reportingDate``,
``personData/birthAddonData`` and the events ``prolongationL`` and
``declarationOfCommitment``, and lacks ``changeOccupation``; 1.4 added the
migration office events (``prolongationB`` ... ``othercaseOfMigration``); 1.0 has
``originalCreationDate`` as a date, later versions as a dateTime.

An event the target lacks is handled by the policy ``unsupported``: ``"othercase"``
sends ``othercaseOfMigration`` (or, where the target lacks that too, no
``personEvent``) and says which event it was in ``businessComment``;
``"refuse"`` raises :class:`~gateway.errors.ConversionRefused`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, TypeAlias, get_args

from lxml import etree

from gateway.errors import ConversionRefused, InputRejected
from gateway.xml.safe import parse_untrusted

from .codes import PersonEvent
from .namespaces import NS

__all__ = ["EVENTS", "VERSIONS", "Conversion", "Unsupported", "convert", "upgrade"]

#: The eCH-0223 versions, oldest first.
VERSIONS = ("1.0", "1.3", "1.4", "1.5")
#: What to do with a ``personEvent`` the other version lacks.
Unsupported: TypeAlias = Literal["othercase", "refuse"]

_ADDED_IN_14 = frozenset({"prolongationB", "prolongationC", "conversionBtoC", "laggardOfFamily",
                          "duplicateOfPermit", "othercaseOfMigration"})
_ADDED_IN_15 = frozenset({"prolongationL", "declarationOfCommitment"})
_EVENTS_15 = frozenset(get_args(PersonEvent))
_EVENTS_14 = _EVENTS_15 - _ADDED_IN_15 | {"changeOccupation"}
_EVENTS_10 = _EVENTS_14 - _ADDED_IN_14
#: The ``personEvent`` values of each version.
EVENTS: dict[str, frozenset[str]] = {
    "1.0": _EVENTS_10, "1.3": _EVENTS_10, "1.4": _EVENTS_14, "1.5": _EVENTS_15}

_OTHERCASE = "othercaseOfMigration"
#: The most characters of a businessComment (eCH-0223).
COMMENT_MAX = 1024
_MAX_BYTES = 64 * 1024 * 1024
_E = f"{{{NS.ECH_0223}}}"
_PERSON_EVENT_MESSAGE = _E + "personEventMessage"
_CONTENT = _E + "content"
_EVENT = _E + "personEvent"
_DOCUMENT_DATE = f"{_E}document/{_E}originalCreationDate"
_BUSINESS = _E + "businessInformation"
_COMMENT = _E + "businessComment"
#: Elements only 1.5 has: (path below ``content``, name in warnings).
_ONLY_IN_15 = (
    (f"{_E}personData/{_E}birthAddonData", "personData/birthAddonData"),
    (f"{_E}personData/{_E}comesFrom/{_E}reportingDate", "personData/comesFrom/reportingDate"),
    (f"{_BUSINESS}/{_E}deadline", "businessInformation/deadline"),
)
_SCHEMA_LOCATION = f"{{{NS.XSI}}}schemaLocation"
_XSD_NAME = re.compile(r"eCH-0223-1-\d\.xsd")
_XSD_DATE = re.compile(r"(-?\d{4,}-\d\d-\d\d)(Z|[+-]\d\d:\d\d)?")


@dataclass(frozen=True, slots=True)
class Conversion:
    """A converted message: its XML (UTF-8) and what was changed beyond the version's form.

    Each warning names the element or value and the target version, e.g.
    ``businessInformation/deadline dropped: not in eCH-0223 1.4``.
    """

    xml: bytes
    warnings: tuple[str, ...] = ()


def convert(doc: bytes | etree._ElementTree, target: str, *,
            unsupported: Unsupported = "othercase") -> Conversion:
    """Convert a 1.5 ``personEventMessage`` or ``eventReport`` to eCH-0223 ``target``.

    1.5 returns ``doc`` itself (bytes unchanged) without warnings. For older
    targets the ``version`` attribute goes (an ``xsi:schemaLocation`` hint is
    pointed at the target's XSD), 1.5-only elements are dropped with a warning
    each, ``originalCreationDate`` becomes a date for 1.0 (the date as written,
    without time; ``T24:00:00`` the next day), and an event the target lacks follows
    ``unsupported``.

    :raises ValueError: ``target`` is not a version, ``unsupported`` not a policy, or
        ``doc`` is not eCH-0223 1.5.
    :raises ConversionRefused: ``unsupported="refuse"`` and the event is not in ``target``.
    :raises InputRejected: ``doc`` is bytes that are not well-formed XML.
    """
    if target == "1.5":
        return Conversion(doc if isinstance(doc, bytes) else _serialise(doc.getroot()))
    if target not in VERSIONS:
        raise ValueError(f"eCH-0223 version {target!r} is unknown; known: {', '.join(VERSIONS)}")
    _check_policy(unsupported)
    root = _own_root(doc)
    if root.get("version") != "1.5":
        raise ValueError(f"convert takes eCH-0223 1.5, not a document with version="
                         f"{root.get('version')!r} ({etree.QName(root).localname})")
    del root.attrib["version"]
    _relocate(root, target)
    warnings: list[str] = []
    content = root.find(_CONTENT) if root.tag == _PERSON_EVENT_MESSAGE else None
    if content is not None:
        for path, name in _ONLY_IN_15:
            for element in content.iterfind(path):
                _remove(element)
                warnings.append(f"{name} dropped: not in eCH-0223 {target}")
        if target == "1.0":
            for element in content.iterfind(_DOCUMENT_DATE):
                element.text = _date_part(element.text or "")
        _fit_event(content, target, unsupported, warnings)
    return Conversion(_serialise(root), tuple(warnings))


def upgrade(doc: bytes | etree._ElementTree, source_version: str, *,
            unsupported: Unsupported = "othercase") -> Conversion:
    """Turn a versionless eCH-0223 ``source_version`` message into canonical 1.5.

    Adds ``version="1.5"``, makes a 1.0 ``originalCreationDate`` a dateTime at
    midnight (keeping its time zone, if any), and treats ``changeOccupation``
    (not in 1.5) by ``unsupported``. ``source_version`` 1.5 returns ``doc`` as it is.

    :raises ValueError: ``source_version`` or ``unsupported`` is unknown, or ``doc`` has a
        version attribute.
    :raises ConversionRefused: ``unsupported="refuse"`` and the event is ``changeOccupation``.
    :raises InputRejected: ``doc`` is bytes that are not well-formed XML, or a 1.0
        ``originalCreationDate`` is not a date.
    """
    if source_version == "1.5":
        return Conversion(doc if isinstance(doc, bytes) else _serialise(doc.getroot()))
    if source_version not in VERSIONS:
        raise ValueError(f"eCH-0223 version {source_version!r} is unknown;"
                         f" known: {', '.join(VERSIONS)}")
    _check_policy(unsupported)
    root = _own_root(doc)
    if root.get("version") is not None:
        raise ValueError(f"eCH-0223 {source_version} has no version attribute;"
                         f" this document says {root.get('version')!r}")
    root.set("version", "1.5")
    _relocate(root, "1.5")
    warnings: list[str] = []
    content = root.find(_CONTENT) if root.tag == _PERSON_EVENT_MESSAGE else None
    if content is not None:
        if source_version == "1.0":
            for element in content.iterfind(_DOCUMENT_DATE):
                element.text = _midnight(element.text or "")
        _fit_event(content, "1.5", unsupported, warnings)
    return Conversion(_serialise(root), tuple(warnings))


def _check_policy(unsupported: str) -> None:
    if unsupported not in get_args(Unsupported):
        raise ValueError(f"unsupported must be one of {', '.join(get_args(Unsupported))},"
                         f" not {unsupported!r}")


def _own_root(doc: bytes | etree._ElementTree) -> etree._Element:
    """A root element this module may change: freshly parsed, or a copy of the caller's."""
    if isinstance(doc, bytes):
        return parse_untrusted(doc, max_bytes=_MAX_BYTES).getroot()
    return copy.deepcopy(doc.getroot())


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _relocate(root: etree._Element, version: str) -> None:
    """Point an ``xsi:schemaLocation`` hint at the eCH-0223 XSD of ``version``."""
    hint = root.get(_SCHEMA_LOCATION)
    if hint is not None:
        root.set(_SCHEMA_LOCATION, _XSD_NAME.sub(f"eCH-0223-{version.replace('.', '-')}.xsd", hint))


def _remove(element: etree._Element) -> None:
    """Remove ``element``, leaving the whitespace around its siblings as it was."""
    parent = element.getparent()
    assert parent is not None
    previous = element.getprevious()
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)


def _fit_event(content: etree._Element, target: str, unsupported: Unsupported,
               warnings: list[str]) -> None:
    """Replace or omit a ``personEvent`` that ``target`` lacks, as ``unsupported`` says."""
    element = content.find(_EVENT)
    if element is None:
        return
    value = (element.text or "").strip()
    if value in EVENTS[target]:
        return
    if unsupported == "refuse":
        raise ConversionRefused(value, target)
    note = f"personEvent {value} is not in eCH-0223 {target}"
    if _OTHERCASE in EVENTS[target]:
        element.text = _OTHERCASE
        warnings.append(f"{note}: sent as {_OTHERCASE}, with a businessComment saying so")
    else:
        _remove(element)
        if value != _OTHERCASE:
            note += f" (nor is {_OTHERCASE})"
        note += ", so the message has no personEvent"
        warnings.append(f"{note}; the businessComment says so")
    _add_comment(content, note, warnings)


def _add_comment(content: etree._Element, note: str, warnings: list[str]) -> None:
    """Append ``note`` to ``businessComment``, shortening what was there to stay within 1024."""
    business = content.find(_BUSINESS)
    if business is None:  # the last child of content
        business = etree.SubElement(content, _BUSINESS)
    comment = business.find(_COMMENT)
    if comment is None:  # the first child of businessInformation
        comment = etree.Element(_COMMENT)
        business.insert(0, comment)
    before = comment.text or ""
    if not before.strip():
        comment.text = note
        return
    room = COMMENT_MAX - len(note) - 1
    if len(before) > room:
        warnings.append(f"businessComment shortened by {len(before) - room + 1} characters"
                        " to make room for the personEvent note")
        before = before[:room - 1] + "…"
    comment.text = f"{before}\n{note}"


def _date_part(text: str) -> str:
    """The date of an ``xs:dateTime`` as written (local date, no time, no time zone).

    ``T24:00:00`` is the end of its day, the next day's start (XML Schema 1.0): the
    next day's date.
    """
    day, _, time = text.strip().partition("T")
    if time.startswith("24:"):
        try:
            return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        except (ValueError, OverflowError):  # a year Python's dates lack: as written
            return day
    return day


def _midnight(text: str) -> str:
    """An ``xs:date`` as the ``xs:dateTime`` at its start, in its time zone if it has one."""
    found = _XSD_DATE.fullmatch(text.strip())
    if found is None:
        raise InputRejected(f"originalCreationDate {text!r} is not an xs:date",
                            "/personEventMessage/content/document/originalCreationDate")
    return f"{found[1]}T00:00:00{found[2] or ''}"
