"""Logging setup: text for a terminal, JSON lines for a collector.

Log messages name ids and states, never personal data (names, VN numbers):
those stay in the store and are shown only on explicit request.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

#: A value an lxml (libxml2) schema error quotes, found by the message's
#: structure, whatever the value holds (apostrophes, newlines, any length):
#: ``Element 'E'[, attribute 'A']: [[facet 'F'] The value ]'VALUE' is not …``,
#: and the values of ``key-sequence ['V1', 'V2']``.
_SCHEMA_VALUE = re.compile(
    r"(?P<head>Element '[^']*'(?:, attribute '[^']*')?: (?:\[facet '[^']*'\] The value )?)"
    r"'.*?'(?P<tail> (?:is not (?:a valid value|an element|accepted)|is greater than"
    r"|is less than|has (?:a length|more)|does not match|is not))"
    r"|(?P<key>key-sequence \[)'.*?'(?P<end>\] (?:in|of) )",
    re.DOTALL,
)
#: A name from the configuration, as reasons quote it: ``partner 'canton'``, ``the registry
#: 'registry-b'``, ``source 'from-canton'``, ``rule 'foreign-nationals'``; only a name of the
#: form the configuration allows for partners and sources (lower case, digits, ``-``, ``_``),
#: so ``partner 'Anna Muster'`` is hidden all the same.
_CONFIG_NAME = r"\b(?:partner|registry|source|rule) '[a-z0-9][a-z0-9_-]*'(?![\w'])"
#: Other quoted spans, left to right: what a schema error names (elements,
#: attributes, facets, types, patterns, lengths, enumerations), configuration names,
#: namespaced names and file paths are kept; any other short quoted value is hidden.
_QUOTED = re.compile(
    r"(?P<keep>(?:Element|attribute|facet|type|pattern|length of|allowed \(|constraint|keyref)"
    rf" '[^'\n]*'|{_CONFIG_NAME}|set \{{[^}}]*\}}|'[{{/][^'\n]*')"
    r"|'[^'\n]{1,200}'"
)
#: Kept wherever they stand: UUIDs (attempt and message references) and SHA-256 digests.
_KEPT = (r"(?P<keep>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
         r"|\b[0-9a-f]{64}\b)")
#: A VN/AHV number, written with separators or without.
_VN_NUMBER = r"(?<!\d)756(?:[.\s_-]\d{4}[.\s_-]\d{4}[.\s_-]\d{2}|\d{10})(?!\d)"
#: What :func:`redact` hides besides quoted values: VN/AHV numbers and long digit runs (dates
#: of birth written without separators) unless they count bytes.
_NUMBERS = re.compile(rf"{_KEPT}|{_VN_NUMBER}|\d{{6,}}(?!\d| bytes)")
#: Characters that would end a log line or move its cursor (line breaks, carriage returns,
#: other control characters, Unicode's line and paragraph separators), tab aside; and the
#: bidirectional controls, which make a line show its text in another order than it has
#: (a file name ``invoice\u202efdp.exe`` shows as ``invoiceexe.pdf``).
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f"
                            "\u202a-\u202e\u2066-\u2069]")
#: How :func:`one_line` writes the common ones.
_ESCAPES = {"\n": "\\n", "\r": "\\r"}
#: What every log line loses (:func:`hide_vn`): a VN/AHV number wherever it stands (in a file
#: name, say).
_VN = re.compile(rf"{_KEPT}|{_VN_NUMBER}")


def hide_vn(text: str) -> str:
    """``text`` without VN/AHV numbers: what every log line passes through (a line names
    files, and a registry may name a person's file by their VN)."""
    return _VN.sub(lambda m: m["keep"] or "756…", text)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks, other control characters and bidirectional
    controls written as escapes (``\\n``, ``\\r``, ``\\x1b``, ``\\u202e``), so that a file
    name, a zip entry's name or a parser's message cannot end a log line and forge the next,
    nor show itself in another order."""
    return _LINE_BREAKING.sub(
        lambda m: _ESCAPES.get(m[0]) or m[0].encode("unicode_escape").decode("ascii"), text)


def redact(text: str) -> str:
    """``text`` without the values it quotes and without long numbers (references stay).

    For log lines built from reasons that may carry personal data (schema
    errors quote the invalid value); the store keeps the full reason. What
    names the problem stays: element names, facets, types, file paths.
    """
    text = _SCHEMA_VALUE.sub(_hide_schema_value, text)
    text = _QUOTED.sub(lambda m: m["keep"] or "'…'", text)
    return _NUMBERS.sub(lambda m: m["keep"] or "…", text)


#: The most characters of a partner's text a reason quotes (:func:`redact` hides up to 200).
PARTNER_TEXT_MAX = 160


def partner_text(text: str) -> str:
    """What a partner wrote (a SOAP fault string, the start of an answer's body), for a reason.

    On one line, shortened, in single quotes: :func:`redact` hides it from log
    lines and alerts, for it may name a person (``no resident Anna Muster``),
    while the store keeps the reason whole.
    """
    flat = " ".join(text.split()).replace("'", "\u2019")
    short = flat[:PARTNER_TEXT_MAX] + ("…" if len(flat) > PARTNER_TEXT_MAX else "")
    # a quoted text starting like a path or a namespaced name is one redact keeps
    return f"' {short}'" if short.startswith(("{", "/")) else f"'{short}'"


def _hide_schema_value(match: re.Match[str]) -> str:
    if match["key"]:
        return f"{match['key']}'…'{match['end']}"
    return f"{match['head']}'…'{match['tail']}"


class RepeatedProblem:
    """Logs a failure that recurs on every scan once, again every ``every`` seconds, and its end.

    A folder that vanished fails every poll; an operator needs to hear of it,
    and of its return, not once a second.
    """

    def __init__(self, logger: logging.Logger, what: str, every: float = 300.0, *,
                 redacted: bool = True) -> None:
        """:param redacted: ``False`` for errors that cannot quote personal data (a worker
            process's start), whose quoted names (a module's) are the point."""
        self._log = logger
        self._redacted = redacted
        self._what = what
        self._every = every
        self._current: str | None = None
        self._logged_at = 0.0
        self._repeats = 0

    def failed(self, error: object) -> None:
        """Report that ``what`` failed with ``error`` (at ERROR when new or due again), its
        text :func:`redact`-ed, unless not ``redacted``: a partner's fault may quote a name or a VN."""
        text, now = redact(str(error)) if self._redacted else str(error), time.monotonic()
        if text != self._current or now - self._logged_at >= self._every:
            again = f" (seen {self._repeats} more times)" if text == self._current else ""
            self._log.error("%s failed: %s%s", self._what, text, again)
            self._current, self._logged_at, self._repeats = text, now, 0
        else:
            self._repeats += 1

    def ok(self) -> None:
        """Report that ``what`` works again, if a failure was reported."""
        if self._current is not None:
            self._log.warning("%s works again", self._what)
            self._current = None


class TextFormatter(logging.Formatter):
    """``time level logger: message``, on one line (:func:`one_line`) and without VN/AHV
    numbers; a traceback with the values its exception quotes :func:`redact`-ed (a plugin's
    error may quote a name or a VN; the code lines stay)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``, without VN/AHV numbers (:func:`hide_vn`)."""
        return hide_vn(super().format(record))

    def formatMessage(self, record: logging.LogRecord) -> str:
        """``time level logger: message``, the message on one line (:func:`one_line`)."""
        return one_line(hide_vn(super().formatMessage(record)))

    def formatException(self, ei: Any) -> str:
        """The traceback, redacted."""
        return redact(super().formatException(ei))


class JsonFormatter(TextFormatter):
    """One JSON object per line (without VN/AHV numbers, its traceback redacted, as
    :class:`TextFormatter`'s)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": hide_vn(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`setup` installs: told apart from a host program's."""


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once, on stderr."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


#: The lowest level a command other than ``run`` logs at.
COMMAND_LEVEL = logging.WARNING


def setup_command(level: str = "WARNING", fmt: str = "text") -> None:
    """Logging for a command other than ``run``: :func:`setup` at ``level``, but not below
    WARNING.

    A command prints what it did (on stdout: its JSON too); its log lines are what
    it met on the way that is worth a warning (an alert for a message it quarantined,
    a message upgrading changed), on stderr, in the configured format and without VN
    numbers, as the daemon's. The daemon's INFO lines (the journal head at each
    opening of the store) are not a command's business.

    Nothing changes where the program running the command line configured logging
    itself (a handler on the root logger that :func:`setup` did not install: an
    application or a test runner calling :func:`gateway.cli.main`).
    """
    root = logging.getLogger()
    if any(not isinstance(h, _Handler) for h in root.handlers):
        return
    setup(logging.getLevelName(max(logging.getLevelName(level), COMMAND_LEVEL)), fmt)
