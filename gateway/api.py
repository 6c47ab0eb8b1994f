"""The plugin API: everything a plugin may import from the gateway, in one module.

A plugin (a vendor's, or one of the built-ins in ``plugins/``) imports from
here and from nowhere else in ``gateway``; ``tests/test_plugin_api.py``
enforces that for the built-ins. What a plugin needs and cannot find here
is a gap in this module, not a licence to import internals.

- the hooks: :data:`hookimpl` (the specs are documented in :mod:`gateway.hookspecs`);
- the contracts: what the core hands to plugins and gets back (HTTP routes too:
  :class:`HttpRoute`, registered through ``context.routes`` or ``gateway_http_routes``);
- the errors: one hierarchy, :class:`GatewayError` at its root;
- option types for a plugin's pydantic options model (:class:`PluginOptions`,
  :class:`HttpsClientOptions` for a server's URL and TLS,
  :data:`Duration`, :data:`Size`);
- helpers worth sharing: safe XML parsing and validation (:func:`problems_text`: schema
  problems as a reason says them), safe zip handling,
  what is kept of an input over its limit (:class:`Evidence`; its :meth:`Evidence.meta`,
  or :data:`KEPT_BYTES` alone, in a stored input's metadata marks it as no document),
  file and folder primitives (:func:`replace_durably` for a plugin's own state
  files; :class:`CursorFile`, a polling source's cursor in the data folder, read and
  written in bounded calls), taking files that are written in place (:class:`FileTaker`),
  calls into a file system that may hang, each given up on after a while
  (:class:`BoundedCalls`), log redaction,
  an HTTP ``Retry-After`` header in seconds (:func:`retry_after_seconds`), an HTTP
  answer's body read up to a limit (:func:`read_at_most`), a dotted path into parsed
  JSON (:func:`value_at`), a count in words (:func:`counted`: ``1 row``, ``2 rows``);
- for a plugin's own commands and simulators: the gateway's configuration
  (:func:`load_config`, :class:`ConfigError`; :data:`CONFIGURATION` names, in a
  problem's ``file``, the file that set a key) and valid sample eCH-0223
  messages (:func:`sample_person_event`, :func:`sample_event_report`, :func:`write_message`);
- a person's last known state (:class:`PersonState`) and the nationalities rules tell apart
  (:data:`NATIONALITIES`: what ``PersonState.nationality()`` says, and a ``nationality_before``
  fact may be);
- manual sends: :func:`send_manual` sends an event about a known person to a partner
  by hand (a registry's case workflow: ``laggardOfFamily``, ``declarationOfCommitment``);
- eCH-0223 versions: :func:`upgrade` turns a 1.0/1.3/1.4 message into 1.5,
  :class:`PartnerVersion` says which version a partner runs;
- the messageId and senderId of a parsed eCH-0223 document's header (:func:`header_ids_of`);
- the eCH-0223 model of a ``personEventMessage`` (:class:`PersonEventMessage`), for
  normalisers that build messages from other formats; the whole model (:mod:`ech0223`,
  e.g. ``ech0223.PersonData``) and :func:`read_part`, which reads an eCH-0011/0021/0044
  part wherever it sits (an eCH-0020 event's ``nameData``...);
- the files a message's eCH-0039 documents name: :func:`named_files` (each a
  :class:`NamedFile` with its stated SHA-256) and :func:`check_files`, which refuses a file
  that does not match its SHA-256 and says what is missing or named by no document
  (:class:`FileCheck`), for the caller's own policy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gateway import ech0223
from gateway.archive import build_zip, safe_unzip
from gateway.assembly import load_config
from gateway.bounded import BoundedCalls
from gateway.completeness import unfinished
from gateway.config import CONFIGURATION, Duration, Size
from gateway.contracts import (
    ANSWERED_ATTEMPT,
    DOCUMENT_LIMIT,
    MOVED_TO,
    NOT_FROM_PARTNER,
    Attachment,
    Decision,
    Draft,
    Intake,
    NamedFile,
    NormaliseContext,
    Normalised,
    PartnerVersion,
    RawInput,
    Route,
)
from gateway.cursor_file import CursorFile
from gateway.dirwatch import DirWatcher, ready_files
from gateway.documents import FileCheck, check_files, named_files
from gateway.dotted import value_at
from gateway.ech0223 import (
    PersonEventMessage,
    sample_event_report,
    sample_person_event,
    write_message,
)
from gateway.ech0223.parts import read_part
from gateway.ech0223.versions import upgrade
from gateway.errors import (
    ConfigError,
    DeliveryError,
    FolderHang,
    GatewayError,
    InputRejected,
    KeyReuseRejected,
    LocalFault,
    LocalHang,
    PermanentError,
    StoreUnavailable,
    TransientError,
    UnsureError,
    WorkerLost,
)
from gateway.facts import message_subject
from gateway.fileio import (
    KEPT_BYTES,
    Evidence,
    move_unique,
    read_evidence,
    read_file,
    rename_no_replace,
    replace_durably,
    same_folder,
    sync_filesystem,
    sync_folder,
    write_all,
    write_file,
)
from gateway.filestored import Stored, finish
from gateway.filetake import (
    BATCH_BYTES,
    SET_ASIDE,
    FileTaker,
    Listing,
    Ready,
    TooLarge,
    Unfinished,
    Whole,
    display_name,
)
from gateway.folder_checks import resolved
from gateway.header_ids import header_ids_of
from gateway.hookspecs import hookimpl
from gateway.http.answers import read_at_most
from gateway.http.client_options import HttpsClientOptions
from gateway.logs import RepeatedProblem, partner_text, redact
from gateway.manual import send_manual
from gateway.outbound import (
    OutboundItem,
    Receipt,
    ReceiptOutcome,
    ReceiptSink,
    SendResult,
    send_side_by_side,
)
from gateway.permits import permit_category
from gateway.person_state import NATIONALITIES, PersonState, parse_key, person_keys
from gateway.plugin_types import (
    BatchTransport,
    Command,
    Flushable,
    GatewayEvent,
    HttpHandler,
    HttpRoute,
    HttpRoutes,
    InputMetadata,
    Offload,
    Participants,
    PluginContext,
    Probeable,
    Source,
    SourceFactory,
    SourceType,
    Transport,
    TransportFactory,
    TransportType,
    WritablePath,
    WritablePaths,
    in_thread,
)
from gateway.retry import retry_after_seconds
from gateway.rules import first_match
from gateway.supervision import to_the_end
from gateway.vn import mask_vn, vn_check_digit_ok, vn_shaped
from gateway.wording import counted
from gateway.xml.problem_text import problems_text
from gateway.xml.safe import check_untrusted, parse_untrusted
from gateway.xml.stream import StreamedDocument
from gateway.xml.validation import validate


class PluginOptions(BaseModel):
    """Base of a plugin's options model: unknown keys are refused (a typo is an error)."""

    model_config = ConfigDict(extra="forbid")


