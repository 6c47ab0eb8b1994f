"""The ``http`` source: a registry or partner POSTs messages to the gateway (REST push)."""

from __future__ import annotations

from typing import Any

from gateway.api import CONFIGURATION, SourceType, hookimpl
from plugins.http_push.options import HttpPushOptions
from plugins.http_push.source import PushSource


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``http`` source type."""
    return [SourceType("http", HttpPushOptions, PushSource,
                       "messages POSTed to /sources/<name>/messages with a bearer token"
                       " (needs [http] listen)")]


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """An ``http`` source needs the HTTP server."""
    if settings.http.listen is not None:
        return []
    return [(CONFIGURATION, f"sources.{name}.type",
             'a source of type "http" needs the HTTP server: set [http] listen')
            for name, source in settings.sources.items()
            if source.type == "http" and source.enabled]
