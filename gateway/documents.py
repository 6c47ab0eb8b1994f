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
scans, ``permit-{vn}-*.pdf``) and match names in any case, as a source's
patterns do (``*.pdf`` takes ``SCAN.PDF``). Every pattern must match at least one file:
a missing scan quarantines the message with the rule and the file named, it
is never sent without it (put the file there, then ``messages replay``).
Links are not followed: a link (or a file in a linked folder) that a pattern
matches quarantines the message too, naming it.

A file must be complete: an empty one (0 bytes) is refused, and so is one
modified less than ``[documents] settle`` seconds ago, or while it is read
(a scanner writes in place): the message is quarantined naming the file, and
``messages replay`` sends it once the scan is done. Nothing half-written is sent.

Each file becomes a ``document`` (uuid derived from the message and the
file, the file name as title, ``files/<name>`` as ``pathFileName``, the MIME
type from the file's first bytes, its SHA-256, the file's modification time
as ``originalCreationDate``) and an :class:`~gateway.contracts.Attachment`,
sent under ``files/`` in the zip payload.

The files a message's own documents name (:func:`named_files`) are held
against the files it comes or goes with by :func:`check_files`: a file that
is not the one its document states (SHA-256) is always refused. A message
sent out must carry every file it names: in its input (a zip's ``files/``),
or picked by a rule or supplied by a plugin under that name
(:func:`check_named`).
"""

from __future__ import annotations

import glob
import hashlib
import mimetypes
import os
import string
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.contracts import Attachment, NamedFile
from gateway.ech0223 import Document, File, LangText
from gateway.ech0223.codes import DocumentStatus
from gateway.ech0223.writer import document_element
from gateway.errors import InputRejected
from gateway.fileio import read_file
from gateway.filetake import name_matches

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
    if pattern.split("/")[-1] in ("", "."):
        return "must name files: end in a file name or glob (\"{vn}/*.pdf\", not \"{vn}/\")"
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
         limits: Limits, settle: float = 0.0) -> list[tuple[Attachment, datetime]]:
    """The files ``patterns`` name for a message with placeholder ``values``, read.

    :param settle: seconds a file must be unmodified to be taken as complete.
    :return: each file as an attachment, with its modification time; in pattern order.
    :raises InputRejected: a pattern matches no file (the reason names ``rule``, the
        pattern and the file looked for) or matches a link, needs a value the message
        lacks, the files are more or larger than ``limits``, or one is empty or still
        being written.
    """
    chosen: dict[Path, None] = {}
    for pattern in patterns:
        resolved = _resolve(pattern, values, rule)
        found = sorted({p for p in _glob(folder, resolved) if p.is_symlink() or p.is_file()})
        linked = [p for p in found if not _inside(p, folder)]
        if linked:
            raise InputRejected(f"{rule}: document {linked[0]} is a link (or in a linked folder):"
                                f" only files in {folder} itself are sent (pattern {pattern!r});"
                                " put the file there in its place and replay the message")
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
        data, modified = _read(path, budget, rule, settle)
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


def _glob(folder: Path, pattern: str) -> list[Path]:
    """The paths under ``folder`` that ``pattern`` names, each name matched in any case as a
    source's patterns are (:func:`~gateway.filetake.name_matches`); ``**`` is this folder and
    every folder below it. Folders are entered through links (what is found in one is then
    refused as linked), except by ``**``."""
    places = [folder]
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    for n, part in enumerate(parts):
        if part == "**":
            places = [Path(top) for place in places for top, _dirs, _files in os.walk(place)]
            continue
        last = n == len(parts) - 1
        places = [Path(entry.path) for place in places for entry in _entries(place)
                  if name_matches(entry.name, part) and (last or entry.is_dir())]
    return places


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder``; none if it cannot be listed (as a glob passes it over)."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _inside(path: Path, folder: Path) -> bool:
    """A regular file (not a link) inside ``folder``."""
    return not path.is_symlink() and path.is_file() and path.resolve().is_relative_to(
        folder.resolve())


def _read(path: Path, budget: int, rule: str, settle: float) -> tuple[bytes, datetime]:
    """The bytes of a complete document: not empty, not modified for ``settle`` s nor while read."""
    try:
        before = path.stat()
        age = time.time() - before.st_mtime
        if abs(age) < settle:
            raise _unsettled(path, rule, f"was modified {max(age, 0):.1f} s ago, less than"
                             f" [documents] settle ({settle:g} s)")
        data = read_file(path, budget)
        after = path.stat()
    except OSError as exc:
        raise InputRejected(f"{rule}: cannot read document {path}: {exc.strerror or exc}") from exc
    if data is None:
        raise InputRejected(f"{rule}: documents larger than [limits] max_attachment_bytes"
                            f" in all, at {path.name}")
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise _unsettled(path, rule, "changed while it was read")
    if not data:
        raise InputRejected(f"{rule}: document {path} is empty (0 bytes: a scan that failed?);"
                            " put the complete file there and replay the message")
    return data, datetime.fromtimestamp(before.st_mtime, UTC).astimezone()


def _unsettled(path: Path, rule: str, how: str) -> InputRejected:
    return InputRejected(f"{rule}: document {path} {how}: it may still be being written, so"
                         " the message was not sent; once the file is complete,"
                         " `ech-gateway messages replay ID` sends it")


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
            f" as a zip with {f.path}, or put the file where a rule takes it, and replay",
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
        if a.name in ("", ".", "..") or "/" in a.name or "\\" in a.name or "\x00" in a.name:
            raise InputRejected(f"{rule}: document name {a.name!r} is not a plain file name")
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
