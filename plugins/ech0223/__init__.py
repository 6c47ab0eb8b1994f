"""The eCH-0223 normaliser: input that already is eCH-0223 (XML, or a zip with ``files/``).

Every version is taken; the core gets canonical 1.5. A document with a version
attribute is 1.5 as it is. A versionless one is 1.0, 1.3 or 1.4: from a partner
it must be valid in the version configured for that partner; from anywhere
else it is read as the first of 1.4, 1.3, 1.0 it is valid in. It is then
upgraded to 1.5 (``unsupported_event`` decides about ``changeOccupation``);
the raw bytes stay stored as they were received.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from gateway.api import (
    DOCUMENT_LIMIT,
    Attachment,
    InputRejected,
    NormaliseContext,
    Normalised,
    RawInput,
    check_files,
    header_ids_of,
    hookimpl,
    mask_vn,
    message_subject,
    named_files,
    parse_untrusted,
    problems_text,
    safe_unzip,
    upgrade,
    validate,
    vn_check_digit_ok,
)

from . import _state

log = logging.getLogger(__name__)

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
NS_HEADER = "http://www.ech.ch/xmlns/eCH-0039/3"
ROOTS = {f"{{{NS}}}personEventMessage": "personEventMessage", f"{{{NS}}}eventReport": "eventReport"}
_E39 = f"{{{NS_HEADER}}}"
_ZIP = b"PK\x03\x04"
_HEADER = f"{{{NS}}}header"
_REFERENCE_ID = f"{{{NS_HEADER}}}referenceMessageId"
_ACTION = f"{{{NS_HEADER}}}action"
#: The header's business references, as facts (only those present): a case's keys.
_CASE_FACTS = (("business_process_id", f"{_E39}businessProcessId"),
               ("our_business_reference_id", f"{_E39}ourBusinessReferenceId"),
               ("your_business_reference_id", f"{_E39}yourBusinessReferenceId"))
#: Versionless documents from a source that is not a partner: tried newest first.
_VERSIONLESS = ("1.4", "1.3", "1.0")
#: ``facts["format"]``: rules can tell eCH-0223 input from eCH-0020 and exports.
FORMAT = "eCH-0223"


@hookimpl
def gateway_fact_values() -> Mapping[str, Collection[str]]:
    """``format``: eCH-0223."""
    return {"format": (FORMAT,)}


@hookimpl(trylast=True)
def gateway_normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """Take eCH-0223 as it is; decline XML in any other namespace.

    Last: it refuses whatever is no XML, so every other normaliser (a vendor's JSON
    format) is asked before it, whatever the order plugins were installed in.

    A document refused (invalid in its version, a VN with a wrong check digit...) is
    refused with its header's messageId and senderId, where they can be read: the
    quarantined message keeps them.
    """
    xml, attachments = _unpack(raw.data, context)
    tree = parse_untrusted(xml, max_bytes=context.max_bytes, setting=DOCUMENT_LIMIT)
    root = tree.getroot()
    kind = ROOTS.get(root.tag)
    if kind is None:
        if root.tag.startswith(f"{{{NS}}}"):
            raise InputRejected(f"unknown eCH-0223 root element {root.tag!r};"
                                " expected personEventMessage or eventReport", "line 1")
        return None
    try:
        return _normalised(raw, context, xml, attachments, tree, kind)
    except InputRejected as exc:
        exc.message_id, exc.sender_id = header_ids_of(root)
        raise


def _normalised(raw: RawInput, context: NormaliseContext, xml: bytes,
                attachments: tuple[Attachment, ...], tree: Any, kind: str) -> Normalised:
    """The message of a document whose root is eCH-0223's ``kind``, canonical 1.5."""
    root = tree.getroot()
    version = received = root.get("version")
    upgraded: tuple[str, ...] = ()
    if version is None:
        xml, tree, received, upgraded = _upgraded(raw, context, tree, kind)
        root, version = tree.getroot(), "1.5"
    warnings = (*upgraded, *(_check_files(tree, attachments) if raw.data.startswith(_ZIP) else ()))
    header = root.find(_HEADER)
    message_id, sender_id = header_ids_of(root)
    subject = message_subject(tree)
    _check_vn(subject, kind)
    # what a partner's message says is not kept (gateway.inbound matches it instead)
    persons = _state.stated(root) if kind == "personEventMessage" else ()
    return Normalised(
        kind=kind,
        message_id=message_id,
        xml=xml,
        tree=tree,
        version=version,
        attachments=attachments,
        reference_message_id=_text(header, _REFERENCE_ID),
        action=_text(header, _ACTION),
        subject=subject,
        persons=persons,
        facts={"format": FORMAT, **_case_facts(header)},
        warnings=warnings,
        sender_id=sender_id,
        received_version=None if received == version else received,
    )


