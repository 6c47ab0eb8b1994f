"""The built-in REST plugin: the ``rest`` transport (POST to a partner's endpoint).

Registered like any third-party plugin::

    [project.entry-points.ech_gateway]
    rest = "plugins.rest"
"""

from __future__ import annotations

from pydantic import BaseModel

from gateway.api import PluginContext, TransportType, hookimpl
from plugins.rest.transport import RestOptions, RestTransport

__all__ = ["RestOptions", "RestTransport", "gateway_transport_types"]


def create_transport(options: BaseModel, context: PluginContext) -> RestTransport:
    """The transport factory: ``options`` is the validated :class:`RestOptions`."""
    if not isinstance(options, RestOptions):
        raise TypeError(f"rest transport needs RestOptions, got {type(options).__name__}")
    return RestTransport(options, context)


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``rest`` transport: each message POSTed with an Idempotency-Key."""
    return [TransportType(
        "rest", RestOptions, create_transport,
        "HTTP POST of each message (XML, or a zip with attachments) with an Idempotency-Key",
    )]
