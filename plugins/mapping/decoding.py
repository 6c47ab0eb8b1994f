"""An export's bytes as text in the mapping's encoding, or InputRejected saying why not;
the signs in a name that show the encoding is not the export's."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from gateway.api import InputRejected
from plugins.mapping.values import Mismatch

_BOM = b"\xef\xbb\xbf"
#: The byte order marks of UTF-16 (little and big endian), e.g. Excel's "Unicode text".
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: How a spreadsheet workbook starts, saved under an export's name instead of as CSV.
_WORKBOOKS = ((b"PK\x03\x04", "a zip file, as an Excel workbook (.xlsx) is"),
              (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel workbook of the old kind (.xls)"))
#: The bytes ISO 8859 encodings read as C1 control characters, Windows-1252 as letters
#: and signs (€, Š, Ž, „, ...).
_C1 = re.compile(rb"[\x80-\x9f]")
_SET_UTF8 = ' (set encoding = "utf-8" in the mapping if the export is written so)'
_SET_1252 = ' (set encoding = "windows-1252" in the mapping if the export is written so)'
_SET_LATIN9 = ' (set encoding = "iso-8859-15" in the mapping if the export is written so)'
#: The bytes ISO-8859-15 reads otherwise than Latin-1 and Windows-1252: as € Š š Ž ž Œ œ Ÿ,
#: where those read the signs ¤ ¦ ¨ ¼ ½ ¾, an acute accent and a cedilla.
_LATIN9 = bytes(b for b in range(0xA0, 0x100)
                if bytes([b]).decode("iso8859-15") != bytes([b]).decode("latin-1"))
#: DOS text (cp850, as Excel's "CSV (MS-DOS)" and older registry software write it):
#: what an export in it is said to look like, and the key to set.
_DOS = 'DOS text (cp850, as Excel\'s "CSV (MS-DOS)" writes)'
_SET_DOS = ' (set encoding = "cp850" in the mapping if the export is written so)'
#: The bytes where DOS text has letters (ä ö é à ç ê ...) and Windows-1252 signs that are
#: in no name („ ” … ‡ ...): a DOS export read as Windows-1252 has them.
_DOS_LETTERS = bytes([0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8B, 0x93, 0x94, 0x95,
                      0x98, 0x99, 0x9B])
#: The bytes Windows-1252 has no character for, where DOS text has ü, ì, Å, É and Ø.
_NOT_1252 = frozenset((0x81, 0x8D, 0x8F, 0x90, 0x9D))
#: What an export is said to look like when a name has signs of another encoding: the
#: codec that reads its letters there, how a reason names it, and the key to set.
_LOOKS_LIKE = {"iso8859-15": ("ISO-8859-15", _SET_LATIN9), "cp850": (_DOS, _SET_DOS)}


def export_text(data: bytes, export_format: str, encoding: str) -> tuple[str, str | None]:
    """The text of an export in ``encoding`` (a codec name, see
    :func:`plugins.mapping.spec.text_encoding`), and ``encoding`` again; None instead
    for a file that starts with a UTF-8 byte order mark: it is read as UTF-8 whatever the
    mapping says, as the mark says so beyond doubt.

    :raises InputRejected: a spreadsheet workbook (xlsx, xls); UTF-16 (as its byte
        order mark says); UTF-8 where the mapping names another encoding; bytes the
        encoding cannot read, or reads as control characters (Windows-1252 text in an
        ISO 8859 encoding).
    """
    _refuse_workbook(data, export_format)
    if data.startswith(_UTF16_BOMS):  # else read as bytes of a header that lacks every column
        raise InputRejected("the export is UTF-16 text (its byte order mark says so);"
                            " save it as UTF-8 or Windows-1252")
    body = data.removeprefix(_BOM)
    skipped = len(data) - len(body)
    named: str | None = encoding
    if skipped:  # a UTF-8 byte order mark: UTF-8 whatever the mapping says
        encoding, named = "utf-8", None
        hint = ", yet the file starts with a UTF-8 byte order mark"
    elif encoding != "utf-8" and not body.isascii() and _is_utf8(body):
        raise InputRejected(f"the export is UTF-8 text, the mapping says {encoding}{_SET_UTF8}")
    else:
        hint = _SET_1252 if encoding == "utf-8" else ""
    control = _C1.search(body) if _reads_c1_as_controls(encoding) else None
    if control is not None:
        raise InputRejected(f"byte 0x{control[0][0]:02x} is a control character in {encoding},"
                            f" no letter: the export is Windows-1252 text{_SET_1252}",
                            f"byte {control.start() + skipped}")
    try:
        return body.decode(encoding), named
    except UnicodeDecodeError as exc:
        byte = body[exc.start]
        if encoding == "cp1252" and byte in _NOT_1252:
            hint = (f", where {_DOS} has {bytes([byte]).decode('cp850')!r}: the file looks"
                    f" like it{_SET_DOS}")
        raise InputRejected(f"not {encoding} text: byte 0x{byte:02x}{hint}",
                            f"byte {exc.start + skipped}") from None


class EncodingMismatch(Mismatch):
    """A sign in a name, place or street that shows text of the encoding ``looks_like``
    (ISO-8859-15, DOS text) read as ``encoding``: ``¦`` where an ISO-8859-15 export wrote
    ``Š``, ``„`` where a DOS export wrote ``ä`` (:func:`mixed_encoding`)."""

    def __init__(self, sign: str, encoding: str, looks_like: str = "iso8859-15") -> None:
        self.raw, self.encoding, self.looks_like = sign, encoding, looks_like
        super().__init__(self.said([sign]))

    @property
    def kind(self) -> tuple[str, str, str]:
        """The encoding the export was read in and the one it looks like, whatever the sign."""
        return "encoding", self.encoding, self.looks_like

    def said(self, raws: Sequence[str]) -> str:
        """The signs (each once), their bytes, and what the encoding it looks like reads there."""
        signs = list(dict.fromkeys(raws))
        data = [sign.encode(self.encoding)[0] for sign in signs]
        letters = ", ".join(repr(bytes([byte]).decode(self.looks_like)) for byte in data)
        name, key = _LOOKS_LIKE[self.looks_like]
        if len(signs) == 1:
            return (f"{signs[0]!r} (byte 0x{data[0]:02x} in {self.encoding}) is in no name,"
                    f" place or street: the file looks like {name}, where byte"
                    f" 0x{data[0]:02x} is {letters}{key}")
        found = ", ".join(f"{sign!r} (byte 0x{byte:02x})" for sign, byte in zip(
            signs, data, strict=True))
        return (f"{found} in {self.encoding} are in no name, place or street: the file looks"
                f" like {name}, where those bytes are {letters}{key}")


def mixed_encoding(text: str, encoding: str) -> str:
    """``text``, a name, place or street read in ``encoding`` (the mapping's), unless it
    has a sign that ``encoding`` reads where ISO-8859-15 reads a letter: ``¦`` for ``Š``,
    ``¨`` for ``š``, ``½`` for ``œ``, ``¤`` for ``€`` ... (see :data:`_LATIN9`); or, read
    as Windows-1252, where DOS text (cp850) has one: ``„`` for ``ä``, ``”`` for ``ö``,
    ``…`` for ``à`` ... (see :data:`_DOS_LETTERS`). No name in a register has one; an
    export in the other encoding has them where its letters are.

    :raises EncodingMismatch: naming the first such sign.
    """
    if text.isascii():
        return text
    signs = _latin9_signs(encoding)
    found = signs.search(text) if signs is not None else None
    if found is not None:
        raise EncodingMismatch(found.group(), encoding)
    found = _DOS_SIGNS.search(text) if encoding == "cp1252" else None
    if found is not None:
        raise EncodingMismatch(found.group(), encoding, "cp850")
    return text


#: What Windows-1252 reads where DOS text has letters (see :data:`_DOS_LETTERS`).
_DOS_SIGNS = re.compile(f"[{re.escape(_DOS_LETTERS.decode('cp1252'))}]")


@functools.cache
def _latin9_signs(encoding: str) -> re.Pattern[str] | None:
    """The signs ``encoding`` reads where ISO-8859-15 reads letters, if it reads all of
    them as Latin-1 does (Windows-1252 does); None for another encoding (UTF-8, ISO-8859-15,
    ISO-8859-2, which reads letters there too)."""
    if encoding == "utf-8":
        return None
    read = _LATIN9.decode(encoding, errors="replace")
    return re.compile(f"[{re.escape(read)}]") if read == _LATIN9.decode("latin-1") else None


def reread(value: Any, was: str, now: str) -> Any:
    """``value`` (a record's values, as ``was`` read them from the export) as ``now`` reads
    the same bytes: for a row replayed after its mapping's encoding changed (as a reason
    of :class:`EncodingMismatch` or :func:`export_text` asked).

    :raises ValueError: ``now`` cannot read a value's bytes, or reads a control character
        there; a value holds a character ``was`` does not write (a JSON ``\\u`` escape):
        the bytes it came from are unknown.
    """
    if isinstance(value, dict):
        return {reread(k, was, now): reread(v, was, now) for k, v in value.items()}
    if isinstance(value, list):
        return [reread(item, was, now) for item in value]
    if not isinstance(value, str) or value.isascii():
        return value
    try:
        data = value.encode(was)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{value[exc.start]!r} is no character of {was}, which the row was"
                         f" read in; {now}, which the mapping names now, cannot read it again:"
                         " resubmit the export") from None
    control = _C1.search(data) if _reads_c1_as_controls(now) else None
    if control is not None:
        raise ValueError(f"byte 0x{control[0][0]:02x} is a control character in {now}, no"
                         f" letter: the export is Windows-1252 text{_SET_1252}")
    try:
        return data.decode(now)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not {now} text: byte 0x{data[exc.start]:02x}") from None


def _refuse_workbook(data: bytes, export_format: str) -> None:
    """Refuse a workbook saved instead of an export: a byte of it that is not in the
    encoding, or a header that lacks every column, would send the operator the wrong way."""
    workbook = next((what for start, what in _WORKBOOKS if data.startswith(start)), None)
    if workbook is not None:
        name = export_format.upper()
        excel = ' (in Excel: "CSV (Trennzeichen-getrennt)" or "CSV UTF-8")' if (
            export_format == "csv") else ""
        raise InputRejected(f"the export is {workbook}, not {name} text; save it as {name}{excel}")


@functools.cache
def _reads_c1_as_controls(encoding: str) -> bool:
    """Whether ``encoding`` reads every byte 0x80 to 0x9f as a C1 control character, as
    ISO 8859 (latin-1, iso8859-15, ...) does: a registry's text has none of them."""
    if encoding == "utf-8":
        return False
    read = bytes(range(0x80, 0xA0)).decode(encoding, errors="replace")
    return all(0x80 <= ord(char) <= 0x9F for char in read)


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8: text in a single-byte encoding practically never is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
