"""Documents sent with a message: scans a rule names, as eCH-0039 ``document`` elements plus files.

A rule's ``then.documents`` lists file patterns, relative to the documents
folder (``[documents] dir``). A commune files scans per person or per case,
so a pattern names the files of *this* message through placeholders:

- ``{vn}``: the person's VN, 13 digits (``7561234567897``);
- ``{vn_dotted}``: the VN as printed on the card (``756.1234.5678.97``);
- ``{local_id}``: the person's local id in the registry (``personId``);
- ``{message_id}``: the eCH-0223 ``messageId``;
- ``{reference}``: the header's ``ourBusinessReferenceId`` (for an eCH-0020
  event, the registry's own message id: the case);
- ``{event}``: the eCH-0223 ``personEvent``.

Patterns may use glob wildcards (``{vn}/*.pdf``: the folder of the person's
scans, ``permit-{vn}-*.pdf``). Every pattern must match at least one file:
a missing scan quarantines the message with the rule and the file named, it
is never sent without it (put the file there, then ``messages replay``).

Each file becomes a ``document`` (uuid derived from the message and the
file, the file name as title, ``files/<name>`` as ``pathFileName``, the MIME
type from the file's first bytes, its SHA-256, the file's modification time
as ``originalCreationDate``) and an :class:`~gateway.contracts.Attachment`,
sent under ``files/`` in the zip payload.
"""

from __future__ import annotations

import glob
import hashlib
import mimetypes
import os
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.contracts import Attachment
from gateway.ech0223 import Document, File, LangText
from gateway.ech0223.codes import DocumentStatus
from gateway.ech0223.writer import document_element
from gateway.errors import InputRejected
from gateway.fileio import read_file

NS = "http://www.ech.ch/xmlns/eCH-0223/1"
_P = f"{{{NS}}}"
#: The placeholders a documents pattern may use.
PLACEHOLDERS = ("vn", "vn_dotted", "local_id", "message_id", "reference", "event")
#: The namespace of document uuids: ``uuid5(DOCUMENT_NAMESPACE, "<messageId> <name> <sha256>")``.
DOCUMENT_NAMESPACE = uuid.UUID("6f1b8d2e-0039-5c1a-9e23-ec4002230039")
#: eCH-0039 ``hashCodeAlgorithm`` of the hashes the gateway writes.
HASH_ALGORITHM = "SHA-256"
#: File signatures, for a MIME type that does not depend on the file's name alone.
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"\xff\xd8\xff", "image/jpeg"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
          (b"GIF8", "image/gif"))


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a message may carry: the most files, and the most bytes of all of them."""

    max_files: int
    max_bytes: int


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a documents pattern, or ``None`` when it can."""
    try:
        names = [name for _text, name, _spec, _conv in string.Formatter().parse(pattern)
                 if name is not None]
    except ValueError as exc:
        return f"not a pattern: {exc}"
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        return (f"unknown placeholder {{{unknown[0]}}}; placeholders: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    if pattern.startswith("/") or "\\" in pattern or ".." in pattern.split("/"):
        return "must be a path inside the documents folder (no /, \\ or .. )"
    return None


def message_values(tree: etree._ElementTree) -> dict[str, str]:
    """The placeholder values the message ``tree`` has (a value it lacks is absent)."""
    root = tree.getroot()
    ident = root.find(f"{_P}content/{_P}personIdentification")
    values: dict[str, str | None] = {
        "message_id": root.findtext(f"{_P}header/{{*}}messageId"),
        "reference": root.findtext(f"{_P}header/{{*}}ourBusinessReferenceId"),
        "event": root.findtext(f"{_P}content/{_P}personEvent"),
    }
    if ident is not None:
        vn = ident.findtext("{*}vn")
        values["vn"] = vn
        values["vn_dotted"] = f"{vn[:3]}.{vn[3:7]}.{vn[7:11]}.{vn[11:]}" if vn else None
        values["local_id"] = ident.findtext("{*}localPersonId/{*}personId")
    return {k: v.strip() for k, v in values.items() if v is not None and v.strip()}


def pick(folder: Path, patterns: Sequence[str], values: Mapping[str, str], rule: str,
         limits: Limits) -> list[tuple[Attachment, datetime]]:
    """The files ``patterns`` name for a message with placeholder ``values``, read.

    :return: each file as an attachment, with its modification time; in pattern order.
    :raises InputRejected: a pattern matches no file (the reason names ``rule``, the
        pattern and the file looked for), needs a value the message lacks, or the
        files are more or larger than ``limits``.
    """
    chosen: dict[Path, None] = {}
    for pattern in patterns:
        resolved = _resolve(pattern, values, rule)
        found = sorted(p for p in folder.glob(resolved) if _inside(p, folder))
        if not found:
            raise InputRejected(f"{rule}: document {resolved!r} not found in {folder}"
                                f" (pattern {pattern!r}); put the file there and replay the message")
        chosen.update(dict.fromkeys(found))
    if len(chosen) > limits.max_files:
        raise InputRejected(f"{rule}: {len(chosen)} documents, more than [limits] max_attachments"
                            f" ({limits.max_files})")
    out: list[tuple[Attachment, datetime]] = []
    names: set[str] = set()
    budget = limits.max_bytes
    for path in chosen:
        if path.name in names:
            raise InputRejected(f"{rule}: two documents are named {path.name!r}; the files/ folder"
                                " of a message holds each name once")
        names.add(path.name)
        data, modified = _read(path, budget, rule)
        budget -= len(data)
        out.append((Attachment(path.name, data), modified))
    return out


def _resolve(pattern: str, values: Mapping[str, str], rule: str) -> str:
    """``pattern`` with its placeholders filled in (values glob-escaped)."""
    wanted = [name for _t, name, _s, _c in string.Formatter().parse(pattern) if name]
    lacking = [name for name in wanted if name not in values]
    if lacking:
        raise InputRejected(f"{rule}: documents pattern {pattern!r} needs {{{lacking[0]}}},"
                            " which this message does not have")
    safe = {}
    for name in wanted:
        value = values[name]
        if "/" in value or "\\" in value or value in (".", ".."):
            raise InputRejected(f"{rule}: {{{name}}} of this message cannot be part of a file name")
        safe[name] = glob.escape(value)
    return pattern.format(**safe)


def _inside(path: Path, folder: Path) -> bool:
    """A regular file (not a link) inside ``folder``."""
    return not path.is_symlink() and path.is_file() and path.resolve().is_relative_to(
        folder.resolve())


def _read(path: Path, budget: int, rule: str) -> tuple[bytes, datetime]:
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).astimezone()
        data = read_file(path, budget)
    except OSError as exc:
        raise InputRejected(f"{rule}: cannot read document {path}: {exc.strerror or exc}") from exc
    if data is None:
        raise InputRejected(f"{rule}: documents larger than [limits] max_attachment_bytes"
                            f" in all, at {path.name}")
    return data, modified


