"""What a document file is: its MIME type from its first bytes, and whether its name says so.

A scanner that failed leaves a file that only looks like a scan (a web page
saved as ``scan.pdf``, a photo renamed ``.pdf``): the canton could not open
it and would answer with a negative eventReport. For the kinds known by their
first bytes (PDF, PNG, JPEG, TIFF, GIF), a file whose name promises one kind
and whose bytes are another, or none of them, is not sent (:func:`content_problem`).
"""

from __future__ import annotations

import mimetypes

#: File signatures, for a MIME type that does not depend on the file's name alone.
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"\xff\xd8\xff", "image/jpeg"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
          (b"II+\x00", "image/tiff"), (b"MM\x00+", "image/tiff"), (b"GIF8", "image/gif"))
#: The kinds a file's first bytes tell.
_KNOWN = frozenset(kind for _magic, kind in _MAGIC)
#: How far into a file PDF readers look for its ``%PDF-`` header.
_PDF_HEAD = 1024


def sniffed(data: bytes) -> str | None:
    """The MIME type the first bytes of ``data`` tell, if they tell one."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "application/pdf" if b"%PDF-" in data[:_PDF_HEAD] else None


def mime_type(name: str, data: bytes) -> str:
    """The MIME type of a file: from its first bytes, else from its name."""
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return sniffed(data) or guessed or "application/octet-stream"


def content_problem(name: str, data: bytes) -> str | None:
    """Why the file ``name`` is not what its name says, or ``None``.

    Only a name of a kind the first bytes tell (``.pdf``, ``.png``, ``.jpg``, ``.tif``,
    ``.gif``) is held to them; other names (``.docx``, ``.txt``) are taken as they are. An
    empty file is for the caller to refuse as empty.
    """
    named, _encoding = mimetypes.guess_type(name, strict=False)
    if named not in _KNOWN or not data:
        return None
    found = sniffed(data)
    if found == named:
        return None
    if found is not None:
        return (f"its name says {named}, but its bytes are {found} (renamed?): send it under"
                " a name that says what it is")
    return (f"its name says {named}, but its bytes are not (they start {data[:8]!r}: a scan"
            " that failed, or another file saved under its name)")
