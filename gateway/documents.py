"""Documents sent with a message: the scans a rule names, as eCH-0039 ``document`` elements plus files.

The files are picked from the documents folder by :mod:`gateway.document_picking`.

Each file becomes a ``document`` (uuid derived from the message and the
file, the file name without its extension as title, ``files/<name>`` as ``pathFileName``, the MIME
type from the file's first bytes (:mod:`gateway.file_kinds`), its SHA-256,
the file's modification time as ``originalCreationDate``) and an :class:`~gateway.contracts.Attachment`,
sent under ``files/`` in the zip payload.

The files a message's own documents name (:func:`named_files`) are held
against the files it comes or goes with by :func:`check_files`: a file that
is not the one its document states (SHA-256) is always refused. A message
sent out must carry every file it names: in its input (a zip's ``files/``),
or picked by a rule or supplied by a plugin under that name
(:func:`check_named`).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.contracts import Attachment, NamedFile
from gateway.document_picking import Limits, message_values, pick
from gateway.ech0223 import Document, File, LangText
from gateway.ech0223.codes import DocumentStatus
from gateway.ech0223.writer import document_element
from gateway.errors import InputRejected
from gateway.file_kinds import content_problem, mime_type

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
_P = f"{{{NS}}}"
#: The namespace of document uuids: ``uuid5(DOCUMENT_NAMESPACE, "<messageId> <name> <sha256>")``.
DOCUMENT_NAMESPACE = uuid.UUID("6f1b8d2e-0039-5c1a-9e23-ec4002230039")
#: eCH-0039 ``hashCodeAlgorithm`` of the hashes the gateway writes.
HASH_ALGORITHM = "SHA-256"
#: What XML Schema collapses in an ``xs:token`` (ASCII space, tab, line feed, carriage return).
_XML_SPACE = re.compile(r"[ \t\n\r]+")
def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file in a message's ``files/`` folder, or ``None``.

    eCH-0039 ``pathFileName`` is an ``xs:token``: a reader collapses its tabs, line breaks
    and runs of spaces into one space and drops those at its ends, and would look for
    another file than the one sent.
    """
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
        return "is not a plain file name"
    collapsed = _XML_SPACE.sub(" ", name).strip(" ")
    if collapsed != name:
        return ("has a tab, a line break, or spaces at its ends or side by side, which"
                " eCH-0039 pathFileName collapses (xs:token): the canton would look for"
                f" {'files/' + collapsed!r}, not this file; rename it")
    return None


def describe(attachment: Attachment, message_id: str, created: datetime, status: DocumentStatus,
             title: str | None = None) -> Document:
    """The eCH-0039 ``document`` of one attached file."""
    digest = hashlib.sha256(attachment.data).hexdigest()
    return Document(
        uuid=str(uuid.uuid5(DOCUMENT_NAMESPACE, f"{message_id} {attachment.name} {digest}")),
        titles=[LangText(text=title or os.path.splitext(attachment.name)[0] or attachment.name)],
        status=status,
        files=[File(path_file_name=f"files/{attachment.name}",
                    mime_type=mime_type(attachment.name, attachment.data),
                    hash_code=digest, hash_code_algorithm=HASH_ALGORITHM)],
        original_creation_date=created,
    )


