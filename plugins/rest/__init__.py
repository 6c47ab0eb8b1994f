"""The built-in REST plugin: the ``rest`` transport (POST to a partner's endpoint)
and the ``rest`` source (polling a server's outbox with a cursor).

Registered like any third-party plugin::

    [project.entry-points.ech_gateway]
    rest = "plugins.rest"
"""

from __future__ import annotations

from pydantic import BaseModel

from gateway.api import PluginContext, SourceType, TransportType, hookimpl
from plugins.rest.source import RestSource, RestSourceOptions
from plugins.rest.transport import RestOptions, RestTransport

__all__ = ["RestOptions", "RestSource", "RestSourceOptions", "RestTransport",
           "gateway_source_types", "gateway_transport_types"]


def create_transport(options: BaseModel, context: PluginContext) -> RestTransport:
    """The transport factory: ``options`` is the validated :class:`RestOptions`."""
    if not isinstance(options, RestOptions):
        raise TypeError(f"rest transport needs RestOptions, got {type(options).__name__}")
    return RestTransport(options, context)


def create_source(options: BaseModel, context: PluginContext) -> RestSource:
    """The source factory: ``options`` is the validated :class:`RestSourceOptions`."""
    if not isinstance(options, RestSourceOptions):
        raise TypeError(f"rest source needs RestSourceOptions, got {type(options).__name__}")
    return RestSource(options, context)


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``rest`` source: a server's outbox polled with a cursor kept across restarts."""
    return [SourceType(
        "rest", RestSourceOptions, create_source,
        "polls a REST API for messages (JSON pages with a cursor, kept across restarts)",
    )]


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``rest`` transport: each message POSTed with an Idempotency-Key."""
    return [TransportType(
        "rest", RestOptions, create_transport,
        "HTTP POST of each message (XML, or a zip with attachments) with an Idempotency-Key",
    )]
