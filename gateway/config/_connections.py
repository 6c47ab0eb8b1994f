"""``[sources.<name>]`` and ``[partners.<name>]``: what the gateway takes from and sends to.

Each table names the plugin that serves it (a source ``type``, a partner's
``transport``); the keys the core does not know are that plugin's options,
checked by the plugin's own model (:mod:`gateway.config._plugin_options`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from gateway.config._durations import Duration


class Plugged(BaseModel):
    """A table whose extra keys are a plugin's options, checked by its model."""

    model_config = ConfigDict(extra="forbid")

    options: dict[str, Any] = Field(
        default_factory=dict, description="The plugin's own options (see the plugin's docs)."
    )
    _parsed: BaseModel | None = PrivateAttr(None)

    @property
    def parsed(self) -> BaseModel | None:
        """``options`` validated by the plugin's model (set by check_plugin_options)."""
        return self._parsed

    @parsed.setter
    def parsed(self, value: BaseModel | None) -> None:
        self._parsed = value


class SourceSettings(Plugged):
    """``[sources.<name>]``: where input comes from; other keys are the type's options."""

    type: str = Field(description="Source type, provided by a plugin (e.g. folder).")
    enabled: bool = Field(default=True, description="Whether the source runs.")
    route_to: list[str] = Field(
        default_factory=list, description="Partners that get every message from this source."
    )
    partner: str | None = Field(
        default=None,
        description="The partner whose messages this source receives (a canton pushing or"
        " polled over REST or SOAP): its eCH-0223 messages take the way back to the registry"
        " like those the partner's transport receives, and its answers settle deliveries to"
        " that partner only.",
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, data: Any) -> Any:
        """Move every key that is not a field into ``options``."""
        if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
            return data
        own = {k: v for k, v in data.items() if k in cls.model_fields}
        extra = {k: v for k, v in data.items() if k not in cls.model_fields}
        return {**own, "options": {**own.get("options", {}), **extra}}


class RetrySettings(BaseModel):
    """``[partners.<name>.retry]``: exponential backoff of failed sends."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        default=100, ge=1,
        description="Attempts before a delivery becomes dead (faults on this machine count none).",
    )
    max_age: Duration = Field(
        default=2 * 86400.0, gt=0, description="Age after which a failing delivery becomes dead."
    )
    initial: Duration = Field(default=1.0, gt=0, description="Wait before the first retry.")
    maximum: Duration = Field(default=3600.0, gt=0, description="Longest wait between attempts.")
    multiplier: float = Field(
        default=2.0, ge=1, description="Factor by which the wait grows per attempt."
    )
    jitter: Duration = Field(default=1.0, description="Largest random time added to each wait.")
    max_retry_after: Duration = Field(
        default=3600.0, ge=0,
        description="Longest wait a partner's answer may ask for (HTTP Retry-After); the next"
        " attempt comes no earlier than it asks, but never later than this after the failure.",
    )


class PartnerSettings(Plugged):
    """``[partners.<name>]``: a destination; ``[partners.<name>.<transport>]`` holds options."""

    transport: str = Field(description="Transport type, provided by a plugin (e.g. sedex).")
    enabled: bool = Field(
        default=True, description="Whether deliveries to this partner are sent. While not,"
        " messages routed to it are kept, their deliveries queued, and sent once it is enabled.")
    role: Literal["partner", "registry"] = Field(
        default="partner",
        description="partner: an authority the rules send to, whose eCH-0223 messages come back"
        " (the canton); registry: the commune's registry, which gets those messages of the"
        " partners (README, \"The way back\"), and which rules do not send to.",
    )
    municipalities: list[int] = Field(
        default_factory=list,
        description="With several registries: the BFS numbers of the municipalities whose"
        " residents this registry keeps (a canton's message about a resident goes to the"
        " registry of the source that sent the original, else to the one of the person's"
        " municipality).",
    )
    ech0223_version: Literal["1.0", "1.3", "1.4", "1.5"] = Field(
        default="1.5",
        description="eCH-0223 version the partner runs: messages to it are converted to this"
        " version (1.5-only elements are dropped, with a warning), and versionless messages"
        " from it are read as this version.",
    )
    unsupported_event: Literal["othercase", "refuse"] = Field(
        default="othercase",
        description="What happens to a personEvent that the other side's eCH-0223 version lacks"
        " (e.g. prolongationL for 1.4, changeOccupation from a 1.4 partner): othercase sends"
        " othercaseOfMigration instead (in 1.0 and 1.3, which lack that too, no personEvent)"
        " and names the event in businessComment; refuse quarantines the message.",
    )
    receipt_timeout: Duration = Field(
        default=3600.0,
        gt=0,
        description="A sent delivery without receipt after this long is overdue.",
    )
    failing_after: Duration = Field(
        default=3600.0,
        gt=0,
        description="A delivery whose attempts have failed for this long (it waits to be"
        " retried, not delivered nor dead yet), and failed again since the partner last took"
        " a delivery, makes `status` report the partner as failing; once the partner takes"
        " deliveries again, it no longer does.",
    )
    retry: RetrySettings = Field(
        default_factory=RetrySettings,
        description="Retries of failed sends: the wait starts at initial and grows by multiplier"
        " up to maximum, plus up to jitter; after max_attempts or max_age the delivery is dead.",
    )

    @model_validator(mode="before")
    @classmethod
    def _take_options(cls, data: Any) -> Any:
        """Move the table named after the transport into ``options``."""
        if not isinstance(data, dict):
            return data
        transport = data.get("transport")
        if not isinstance(transport, str) or transport in cls.model_fields:
            return data
        if not isinstance(data.get(transport), dict) or not isinstance(
            data.get("options", {}), dict
        ):
            return data
        rest = {k: v for k, v in data.items() if k != transport}
        return {**rest, "options": {**rest.get("options", {}), **data[transport]}}
