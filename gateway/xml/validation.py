"""Validate eCH-0223 messages and eCH-0090 envelopes/receipts against XSDs.

The schema is chosen by the root element. eCH-0223 keeps one namespace for
all 1.x versions, so its version is a parameter (per partner), not something
read from the document. Compiled schemas are cached per thread: an lxml
``XMLSchema`` keeps its error log on the object, so one must not be shared.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from lxml import etree

import gateway
from gateway.errors import InputRejected
from gateway.xml.safe import parse_untrusted

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ECH0223_VERSIONS",
    "KINDS",
    "OtherInput",
    "SchemaKind",
    "SchemaSet",
    "ValidationIssue",
    "ValidationReport",
    "default_schema_set",
    "report_lines",
    "schema_dir",
    "validate",
    "validate_files",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest XML document :func:`validate` and :func:`validate_files` parse from bytes."""

OtherInput = Callable[[str, bytes], "bool | None"]
"""What :func:`validate_files` asks about a file the schemas do not take (not XML, or
another root element), given its path and bytes: whether it is valid, having printed
the verdict; None leaves the verdict to the schemas (an unknown root, a parse error)."""

_CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"


@dataclass(frozen=True, slots=True)
class SchemaKind:
    """One root schema: its standard, version, target namespace and file name."""

    standard: str
    version: str
    namespace: str
    filename: str

    @property
    def url(self) -> str:
        """The official schemaLocation URL of this schema."""
        return f"{self.namespace}/{self.filename}"


ECH0223_NS = "http://www.ech.ch/xmlns/eCH-0223/1"
ECH0090_V1_NS = "http://www.ech.ch/xmlns/eCH-0090/1"
ECH0090_V2_NS = "http://www.ech.ch/xmlns/eCH-0090/2"

_ECH0223 = {version: SchemaKind("eCH-0223", version, ECH0223_NS,
                                f"eCH-0223-{version.replace('.', '-')}.xsd")
            for version in ("1.5", "1.4", "1.3", "1.0")}
ECH0223_VERSIONS = tuple(_ECH0223)
"""The eCH-0223 versions that can be validated, newest first."""

_ECH0090 = {
    ECH0090_V1_NS: SchemaKind("eCH-0090", "1.0", ECH0090_V1_NS, "eCH-0090-1-0.xsd"),
    ECH0090_V2_NS: SchemaKind("eCH-0090", "2.0", ECH0090_V2_NS, "eCH-0090-2-0.xsd"),
}
KINDS: tuple[SchemaKind, ...] = (*_ECH0223.values(), *_ECH0090.values())
_ROOTS = {
    **{f"{{{ECH0223_NS}}}{name}": ECH0223_NS for name in ("personEventMessage", "eventReport")},
    **{f"{{{ns}}}{name}": ns for ns in _ECH0090 for name in ("envelope", "receipt")},
}


class _LogEntry(Protocol):
    """What an lxml error log entry offers (lxml-stubs do not describe it)."""

    line: int
    column: int
    message: str
    path: str | None


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One schema violation; ``column`` is 0 when libxml2 does not report one; ``path`` is
    the offending element's (``/eCH-0223:personEventMessage/...``), when known."""

    line: int
    column: int
    message: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The verdict on one document; ``kind`` reads e.g. ``eCH-0223 1.5 eventReport``."""

    valid: bool
    kind: str
    errors: list[ValidationIssue] = field(default_factory=list)


def schema_dir() -> Path:
    """The directory holding the project's own XSDs (source tree or installed package)."""
    package = Path(gateway.__file__).resolve().parent
    candidates = (package.parent / "schemas", package / "schemas")
    for candidate in candidates:
        if (candidate / KINDS[0].filename).is_file():
            return candidate
    raise FileNotFoundError(f"no project schemas in {' or '.join(map(str, candidates))}")


class _CatalogResolver(etree.Resolver):
    """Maps official schemaLocation URLs to local files; anything else is left unresolved."""

    def __init__(self, mapping: Mapping[str, Path]) -> None:
        super().__init__()
        self._mapping = mapping

    # lxml-stubs 0.5 lacks the context argument and resolve_filename.
    def resolve(self, system_url: str, public_id: str,  # type: ignore[override]
                context: object) -> object:
        path = self._mapping.get(system_url)
        if path is None:
            return None
        return self.resolve_filename(str(path), context)  # type: ignore[attr-defined]


