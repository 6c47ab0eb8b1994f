"""The configuration, declared once: every key, its type, default and meaning.

The reference page (``docs/configuration.md``) is generated from these
models by :mod:`gateway.config.reference`; a key is documented here or
nowhere.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.config._connections import PartnerSettings, SourceSettings
from gateway.config._durations import Duration
from gateway.config._http import HttpSettings
from gateway.config._provenance import Provenance
from gateway.config._rules import RuleSettings
from gateway.ech0223.codes import DocumentStatus

MiB = 1024 * 1024
#: Environment variables ``ECH_GATEWAY_<SECTION>__<KEY>`` override keys.
ENV_PREFIX = "ECH_GATEWAY_"
ENV_DELIMITER = "__"

#: The name of a source or partner, as written in ``[sources.<name>]``.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewaySettings(_Section):
    """``[gateway]``: this node and its process."""

    node_id: str = Field(
        default_factory=socket.gethostname,
        description="Name of this node in logs, leases and the journal; default: the host name.",
    )
    data_dir: Path = Field(
        default_factory=Path.cwd,
        description="Directory for the gateway's own files; default: gateway.toml's directory.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log records written (by `run`; the other"
        " commands write WARNING and above, on stderr, in `log_format`)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log line format: readable text, or one JSON object per line."
    )
    drain_timeout: Duration = Field(
        default=30.0, description="On shutdown, how long in-flight work may take to finish."
    )
    summary_interval: Duration = Field(
        default=300.0,
        gt=0,
        description="How often a busy gateway logs a summary at INFO (received, delivered,"
        " failed, pending); an idle one stays quiet.",
    )
    workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Processes that normalise and validate beside the event loop, and run"
        " what plugins offload (sedex: reading receipts); 0 does it in the event loop"
        " itself (one core).",
    )
    worker_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="How much lower the workers' CPU priority is than the event loop's (added"
        " to their nice value). 10 lets taking input and answering senders (the HTTP push"
        " source's 202) win over working off the backlog when the cores are busy, but the"
        " backlog then yields to every other process too: on a shared machine end-to-end"
        " throughput fell (bench/README.md). 0 keeps them equal.",
    )
    worker_start_timeout: Duration = Field(
        default=60.0,
        gt=0,
        description="How long a new worker process may take to start (load the plugins and"
        " schemas); one that takes longer (a plugin whose import hangs) is killed and counts"
        " as one that cannot start: at the daemon's start it stops with the cause (exit 2),"
        " later the work waits while one is started again.",
    )
    person_lookup_timeout: Duration = Field(
        default=60.0,
        gt=0,
        description="How long a registry plugin's look-up of a person the gateway does not"
        " know yet (`gateway_person_lookup`), or its search for the resident a partner's"
        " message is about (`gateway_person_resolve`), may take; its batch (or `messages"
        " assign`) waits for it. One that takes longer (a plugin without a timeout of its own,"
        " a registry that never answers) is given up on and counts as \"unknown\", as a"
        " look-up that fails.",
    )
    person_lookup_concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description="How many look-ups of persons the gateway does not know yet"
        " (`gateway_person_lookup`) a batch runs at once (the registry answers that many"
        " requests side by side), and how many partners' messages on the way back it"
        " finishes at once (each may search the registry for its resident,"
        " `gateway_person_resolve`); the batch waits for the last of them.",
    )
    answers_first: Duration = Field(
        default=1.0,
        ge=0,
        description="While senders wait for answers (the HTTP push source's 202), how long"
        " the next batch of the backlog may wait before it is processed anyway: the answers"
        " get the event loop and the cores first, the backlog is worked off between bursts"
        " and at least a batch per this time during one; 0 processes at once.",
    )


class StoreSettings(_Section):
    """``[store]``: where messages, deliveries and the journal are kept."""

    backend: Literal["sqlite"] = Field(default="sqlite", description="Database backend.")
    path: Path = Field(
        default=Path("gateway.db"),
        description="SQLite database file; default: gateway.db in gateway.data_dir.",
    )
    group_commit_max: int = Field(
        default=1000, gt=0, description="Most writes combined into one transaction."
    )
    group_commit_delay: Duration = Field(
        default=0.002, description="How long a write waits for others to share its transaction."
    )
    busy_timeout: Duration = Field(
        default=30.0, description="How long a write waits for the database's write lock that"
        " another program holds (a tool with gateway.db open for writing) before it gives up:"
        " the intake then pauses until the lock is gone, and a command exits 6."
    )


class RetentionSettings(_Section):
    """``[retention]``: how long settled messages keep their bodies; when free disk space warns."""

    keep: Duration = Field(
        default=90 * 86400,
        description="How long a settled message keeps its bodies (the input, its eCH-0223 text,"
        " attachments, payloads, receipts) after its last change; its records and the journal"
        " stay. A person who left the register (moved out, died, deleted) is deleted as long"
        " after, once their messages are pruned; residents stay. A receipt that matched no"
        " delivery keeps its bytes as long after it came. 0: forever.",
    )
    keep_files: Duration | None = Field(
        default=None,
        description="How long the files the gateway moved to its archive folders (a folder"
        " source's done_dir, the sedex transport's receipts_archive) stay there, counted from"
        " when each was moved there; the store holds their content meanwhile. Unset: as long"
        " as keep; 0: forever.",
    )
    interval: Duration = Field(
        default=3600.0, gt=0, description="How often the daemon deletes the bodies and"
        " archived files that are due."
    )
    warn_free_below: ByteSize = Field(
        default=ByteSize(1024 * MiB),
        description="Warn (log, journal, status) while the disk that holds the database has"
        " less free space than this; 0: never.",
    )

    @property
    def files_for(self) -> float:
        """Seconds an archived file stays (``keep_files``, else ``keep``); 0: forever."""
        return self.keep if self.keep_files is None else self.keep_files


class LimitsSettings(_Section):
    """``[limits]``: bounds on untrusted input (sizes accept ``"20MiB"``)."""

    max_document_bytes: ByteSize = Field(
        default=ByteSize(128 * MiB), gt=0,
        description="Largest input accepted, in bytes (a registry's baseDelivery of all its"
                    " residents is one input: about 4.6 KB each, 128 MiB about 28,000).",
    )
    max_zip_entries: int = Field(default=1000, gt=0, description="Most entries in one zip archive.")
    max_zip_bytes: ByteSize = Field(
        default=ByteSize(200 * MiB),
        gt=0,
        description="Largest total uncompressed size of one zip archive.",
    )
    max_zip_ratio: int = Field(
        default=100, gt=0, description="Largest compression ratio of a zip entry (zip bomb guard)."
    )
    max_kept_bytes: ByteSize = Field(
        default=ByteSize(32 * MiB),
        gt=0,
        le=512 * MiB,  # SQLite stores at most 1 GB in one value
        description="Of an input over its size limit, the store keeps at most this many bytes"
        " (the first ones), with the whole input's size and SHA-256.",
    )
    max_attachments: int = Field(
        default=20, gt=0,
        description="Most document files one outgoing message carries (a rule's documents,"
        " a manual send's --attach, and what its input brought).",
    )
    max_attachment_bytes: ByteSize = Field(
        default=ByteSize(20 * MiB), gt=0,
        description="Largest total size of the document files of one outgoing message.",
    )


class DocumentsSettings(_Section):
    """``[documents]``: the folder of scans that rules attach (``[[rules]] then.documents``)."""

    dir: Path = Field(
        default=Path("documents"),
        description="Folder of the documents rules name (patterns such as \"{vn}/*.pdf\" are"
        " relative to it); default: documents in gateway.data_dir. Read only, never changed.",
    )
    status: DocumentStatus = Field(
        default="undefined",
        description="eCH-0039 documentStatus written for each attached document.",
    )
    settle: Duration = Field(
        default=5.0, ge=0,
        description="How long a document must stay unmodified before a rule attaches it (a"
        " scanner writes in place); a message whose document changed more recently is"
        " quarantined, and `messages replay` sends it once the file is complete. \"0s\":"
        " for scanners that write under a temporary name and rename.",
    )


class ValidationSettings(_Section):
    """``[validation]``: which XSDs messages are validated against."""

    schemas: Literal["project", "official"] = Field(
        default="project",
        description='"project": the XSDs shipped with the gateway; "official": the eCH XSDs.',
    )
    official_catalog: Path | None = Field(
        default=None,
        description='XML catalog of the official eCH XSDs; required with schemas = "official".',
    )


class DispatcherSettings(_Section):
    """``[dispatcher]``: how due deliveries are claimed and sent."""

    batch_size: int = Field(default=500, gt=0, description="Most deliveries claimed at once.")
    rounds: int = Field(
        default=2, ge=1, le=16,
        description="Batches of each partner in flight at once: its next is claimed and sent"
        " while the previous waits for its transport (files synced, receipts recorded). A"
        " partner whose batches all wait (a partner that does not answer) is not claimed"
        " for meanwhile; the others' deliveries go on.",
    )
    lease: Duration = Field(
        default=60.0,
        gt=0,
        description="How long a claim lasts before another node may take it over.",
    )
    idle_poll: Duration = Field(
        default=0.5,
        gt=0,
        description="Pause between looks for due deliveries when there was nothing to do.",
    )
    receipt_check_interval: Duration = Field(
        default=30.0, gt=0, description="How often deliveries are checked for overdue receipts."
    )


class Settings(BaseSettings):
    """The whole configuration; build it with :func:`gateway.config.load_settings`.

    The loader supplies the layers (TOML files, then environment variables
    named by ``env_prefix`` and ``env_nested_delimiter``) and records where
    each key came from, so only keyword arguments are read here.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="forbid"
    )

    config_files: list[Path] = Field(
        default_factory=list, exclude=True, description="The files loaded, in order."
    )
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="This node: its name, files and logging."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings,
        description="The database of messages, deliveries and the journal.",
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        description="How long message bodies are kept, and the warning before the disk fills.",
    )
    limits: LimitsSettings = Field(
        default_factory=LimitsSettings,
        description="Bounds on untrusted input, against oversized files and zip bombs.",
    )
    documents: DocumentsSettings = Field(
        default_factory=DocumentsSettings,
        description="The folder of scans that rules attach to messages.",
    )
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings,
        description="Which XSDs messages are validated against.",
    )
    dispatcher: DispatcherSettings = Field(
        default_factory=DispatcherSettings, description="How due deliveries are claimed and sent."
    )
    http: HttpSettings = Field(
        default_factory=HttpSettings,
        description="The daemon's HTTP server: REST push sources and the routes plugins add.",
    )
    sources: dict[Name, SourceSettings] = Field(
        default_factory=dict, description="Where messages come from, by name."
    )
    partners: dict[Name, PartnerSettings] = Field(
        default_factory=dict, description="Where messages go, by name."
    )
    rules: list[RuleSettings] = Field(
        default_factory=list,
        description="The operator's rules, in order: the first whose match holds decides"
        " (after code rules from plugins, before each source's route_to).",
    )

    _provenance: Provenance | None = PrivateAttr(None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read keyword arguments only: the loader has merged files and environment."""
        return (init_settings,)

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        """Make ``data_dir`` absolute and put a relative ``store.path`` inside it."""
        self.gateway.data_dir = self.gateway.data_dir.absolute()
        self.store.path = self.gateway.data_dir / self.store.path
        self.documents.dir = self.gateway.data_dir / self.documents.dir
        return self
