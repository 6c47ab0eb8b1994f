"""An export's bytes as text in the mapping's encoding, or InputRejected saying why not."""

from __future__ import annotations

import functools
import re

from gateway.api import InputRejected

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


def export_text(data: bytes, export_format: str, encoding: str) -> str:
    """The text of an export in ``encoding`` (a codec name, see
    :func:`plugins.mapping.spec.text_encoding`).

    A file that starts with a UTF-8 byte order mark is read as UTF-8 whatever the
    mapping says: the mark says so beyond doubt.

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
    if skipped:  # a UTF-8 byte order mark: UTF-8 whatever the mapping says
        encoding, hint = "utf-8", ", yet the file starts with a UTF-8 byte order mark"
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
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputRejected(f"not {encoding} text: byte 0x{body[exc.start]:02x}{hint}",
                            f"byte {exc.start + skipped}") from None


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