def _read_catalog(catalog: Path) -> dict[str, Path]:
    """``systemId``/``name`` → local file for the ``system`` and ``uri`` entries of a catalog."""
    root = etree.parse(str(catalog), etree.XMLParser(no_network=True, load_dtd=False)).getroot()
    mapping: dict[str, Path] = {}
    for entry in root.iter(f"{{{_CATALOG_NS}}}system", f"{{{_CATALOG_NS}}}uri"):
        key = entry.get("systemId") or entry.get("name")
        target = entry.get("uri")
        if key and target:
            mapping[key] = (catalog.parent / target).resolve()
    return mapping


class SchemaSet:
    """The XSDs to validate with, compiled lazily and cached per thread.

    Build it with :meth:`from_directory` (our own ``schemas/``, the default) or
    :meth:`from_catalog` (the official files, used as a test oracle).
    """

    def __init__(self, paths: Mapping[SchemaKind, Path], resolver: etree.Resolver | None = None,
                 origin: str = "") -> None:
        missing = [str(paths.get(kind, kind.filename)) for kind in KINDS if kind not in paths
                   or not paths[kind].is_file()]
        if missing:
            raise FileNotFoundError(f"missing schema files: {', '.join(missing)}")
        self._paths = dict(paths)
        self._resolver = resolver
        self._local = threading.local()
        self.origin = origin

    @classmethod
    def from_directory(cls, directory: str | Path | None = None) -> SchemaSet:
        """Schemas named ``eCH-0223-1-5.xsd`` etc. in ``directory`` (default :func:`schema_dir`)."""
        root = Path(directory) if directory is not None else schema_dir()
        return cls({kind: root / kind.filename for kind in KINDS}, origin=str(root))

    @classmethod
    def from_catalog(cls, catalog: str | Path) -> SchemaSet:
        """The schemas an XML catalog maps the official URLs to; imports resolve through it."""
        mapping = _read_catalog(Path(catalog))
        paths = {kind: mapping[kind.url] for kind in KINDS if kind.url in mapping}
        return cls(paths, _CatalogResolver(mapping), origin=str(catalog))

    def schema(self, kind: SchemaKind) -> etree.XMLSchema:
        """The compiled schema for ``kind`` (compiled once per thread)."""
        cache: dict[SchemaKind, etree.XMLSchema] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        compiled = cache.get(kind)
        if compiled is None:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            if self._resolver is not None:
                parser.resolvers.add(self._resolver)
            compiled = etree.XMLSchema(etree.parse(str(self._paths[kind]), parser))
            cache[kind] = compiled
        return compiled

    def validate(self, doc: etree._ElementTree | etree._Element | bytes, *,
                 ech0223_version: str = "1.5",
                 max_bytes: int = DEFAULT_MAX_BYTES) -> ValidationReport:
        """Validate ``doc`` against the schema its root element calls for.

        Bytes are parsed with :func:`parse_untrusted` (which may raise
        :class:`InputRejected`); a tree or element is used as it is.
        An unknown root element gives an invalid report naming the accepted ones.
        """
        if ech0223_version not in _ECH0223:
            raise ValueError(f"eCH-0223 version {ech0223_version!r} is not supported; "
                             f"supported: {', '.join(ECH0223_VERSIONS)}")
        if isinstance(doc, bytes):
            doc = parse_untrusted(doc, max_bytes=max_bytes)
        root = doc.getroot() if isinstance(doc, etree._ElementTree) else doc
        tag = root.tag if isinstance(root.tag, str) else ""
        namespace = _ROOTS.get(tag)
        if namespace is None:
            accepted = ", ".join(sorted(_ROOTS))
            message = f"unexpected root element {tag or '(none)'}; accepted: {accepted}"
            line = cast("int | None", root.sourceline) or 0
            return ValidationReport(False, "unknown", [ValidationIssue(line, 0, message)])
        kind = _ECH0223[ech0223_version] if namespace == ECH0223_NS else _ECH0090[namespace]
        schema = self.schema(kind)
        label = f"{kind.standard} {kind.version} {tag.rpartition('}')[2]}"
        if schema.validate(doc):
            return ValidationReport(True, label)
        entries = cast("Iterable[_LogEntry]", schema.error_log)
        issues = [ValidationIssue(e.line, e.column, e.message, e.path or "") for e in entries]
        return ValidationReport(False, label, issues)


@functools.cache
def default_schema_set() -> SchemaSet:
    """The project's own schemas (one shared instance)."""
    return SchemaSet.from_directory()


def validate(doc: etree._ElementTree | etree._Element | bytes, *,
             schemas: SchemaSet | None = None, ech0223_version: str = "1.5",
             max_bytes: int = DEFAULT_MAX_BYTES) -> ValidationReport:
    """Validate ``doc`` with ``schemas`` (default: the project's own).

    See :meth:`SchemaSet.validate`.
    """
    return (schemas or default_schema_set()).validate(
        doc, ech0223_version=ech0223_version, max_bytes=max_bytes)