__all__ = [
    "ANSWERED_ATTEMPT",
    "BATCH_BYTES",
    "CONFIGURATION",
    "DOCUMENT_LIMIT",
    "KEPT_BYTES",
    "MOVED_TO",
    "NATIONALITIES",
    "NOT_FROM_PARTNER",
    "SET_ASIDE",
    "Attachment",
    "BatchTransport",
    "BoundedCalls",
    "Command",
    "ConfigError",
    "CursorFile",
    "Decision",
    "DeliveryError",
    "DirWatcher",
    "Draft",
    "Duration",
    "Evidence",
    "FileCheck",
    "FileTaker",
    "Flushable",
    "FolderHang",
    "GatewayError",
    "GatewayEvent",
    "HttpHandler",
    "HttpRoute",
    "HttpRoutes",
    "HttpsClientOptions",
    "InputMetadata",
    "InputRejected",
    "Intake",
    "KeyReuseRejected",
    "Listing",
    "LocalFault",
    "LocalHang",
    "NamedFile",
    "NormaliseContext",
    "Normalised",
    "Offload",
    "OutboundItem",
    "Participants",
    "PartnerVersion",
    "PermanentError",
    "PersonEventMessage",
    "PersonState",
    "PluginContext",
    "PluginOptions",
    "Probeable",
    "RawInput",
    "Ready",
    "Receipt",
    "ReceiptOutcome",
    "ReceiptSink",
    "RepeatedProblem",
    "Route",
    "SendResult",
    "Size",
    "Source",
    "SourceFactory",
    "SourceType",
    "StoreUnavailable",
    "Stored",
    "StreamedDocument",
    "TooLarge",
    "TransientError",
    "Transport",
    "TransportFactory",
    "TransportType",
    "Unfinished",
    "UnsureError",
    "Whole",
    "WorkerLost",
    "WritablePath",
    "WritablePaths",
    "build_zip",
    "check_files",
    "check_untrusted",
    "counted",
    "display_name",
    "ech0223",
    "finish",
    "first_match",
    "header_ids_of",
    "hookimpl",
    "in_thread",
    "load_config",
    "mask_vn",
    "message_subject",
    "move_unique",
    "named_files",
    "parse_key",
    "parse_untrusted",
    "partner_text",
    "permit_category",
    "person_keys",
    "problems_text",
    "read_at_most",
    "read_evidence",
    "read_file",
    "read_part",
    "ready_files",
    "redact",
    "rename_no_replace",
    "replace_durably",
    "resolved",
    "retry_after_seconds",
    "safe_unzip",
    "same_folder",
    "sample_event_report",
    "sample_person_event",
    "send_manual",
    "send_side_by_side",
    "sync_filesystem",
    "sync_folder",
    "to_the_end",
    "unfinished",
    "upgrade",
    "validate",
    "value_at",
    "vn_check_digit_ok",
    "vn_shaped",
    "write_all",
    "write_file",
    "write_message",
]