def mime_type(name: str, data: bytes) -> str:
    """The MIME type of a file: from its first bytes, else from its name."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


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

    def attach(self, root: etree._Element, patterns: Sequence[str], rule: str,
               taken: Sequence[Attachment] = (), supplied: Sequence[Attachment] = ()
               ) -> list[Attachment]:
        """Add the documents ``patterns`` name, then ``supplied``, to the message ``root``.

        :param taken: the attachments the message has already (from its input).
        :param supplied: files plugins supplied (``gateway_documents``).
        :return: the files to send besides ``taken``.
        :raises InputRejected: see :func:`pick`; also more or larger files than the limits
            in all, or a file name that is not plain or not unique in the message.
        """
        values = message_values(root.getroottree())
        picked = pick(self.dir, patterns, values, rule, Limits(
            self.limits.max_files - len(taken),
            self.limits.max_bytes - sum(len(a.data) for a in taken))) if patterns else []
        now = datetime.now().astimezone()
        new = picked + [(a, now) for a in supplied]
        _check_all(rule, list(taken), [a for a, _m in new], self.limits)
        message_id = values.get("message_id", "")
        add_documents(root, [describe(a, message_id, modified, self.status)
                             for a, modified in new])
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
        if a.name in ("", ".", "..") or "/" in a.name or "\\" in a.name or "\x00" in a.name:
            raise InputRejected(f"{rule}: document name {a.name!r} is not a plain file name")
        if a.name in seen:
            raise InputRejected(f"{rule}: two documents are named {a.name!r}; the files/ folder"
                                " of a message holds each name once")
        seen.add(a.name)


def folder_of(settings: Any) -> DocumentsFolder:
    """The documents folder and limits of ``settings`` (``[documents]``, ``[limits]``)."""
    return DocumentsFolder(settings.documents.dir, limits_of(settings), settings.documents.status)


def limits_of(settings: Any) -> Limits:
    """The attachment limits of ``[limits]``."""
    return Limits(settings.limits.max_attachments, int(settings.limits.max_attachment_bytes))
