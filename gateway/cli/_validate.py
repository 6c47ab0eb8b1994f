"""``validate FILE...``: eCH-0223 and eCH-0090 against the schemas; registry input as the daemon takes it.

eCH-0223 messages and eCH-0090 envelopes and receipts are validated against
the schemas, as they are. Any other XML, and a zip, is given to the daemon's
normalisers, which tell the formats apart by namespace (:mod:`gateway.processor`):
an eCH-0020 v3 delivery is reported as the eCH-0223 message it becomes,
completed with the person state known (as in ``rules explain``: from the
database of the configuration, if one is found, and from the files before it on
the command line)
and validated as eCH-0223 1.5 and, with ``--ech0223-version``, as that version
too; or with the normaliser's reason when the daemon would quarantine it or
take it and send nothing. A JSON or CSV export is pointed to ``map-test``.
A file larger than the configuration's ``[limits] max_document_bytes`` is
rejected as the daemon would (without a configuration: larger than validate's own
limit, 64 MiB). Nothing is stored, nothing is sent.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.assembly import make_validator, schema_set
from gateway.cli import _access, _out
from gateway.config import Settings, find_config
from gateway.contracts import DOCUMENT_LIMIT, Decision, Normalised, PartnerVersion, RawInput
from gateway.convert import CANONICAL
from gateway.errors import ConfigError, ConversionRefused, InputRejected, PluginError
from gateway.person_state import PersonState, StoredPerson
from gateway.plugins import fact_values
from gateway.processor import (
    UNRECOGNISED,
    Processor,
    normalise_context,
    remember,
    state_of,
)
from gateway.store import Processed, StoreReader
from gateway.wording import counted
from gateway.xml.validation import (
    DEFAULT_MAX_BYTES,
    SchemaSet,
    default_schema_set,
    report_lines,
    validate_files,
)

_ZIP = b"PK\x03\x04"
_BOM = b"\xef\xbb\xbf"
#: First bytes of XML in UTF-16 or UTF-32, with or without a byte order mark.
_WIDE = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<", b"\x00\x00")


def export_hint(path: str, data: bytes) -> str | None:
    """What to do with ``data`` if it looks like a JSON or CSV export (not XML, not a zip):
    read it with a mapping, tried with ``map-test``; None for anything else."""
    body = data.removeprefix(_BOM).lstrip()
    if not body or body[:1] == b"<" or body.startswith((_ZIP, *_WIDE)):
        return None
    what = "a JSON document" if body[:1] in (b"{", b"[") else "not XML (CSV?)"
    return (f"{what}: a JSON or CSV export is read by a folder source's mapping; see what it"
            f" makes of each row with `ech-gateway map-test --source NAME {path}`")


def cmd_validate(args: argparse.Namespace) -> int:
    """Print a verdict per file; 0 when all are valid (registry input: would be taken)."""
    schemas = SchemaSet.from_catalog(args.official) if args.official else None
    settings = _configuration(args)
    if settings is not None:
        max_bytes = int(settings.limits.max_document_bytes)
        limit = f"{DOCUMENT_LIMIT} ({max_bytes})"
    else:
        max_bytes = DEFAULT_MAX_BYTES
        limit = (f"validate's own limit without a configuration ({max_bytes}; with one, its"
                 f" {DOCUMENT_LIMIT})")
    registry = RegistryInput(args, schemas, settings)
    try:
        return validate_files(args.files, schemas, ech0223_version=args.ech0223_version,
                              max_bytes=max_bytes, limit=limit, other=registry, say=_out.say)
    finally:
        registry.close()


def _configuration(args: argparse.Namespace) -> Any:
    """The configuration (``--config`` or the default places), if one is found and loads;
    None otherwise: eCH-0223 is validated without one (registry input, which needs
    it, reports why it does not load)."""
    if find_config(args.config) is None:
        return None
    try:
        return _access.configuration(args)
    except (ConfigError, PluginError):
        return None


class RegistryInput:
    """Judges files the schemas do not take, as the daemon would process them.

    With ``settings``, the configuration (None: none found, or it does not load; then it
    is loaded again at the first such file, to say why not). Its database is opened at
    the first such file only: validating eCH-0223 needs none.
    """

    def __init__(self, args: argparse.Namespace, schemas: SchemaSet | None,
                 settings: Any = None) -> None:
        self._args = args
        self._schemas = schemas
        self._settings = settings
        self._proc: Processor | None = None
        self._store: StoreReader | None = None
        self._source = "registry"
        self._states: dict[str, StoredPerson] = {}
        #: Why no person state may be known: said once, with the first file that needs one.
        self._no_state = ""

    def __call__(self, path: str, data: bytes) -> bool | None:
        """Print the verdict on ``path``; whether the daemon would take it and send what
        it makes (or, rightly, nothing); None: not registry input, for the schemas."""
        if not data.removeprefix(_BOM).strip():
            return None
        if (hint := export_hint(path, data)) is not None:
            _out.say(f"{path}: NOT CHECKED: {hint}")
            return False
        proc = self._processor()
        raw = RawInput(self._source, Path(path).name, data, {"path": path})
        step = proc.normalise(0, raw)
        if isinstance(step, Processed):
            if step.reason is not None and step.reason.startswith(UNRECOGNISED):
                return self._unknown(path, data)
            _out.say(f"{path}: REJECTED: {step.reason}")
            return False
        valid, lines = self._message(path, raw, step)
        if self._store is not None and (first := self._store.original_of(self._source, data)):
            lines.append(f"  note: the database holds these bytes from source {self._source}"
                         f" already (message {first}): the daemon would take the file as a"
                         " duplicate and go no further")
        _out.say(*lines)
        return valid

    def _message(self, path: str, raw: RawInput, step: Normalised) -> tuple[bool, list[str]]:
        """Whether the daemon would take ``step`` and make valid eCH-0223 of it; the lines
        that say so."""
        event = step.facts.get("source_event")
        head = f"{path}: {step.facts.get('format', 'input')}" + (f" {event}" if event else "")
        if step.parts or step.rejected_parts:
            parts = counted(len(step.parts) + len(step.rejected_parts), "part")
            return not step.rejected_parts, [f"{head}: {parts}: see each with"
                                             f" `ech-gateway rules explain {path}`"]
        self._recall(step.subject)
        stored = state_of(self._states, step.subject)
        before = stored.state if stored is not None else None
        if step.not_relevant is not None:
            self._remember(step.persons)
            return True, [f"{head}: taken, sends nothing: {step.not_relevant}"]
        proc = self._processor()
        try:
            done = proc.complete(step, raw, before)
            payloads = proc.payloads(done, Decision("validate", "validate", tuple(self._targets())))
        except (InputRejected, ConversionRefused) as exc:
            lines = [f"{head}: REJECTED: {exc}"]
            if before is None and step.draft is not None:
                lines.append(f"  hint: no state of this person is known here ({self._no_state});"
                             " an event that only identifies the person is completed from it."
                             " Give the registry's baseDelivery before it (`ech-gateway validate"
                             f" baseDelivery.xml {path}`), or --config of the gateway whose"
                             " database knows the person")
            return False, lines
        self._remember(done.persons)
        person_event = done.facts.get("person_event")
        lines = [f"{head}: valid: becomes eCH-0223 {' and '.join(self._targets().values())}"
                 f" {done.kind}" + (f" ({person_event})" if person_event else "")
                 + (f", messageId {done.message_id}" if done.message_id else "")]
        lines += [f"  warning: {w}" for w in (*done.warnings, *payloads.warnings)]
        return True, lines

    def _unknown(self, path: str, data: bytes) -> bool | None:
        """The schemas' verdict on XML no normaliser takes either, and what the gateway takes."""
        try:
            report = (self._schemas or default_schema_set()).validate(data)
        except InputRejected:
            return None
        formats = ", ".join(sorted(fact_values(self._args.pm).get("format", ()), key=str.lower))
        _out.say(*report_lines(path, report))
        _out.say(f"  nor is it registry input the gateway takes (formats: {formats})")
        return False

    def close(self) -> None:
        """Close the database, if one was opened."""
        if self._store is not None:
            self._store.close()

    def _targets(self) -> dict[str, str]:
        """The eCH-0223 versions to make, by the name of the partner they stand for."""
        versions = dict.fromkeys([CANONICAL, self._args.ech0223_version or CANONICAL])
        return {f"eCH-0223 {v}": v for v in versions}

    def _processor(self) -> Processor:
        """The daemon's processing stages, with the configuration's settings or the defaults."""
        if self._proc is not None:
            return self._proc
        settings: Any
        config = find_config(self._args.config)
        if config is not None:
            settings = (self._settings if self._settings is not None
                        else _access.configuration(self._args))
            self._source = next(iter(settings.sources), self._source)
            if settings.store.path.exists():
                self._store = StoreReader(settings.store.path)
            else:
                self._no_state = f"no database at {settings.store.path}"
        else:
            settings = Settings()
            self._no_state = ("no configuration found: only the files before it on the command"
                              " line tell one")
        schemas = self._schemas or schema_set(settings)
        targets = {name: PartnerVersion(v) for name, v in self._targets().items()}
        self._proc = Processor(self._args.pm, settings, normalise_context(settings),
                               make_validator(schemas), targets)
        return self._proc

    def _recall(self, keys: tuple[str, ...]) -> None:
        """Add the database's states of ``keys`` not known from earlier files."""
        missing = [k for k in keys if k not in self._states]
        if self._store is not None and missing:
            self._states.update(self._store.stored_persons(missing))

    def _remember(self, updates: tuple[Any, ...]) -> None:
        """What a file tells of persons, for the files after it."""
        for update in updates:
            if isinstance(update, PersonState):
                remember(self._states, update)