def report_lines(path: str, report: ValidationReport) -> list[str]:
    """One verdict line for ``path``, then one indented line per issue."""
    if report.valid:
        return [f"{path}: valid ({report.kind})"]
    head = f"{path}: INVALID" + ("" if report.kind == "unknown" else f" ({report.kind})")
    return [head, *(f"  {_where(i)}: {i.message}" for i in report.errors)]


def _where(issue: ValidationIssue) -> str:
    """``line 2 at /a:b/a:c[2]``: the line alone cannot tell apart the errors of a one-line
    document (the messages the gateway writes are)."""
    column = f", col {issue.column}" if issue.column else ""
    return f"line {issue.line}{column}" + (f" at {issue.path}" if issue.path else "")


def validate_files(paths: list[str], schema_set: SchemaSet | None = None, *,
                   ech0223_version: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                   limit: str | None = None, other: OtherInput | None = None,
                   say: Callable[[str], object] = print) -> int:
    """Validate each file, print a verdict per file (each line through ``say``: the command
    line's escapes the control characters of file names and reasons); the command's exit
    code: 0 if all are valid, 3 (not found) if a file cannot be read, else 1.

    A file larger than ``max_bytes`` is rejected before anything else, naming ``limit``
    (the setting it comes from, with its value: ``[limits] max_document_bytes
    (1048576)``; default: ``the limit of 1048576``) and the file's size.

    A file that is not XML, or whose root element no schema here takes, is
    ``other``'s to judge first (the command line's: registry input).

    An eCH-0223 document with a version attribute is validated as 1.5 (only 1.5
    has one); a versionless one as ``ech0223_version``. Without it, versionless
    documents are held to 1.5, and when the missing attribute is their only
    error a hint names the versions that fit and the option to choose one.
    Files are parsed as hostile input; rejected files count as invalid.
    """
    from gateway.cli.exitcodes import FAILED, NOT_FOUND, OK  # here: gateway.cli imports this module

    if ech0223_version is not None and ech0223_version not in _ECH0223:
        raise ValueError(f"eCH-0223 version {ech0223_version!r} is not supported; "
                         f"supported: {', '.join(ECH0223_VERSIONS)}")
    schemas = schema_set or default_schema_set()
    status, unreadable = OK, False
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
                size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            say(f"{path}: UNREADABLE: {exc.strerror or exc}")
            unreadable = True
            continue
        if len(data) > max_bytes:  # whatever it is: the daemon refuses it for its size
            said = f"{size} bytes, more" if size > max_bytes else "larger"  # a pipe: no size
            say(f"{path}: REJECTED: input is {said} than {limit or f'the limit of {max_bytes}'}")
            status = FAILED
            continue
        try:
            tree: etree._ElementTree | None = parse_untrusted(data, max_bytes=max_bytes)
        except InputRejected as exc:
            tree, rejected = None, exc
        if other is not None and (tree is None or tree.getroot().tag not in _ROOTS):
            verdict = other(path, data)
            if verdict is not None:
                status = status if verdict else FAILED
                continue
        if tree is None:
            say(f"{path}: REJECTED: {rejected}")
            status = FAILED
            continue
        versionless = tree.getroot().get("version") is None
        version = ech0223_version if versionless and ech0223_version else "1.5"
        report = schemas.validate(tree, ech0223_version=version)
        for line in report_lines(path, report):
            say(line)
        if versionless and ech0223_version is None and _only_version_missing(report):
            say(_version_hint(schemas, tree))
        status = status if report.valid else FAILED
    return NOT_FOUND if unreadable else status


def _only_version_missing(report: ValidationReport) -> bool:
    """Whether an eCH-0223 1.5 report has the missing version attribute as its only error."""
    return (report.kind.startswith("eCH-0223 ") and len(report.errors) == 1
            and "'version' is required but missing" in report.errors[0].message)


def _version_hint(schemas: SchemaSet, tree: etree._ElementTree) -> str:
    """What to do with a versionless document that 1.5 refuses for its missing version only."""
    older = ECH0223_VERSIONS[1:]
    fits = [v for v in older if schemas.validate(tree, ech0223_version=v).valid]
    if not fits:
        return (f"  hint: eCH-0223 {' / '.join(older)} documents have no version attribute, but"
                " this one is valid as none of them either; as 1.5 it needs version=\"1.5\"")
    return (f"  hint: eCH-0223 {' / '.join(older)} documents have no version attribute; this one"
            f" is valid as {', '.join(fits)}: validate it with --ech0223-version {fits[0]}")
