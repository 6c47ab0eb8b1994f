"""Reading untrusted zip archives safely, and writing the zip payloads we send.

:func:`safe_unzip` refuses anything a hostile sender could use against us:
paths escaping their folder, symlinks, encrypted or duplicate entries, and
zip bombs; and names a recipient cannot unpack side by side: control
characters, names that differ only in case or Unicode normalisation (one file
overwrites the other on Windows and macOS). Sizes are checked on the declared
values first and enforced again while decompressing, so a lying header cannot
exhaust memory. Its limits are the ``[limits]`` settings its reasons name.
"""

from __future__ import annotations

import io
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Sequence

from gateway.contracts import Attachment
from gateway.errors import InputRejected

#: Entries smaller than this are exempt from the ratio check: tiny files
#: (a short XML of repeated tags) compress well beyond any sensible ratio.
RATIO_GRACE_BYTES = 100 * 1024

#: The timestamp every entry of :func:`build_zip` gets, for reproducible bytes.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)

_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Control characters (C0, DEL, C1): no file name of a document has them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: The settings of the limits, as reasons name them.
_ENTRIES, _TOTAL, _RATIO = ("[limits] max_zip_entries", "[limits] max_zip_bytes",
                            "[limits] max_zip_ratio")


def _check_name(name: str) -> None:
    """Refuse entry names that could leave the folder they are extracted to."""
    if not name or "\x00" in name:
        raise InputRejected("empty or invalid entry name", where=repr(name))
    if _CONTROL.search(name):
        raise InputRejected("control character in entry name", where=ascii(name))
    if "\\" in name:
        raise InputRejected("backslash in entry name", where=name)
    if name.startswith("/") or _DRIVE.match(name):
        raise InputRejected("absolute entry path", where=name)
    if ".." in name.rstrip("/").split("/"):
        raise InputRejected("entry path escapes its folder", where=name)


def _check_declared(info: zipfile.ZipInfo, max_ratio: int) -> None:
    """Refuse symlinks, encrypted entries and declared zip-bomb ratios."""
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InputRejected("symbolic link entry", where=info.filename)
    if info.flag_bits & 0x1:
        raise InputRejected("encrypted entry", where=info.filename)
    ratio_limit = max_ratio * max(info.compress_size, 1)
    if info.file_size > RATIO_GRACE_BYTES and info.file_size > ratio_limit:
        raise InputRejected(_ratio_above(max_ratio), where=info.filename)


def _ratio_above(max_ratio: int) -> str:
    return f"compression ratio above {_RATIO} ({max_ratio})"


def _unpacks_to_more(max_total: int) -> str:
    return f"zip unpacks to more than {_TOTAL} ({max_total} bytes)"


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, max_ratio: int,
                max_total: int) -> bytes:
    """Decompress one entry in chunks, stopping as soon as a limit is passed (``budget``:
    what is left of ``max_total``)."""
    buf = bytearray()
    ratio_limit = max(max_ratio * max(info.compress_size, 1), RATIO_GRACE_BYTES)
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                buf += chunk
                if len(buf) > budget:
                    raise InputRejected(_unpacks_to_more(max_total), info.filename)
                if len(buf) > ratio_limit:
                    raise InputRejected(_ratio_above(max_ratio), info.filename)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError) as exc:
        raise InputRejected(f"corrupt zip entry: {exc}", where=info.filename) from exc
    return bytes(buf)


def safe_unzip(
    data: bytes, *, max_entries: int, max_total_bytes: int, max_ratio: int,
    only: Callable[[str], bool] | None = None,
) -> dict[str, bytes]:
    """Unpack ``data`` into ``{entry name: bytes}`` (directories are omitted).

    :param max_entries: the most entries (files and directories) accepted
        (``[limits] max_zip_entries``).
    :param max_total_bytes: the most bytes all entries may unpack to (``[limits] max_zip_bytes``).
    :param max_ratio: the highest uncompressed/compressed ratio of an entry
        larger than :data:`RATIO_GRACE_BYTES` (``[limits] max_zip_ratio``).
    :param only: unpack only the entries whose name it accepts: the others are held to
        the limits on their declared values alone, never decompressed.
    :raises InputRejected: with the offending entry name in ``where``, and the reason
        naming the setting of a limit passed.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise InputRejected(f"not a zip archive: {exc}") from exc
    except NotImplementedError as exc:  # an entry needs a zip version zipfile cannot read
        raise InputRejected(f"zip archive the gateway cannot read: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise InputRejected(f"zip has {len(infos)} entries, more than {_ENTRIES}"
                                f" ({max_entries})")
        seen: dict[str, str] = {}  # folded name: name
        declared = 0
        for info in infos:
            _check_name(info.orig_filename)
            _check_name(info.filename)
            folded = unicodedata.normalize("NFC", info.filename).casefold()
            if folded in seen:
                if seen[folded] == info.filename:
                    raise InputRejected("duplicate entry", where=info.filename)
                raise InputRejected(f"entry names differ only in case or Unicode normalisation"
                                    f" ({seen[folded]!a} and {info.filename!a}): one"
                                    " file would overwrite the other", where=info.filename)
            seen[folded] = info.filename
            _check_declared(info, max_ratio)
            declared += info.file_size
            if declared > max_total_bytes:
                raise InputRejected(_unpacks_to_more(max_total_bytes), where=info.filename)
        out: dict[str, bytes] = {}
        remaining = max_total_bytes
        for info in infos:
            if info.is_dir() or (only is not None and not only(info.filename)):
                continue
            content = _read_entry(zf, info, remaining, max_ratio, max_total_bytes)
            remaining -= len(content)
            out[info.filename] = content
    return out


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def build_zip(message_name: str, message_xml: bytes, attachments: Sequence[Attachment]) -> bytes:
    """A zip with the message at the root and each attachment as ``files/<name>``.

    The bytes depend only on the arguments (fixed timestamps and modes).

    :raises ValueError: for an attachment name that is not a plain file name
        or appears twice.
    """
    for name in [message_name, *(a.name for a in attachments)]:
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"not a plain file name: {name!r}")
    names = [message_name] + [f"files/{a.name}" for a in attachments]
    if len(set(names)) != len(names):
        raise ValueError("duplicate file names in zip payload")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_entry(message_name), message_xml)
        for name, attachment in zip(names[1:], attachments, strict=True):
            zf.writestr(_entry(name), attachment.data)
    return buf.getvalue()
