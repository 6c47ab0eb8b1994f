"""Picking the scans a rule names from the documents folder, each read only once complete.

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
``messages replay`` sends it once the scan is done. Nothing half-written is sent,
nor a file that is not what its name says (:func:`gateway.file_kinds.content_problem`:
a ``.pdf`` that holds no PDF).

What becomes of the files picked: :mod:`gateway.documents`.
"""

from __future__ import annotations

import glob
import os
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from gateway.contracts import Attachment
from gateway.ech0223.namespaces import NS
from gateway.errors import InputRejected
from gateway.file_kinds import content_problem
from gateway.fileio import read_file
from gateway.filetake import name_matches

_P = f"{{{NS.ECH_0223}}}"
#: The placeholders a documents pattern may use.
PLACEHOLDERS = ("vn", "vn_dotted", "local_id", "message_id", "reference", "event")


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
    if pattern.startswith("/"):
        return ("must be a path inside the documents folder, relative to it: no leading /"
                " (\"{vn}/*.pdf\", not \"/{vn}/*.pdf\")")
    if "\\" in pattern:
        return "must be a path inside the documents folder: folders are separated by /, not \\"
    if ".." in pattern.split("/"):
        return "must be a path inside the documents folder: no .. (a folder above it)"
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
    budget = limits.max_bytes
    for path in chosen:  # (two of one name: refused with the others the message carries)
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
            why = "is '.' or '..'" if value in (".", "..") else "holds a '/' or '\\'"
            raise InputRejected(f"{rule}: {{{name}}} of this message cannot be part of a file"
                                f" name: its value {why}")
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
    problem = content_problem(path.name, data)
    if problem is not None:
        raise InputRejected(f"{rule}: document {path}: {problem}; put the right file there and"
                            " replay the message")
    return data, datetime.fromtimestamp(before.st_mtime, UTC).astimezone()


def _unsettled(path: Path, rule: str, how: str) -> InputRejected:
    return InputRejected(f"{rule}: document {path} {how}: it may still be being written, so"
                         " the message was not sent; once the file is complete,"
                         " `ech-gateway messages replay ID` sends it")