def _check_vn(subject: tuple[str, ...], kind: str) -> None:
    """A VN of the person with a wrong EAN-13 check digit is a typo: nobody can be found by it."""
    for key in subject:
        if key.startswith("vn:") and not vn_check_digit_ok(key[3:]):
            part = "content" if kind == "personEventMessage" else "response"
            raise InputRejected(f"VN {mask_vn(key[3:])} has a wrong check digit (EAN-13)",
                                f"/{kind}/{part}/personIdentification/vn")


def _upgraded(raw: RawInput, context: NormaliseContext, tree: Any, kind: str
              ) -> tuple[bytes, Any, str, tuple[str, ...]]:
    """A valid versionless (1.0, 1.3, 1.4) document as canonical 1.5 XML and its tree, the
    version it was read as, and what upgrading it changed beyond the version's form
    (journaled with the message)."""
    partner = context.partners.get(raw.source)
    if partner is not None:
        version, policy = partner.version, partner.unsupported_event
        if version == "1.5":
            fits = [v for v in _VERSIONLESS if not _problems(tree, v)]
            raise InputRejected(
                f"{kind} without version attribute, but partner {raw.source!r} is configured"
                " for eCH-0223 1.5; versions 1.0 to 1.4 have no version attribute: set"
                f" [partners.{raw.source}] ech0223_version to the one it sends"
                + (f" (this file is valid as {_either(fits)}: e.g. ech0223_version ="
                   f' "{fits[0]}")' if fits else ""), f"/{kind}")
        problems = _problems(tree, version)
        if problems:
            raise InputRejected(f"invalid eCH-0223 {version} (the version of partner"
                                f" {raw.source!r}): {problems}")
    else:
        policy = "othercase"
        version = next((v for v in _VERSIONLESS if not _problems(tree, v)), "")
        if not version:
            raise InputRejected(f"{kind} without version attribute is valid in none of eCH-0223"
                                f" {', '.join(_VERSIONLESS)}; as 1.4: {_problems(tree, '1.4')}")
    result = upgrade(tree, version, unsupported=policy)
    for warning in result.warnings:
        log.warning("eCH-0223 %s input %r from %s, upgraded to 1.5: %s",
                    version, raw.ref, raw.source, warning)
    return (result.xml, parse_untrusted(result.xml, max_bytes=len(result.xml)), version,
            tuple(f"upgraded from eCH-0223 {version}: {w}" for w in result.warnings))


def _either(versions: list[str]) -> str:
    """``["1.4", "1.3", "1.0"]`` → ``1.4, 1.3 or 1.0``."""
    return " or ".join(filter(None, (", ".join(versions[:-1]), versions[-1])))


def _problems(tree: Any, version: str) -> str:
    """The first schema errors of ``tree`` as eCH-0223 ``version``, or "" when it is valid."""
    report = validate(tree, ech0223_version=version)
    return problems_text([f"line {e.line}: {e.message}" for e in report.errors], version)


def _unpack(data: bytes, context: NormaliseContext) -> tuple[bytes, tuple[Attachment, ...]]:
    if not data.startswith(_ZIP):
        return data, ()
    files = safe_unzip(data, max_entries=context.max_zip_entries,
                       max_total_bytes=context.max_zip_bytes, max_ratio=context.max_zip_ratio)
    messages = [n for n in files if "/" not in n and n.lower().endswith(".xml")]
    if len(messages) != 1:
        raise InputRejected(f"a zip payload needs exactly one XML message at its root,"
                            f" found {len(messages)}")
    strays = [n for n in files if n not in messages and not n.startswith("files/")]
    if strays:
        raise InputRejected("zip entries outside files/", ", ".join(sorted(strays)[:5]))
    nested = [n for n in files if n.startswith("files/") and "/" in n.removeprefix("files/")]
    if nested:
        raise InputRejected("files in subfolders of files/ are not supported (each document"
                            " file sits in files/ itself)", ", ".join(sorted(nested)[:5]))
    attachments = tuple(Attachment(n.removeprefix("files/"), files[n])
                        for n in sorted(files) if n.startswith("files/"))
    return files[messages[0]], attachments


def _check_files(tree: Any, attachments: tuple[Attachment, ...]) -> tuple[str, ...]:
    """What the message's documents say of the zip's files: a SHA-256 that does not match
    refuses the input (:func:`check_files`); a file named but missing, or sent but not
    named, is a warning (a message sent out is refused for a missing one later)."""
    found = check_files(named_files(tree), attachments)
    return (*(f"document file {f.path!r} is not in the zip (named at {f.where})"
              for f in found.missing),
            *(f"zip file {path!r} is named by no document" for path in found.unnamed))


def _case_facts(header: object) -> dict[str, str]:
    """The business references the header has (the case a message belongs to)."""
    found = {name: _text(header, tag) for name, tag in _CASE_FACTS}
    return {name: value for name, value in found.items() if value}


def _text(parent: object, tag: str) -> str | None:
    if parent is None:
        return None
    el = parent.find(tag)  # type: ignore[attr-defined]
    return el.text.strip() if el is not None and el.text else None
