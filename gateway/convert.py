"""Stage *convert per partner*: the decision's business fields, then each partner's eCH-0223 version.

The canonical message is eCH-0223 1.5. A decision may attach documents
(files a rule names in the documents folder, :mod:`gateway.documents`) and
set ``businessKey``, ``deadline`` and ``businessComment``: they are written
into the canonical message itself (what the journal and ``messages show`` present is what was
sent). Each partner then gets the message in its own version
(:func:`gateway.ech0223.versions.convert`), validated against that version;
partners on the same version share one conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.contracts import Attachment, Decision, Normalised, PartnerVersion
from gateway.documents import DocumentsFolder, check_named, named_files
from gateway.ech0223.versions import COMMENT_MAX, convert
from gateway.errors import InputRejected
from gateway.xml.problem_text import problems_text

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
#: The canonical version: what normalisers produce and the store keeps.
CANONICAL = "1.5"
#: Validates a parsed tree or XML bytes for an eCH-0223 version; returns the problems.
Validator = Callable[[Any, str], list[str]]
#: businessInformation's children, in schema order, with the decision field that sets each.
_BUSINESS = (("businessComment", "business_comment"), ("businessKey", "business_key"),
             ("encashment", None), ("deadline", "deadline"))
#: What a decision's businessComment is called in the warning when it is cut (a rule's).
RULE_COMMENT = "the rule's comment"


@dataclass(slots=True)
class Payloads:
    """The outcome of the stage for one message.

    :param canonical: the canonical XML when the decision changed it, else ``None``.
    :param by_partner: each partner's payload where it differs from the canonical XML.
    :param warnings: what a conversion dropped or replaced (journaled).
    :param attachments: the files the decision's documents added (sent under ``files/``).
    """

    canonical: bytes | None = None
    by_partner: dict[str, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def partner_payloads(n: Normalised, decision: Decision, targets: Mapping[str, PartnerVersion],
                     validate: Validator, documents: DocumentsFolder | None = None,
                     supplied: Sequence[Attachment] = (),
                     parsed: Callable[[Normalised], Normalised] | None = None,
                     comment_from: str = RULE_COMMENT) -> Payloads:
    """Apply ``decision`` to ``n`` and make each partner's payload, validated.

    :param documents: where the decision's ``documents`` are found (required when it has
        any, or ``supplied`` is not empty).
    :param supplied: document files plugins supplied (``gateway_documents``).
    :param parsed: ``n`` with its tree, for when it travelled without one; a message
        already validated (``n.problems``), unchanged and for 1.5 partners only is
        never parsed again.
    :param comment_from: what the decision's businessComment is called in the warning when
        it is cut to fit after the message's own (a manual send's is the request's).
    :raises InputRejected: the message, or a partner's version of it, is invalid; a
        document the decision names is missing or over the limits; with ``documents``, a
        file the message's documents name is not sent with it (:func:`check_named`).
    :raises ConversionRefused: a partner's policy refuses an event its version lacks.
    """
    out = Payloads()
    if documents is not None and n.attachments:
        documents.check_carried(n.attachments)
    attaching = bool(decision.documents or supplied)
    changing = n.kind == "personEventMessage" and (attaching or bool(_business_fields(decision)))
    if n.problems is not None and n.named_files is not None and not changing and all(
            t.version == CANONICAL for t in targets.values()):
        if n.problems:
            raise InputRejected(f"invalid eCH-0223 {CANONICAL}: "
                                + problems_text(n.problems, CANONICAL))
        if documents is not None:
            check_named(n.named_files, n.attachments)
        return out  # checked in stage one, sent as it is: nothing to parse or validate here
    tree = (parsed(n) if parsed is not None and n.tree is None else n).tree
    assert tree is not None, "the message is parsed in this process before it is converted"
    named = n.named_files if n.named_files is not None else named_files(tree)
    if changing:
        root = _copy(tree.getroot())
        if attaching:
            assert documents is not None, "attaching documents needs the documents folder"
            out.attachments = documents.attach(root, decision.documents, decision.rule,
                                               n.attachments, supplied, [f.path for f in named])
        if _business_fields(decision):
            _with_business(root, decision, out.warnings, comment_from)
        tree = etree.ElementTree(root)
        out.canonical = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    if documents is not None:
        check_named(named, [*n.attachments, *out.attachments])
    # a message unchanged and validated where it was parsed first is not validated again
    problems = (list(n.problems) if n.problems is not None and not changing
                else validate(tree, CANONICAL))
    if problems:
        raise InputRejected(f"invalid eCH-0223 {CANONICAL}: "
                            + problems_text(problems, CANONICAL))
    made: dict[PartnerVersion, bytes] = {}
    for partner, target in sorted(targets.items()):
        if target.version == CANONICAL:
            continue
        if target not in made:
            conversion = convert(tree, target.version, unsupported=target.unsupported_event)
            problems = validate(conversion.xml, target.version)
            if problems:
                raise InputRejected(f"invalid eCH-0223 {target.version} for partner {partner!r}: "
                                    + problems_text(problems, target.version))
            made[target] = conversion.xml
            out.warnings += [f"{partner}: {w}" for w in conversion.warnings]
        out.by_partner[partner] = made[target]
    return out


def _business_fields(decision: Decision) -> dict[str, str]:
    values = {"business_comment": decision.business_comment,
              "business_key": decision.business_key,
              "deadline": decision.deadline.isoformat() if decision.deadline else None}
    return {k: v for k, v in values.items() if v is not None}


def _with_business(root: etree._Element, decision: Decision, warnings: list[str],
                   comment_from: str) -> None:
    """Set the decision's fields in the businessInformation of ``root``.

    The decision's comment follows the message's own, cut to stay within
    :data:`COMMENT_MAX` characters; what is cut of it is appended to ``warnings``
    (journaled), calling the comment ``comment_from``.
    """
    content = root.find(f"{{{NS}}}content")
    if content is None:
        raise InputRejected("personEventMessage without content", "content")
    info = content.find(f"{{{NS}}}businessInformation")
    if info is None:
        info = etree.SubElement(content, f"{{{NS}}}businessInformation")
    fields = _business_fields(decision)
    for tag, name in _BUSINESS:
        if name is None or name not in fields:
            continue
        value = fields[name]
        el = info.find(f"{{{NS}}}{tag}")
        if name == "business_comment" and el is not None and el.text:
            value = f"{el.text}\n{value}"  # the registry's comment stays first
        if el is None:
            el = etree.Element(f"{{{NS}}}{tag}")
            _insert_in_order(info, el, tag)
        if name == "business_comment" and len(value) > COMMENT_MAX:
            ours = fields[name]
            cut = min(len(value) - COMMENT_MAX, len(ours))
            warnings.append(f"businessComment: {cut} of the {len(ours)} characters of"
                            f" {comment_from} cut to stay within {COMMENT_MAX}")
        el.text = value[:COMMENT_MAX] if name == "business_comment" else value


def _insert_in_order(info: etree._Element, el: etree._Element, tag: str) -> None:
    order = [t for t, _ in _BUSINESS]
    later = order[order.index(tag) + 1:]
    for i, child in enumerate(info):
        if etree.QName(child).localname in later:
            info.insert(i, el)
            return
    info.append(el)


def _copy(root: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(root))