def named_files(tree: etree._ElementTree) -> tuple[NamedFile, ...]:
    """The files the eCH-0039 documents of the message ``tree`` name, in document order."""
    root = tree.getroot()
    kind = etree.QName(root).localname
    out = []
    documents = (document for content in root.iterchildren(f"{_P}content")
                 for document in content.iterchildren(f"{_P}document"))  # no path to compile
    for i, document in enumerate(documents, 1):
        for j, el in enumerate(document.iterfind("{*}files/{*}file"), 1):
            algorithm = (el.findtext("{*}hashCodeAlgorithm") or "").replace("-", "").upper()
            stated = (el.findtext("{*}hashCode") or "").strip().lower()
            out.append(NamedFile((el.findtext("{*}pathFileName") or "").strip(),
                                 stated if algorithm == "SHA256" and stated else None,
                                 f"/{kind}/content/document[{i}]/files/file[{j}]/pathFileName"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The files a message is sent with, held against the files its documents name.

    :param missing: the named files that are not sent, in document order.
    :param unnamed: the files sent (``files/<name>``) that no document names, sorted.
    """

    missing: tuple[NamedFile, ...]
    unnamed: tuple[str, ...]


def check_files(named: Sequence[NamedFile], files: Sequence[Attachment]) -> FileCheck:
    """Hold ``files`` against the files a message's documents name (:func:`named_files`).

    A file that is not the one its document states (SHA-256) is refused, whoever
    asks. What is missing or named by no document is for the caller to judge: a
    message sent out must carry every file it names (:func:`check_named`); of what
    an eCH-0223 zip brings in, both are warnings.

    :param files: the files the message is sent with (each under ``files/<name>``).
    :raises InputRejected: a file does not match its document's SHA-256, naming the
        file and where the message names it.
    """
    sent = {f"files/{a.name}": a.data for a in files}
    missing = []
    for f in named:
        data = sent.get(f.path)
        if data is None:
            missing.append(f)
        elif f.sha256 is not None and hashlib.sha256(data).hexdigest() != f.sha256:
            raise InputRejected(f"{f.path} does not match its document's SHA-256 hashCode"
                                " (damaged or replaced)", f.where)
    paths = {f.path for f in named}
    return FileCheck(tuple(missing), tuple(p for p in sorted(sent) if p not in paths))


def check_named(named: Sequence[NamedFile], files: Sequence[Attachment]) -> None:
    """Refuse a message whose documents name a file it is not sent with, or not that file.

    :param files: every file the message is sent with: carried by its input, picked
        by rules, supplied by plugins (each under ``files/<name>``).
    :raises InputRejected: naming the file and where the message names it.
    """
    missing = check_files(named, files).missing
    if missing:
        f = missing[0]
        raise InputRejected(
            f"document file {f.path!r} is not in the message's payload: the input does"
            " not carry it and no rule or documents plugin supplies it; send the message"
            f" again as a zip with {f.path} (messages resubmit ID FILE.zip), or put the file"
            " where a rule takes it and replay",
            f.where)


def add_documents(root: etree._Element, documents: Sequence[Document]) -> None:
    """Add ``documents`` to the message ``root`` after its other documents (schema order).

    :raises InputRejected: the message has no ``content``.
    """
    content = root.find(f"{_P}content")
    if content is None:
        raise InputRejected("personEventMessage without content", "content")
    info = content.find(f"{_P}businessInformation")
    for document in documents:
        el = document_element(document)
        if info is not None:
            info.addprevious(el)
        else:
            content.append(el)


@dataclass(frozen=True, slots=True)
class DocumentsFolder:
    """Where rules' documents come from, and what an attached document may be."""

    dir: Path
    limits: Limits
    status: DocumentStatus = "undefined"
    #: Seconds a document must be unmodified to be taken as completely written.
    settle: float = 0.0

    def attach(self, root: etree._Element, patterns: Sequence[str], rule: str,
               taken: Sequence[Attachment] = (), supplied: Sequence[Attachment] = (),
               named: Collection[str] = ()) -> list[Attachment]:
        """Add the documents ``patterns`` name, then ``supplied``, to the message ``root``.

        :param taken: the attachments the message has already (from its input).
        :param supplied: files plugins supplied (``gateway_documents``).
        :param named: the paths (``files/<name>``) the message's own documents name: a
            file that fills one is sent, not described by a second document.
        :return: the files to send besides ``taken``.
        :raises InputRejected: see :func:`pick`; also more or larger files than the limits
            in all, or a file name that is not plain or not unique in the message.
        """
        values = message_values(root.getroottree())
        picked = pick(self.dir, patterns, values, rule, Limits(
            self.limits.max_files - len(taken),
            self.limits.max_bytes - sum(len(a.data) for a in taken)), self.settle
        ) if patterns else []
        for a in supplied:
            problem = content_problem(a.name, a.data)
            if problem is not None:
                raise InputRejected(f"{rule}: document {a.name!r} from a documents plugin:"
                                    f" {problem}")
        now = datetime.now().astimezone()
        new = picked + [(a, now) for a in supplied]
        _check_all(rule, list(taken), [a for a, _m in new], self.limits)
        message_id = values.get("message_id", "")
        add_documents(root, [describe(a, message_id, modified, self.status)
                             for a, modified in new if f"files/{a.name}" not in named])
        return [a for a, _modified in new]


    def check_carried(self, carried: Sequence[Attachment]) -> None:
        """Refuse a message whose input brought more or larger files than ``[limits]`` allow.

        :raises InputRejected: naming the limit.
        """
        _check_all("the files of the input", [], list(carried), self.limits)


def _check_all(rule: str, taken: list[Attachment], new: list[Attachment], limits: Limits) -> None:
    """Refuse what the message cannot carry in all: too many, too large, names files/ cannot hold."""
    every = taken + new
    if len(every) > limits.max_files:
        raise InputRejected(f"{rule}: {len(every)} documents, more than [limits] max_attachments"
                            f" ({limits.max_files})")
    if sum(len(a.data) for a in every) > limits.max_bytes:
        raise InputRejected(f"{rule}: documents larger than [limits] max_attachment_bytes"
                            f" ({limits.max_bytes} bytes) in all")
    seen = {a.name for a in taken}
    for a in new:
        problem = name_problem(a.name)
        if problem is not None:
            raise InputRejected(f"{rule}: document name {a.name!r} {problem}")
        if not a.data:
            raise InputRejected(f"{rule}: document {a.name!r} is empty (0 bytes)")
        if a.name in seen:
            raise InputRejected(f"{rule}: two documents are named {a.name!r}; the files/ folder"
                                " of a message holds each name once")
        seen.add(a.name)


def folder_of(settings: Any) -> DocumentsFolder:
    """The documents folder and limits of ``settings`` (``[documents]``, ``[limits]``)."""
    return DocumentsFolder(settings.documents.dir, limits_of(settings), settings.documents.status,
                           settings.documents.settle)


def limits_of(settings: Any) -> Limits:
    """The attachment limits of ``[limits]``."""
    return Limits(settings.limits.max_attachments, int(settings.limits.max_attachment_bytes))
