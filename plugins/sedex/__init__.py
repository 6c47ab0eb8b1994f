"""The built-in sedex plugin: the ``sedex`` transport and the ``sedex-sim`` command.

Registered like any third-party plugin::

    [project.entry-points.ech_gateway]
    sedex = "plugins.sedex"
"""

from __future__ import annotations

from pydantic import BaseModel

from gateway.api import Command, PluginContext, TransportType, hookimpl
from plugins.sedex.options import SedexOptions
from plugins.sedex.sim_cli import COMMAND
from plugins.sedex.transport import SedexTransport

__all__ = ["SedexOptions", "SedexTransport", "gateway_commands", "gateway_transport_types"]


def create_transport(options: BaseModel, context: PluginContext) -> SedexTransport:
    """The transport factory: ``options`` is the validated :class:`SedexOptions`."""
    if not isinstance(options, SedexOptions):
        raise TypeError(f"sedex transport needs SedexOptions, got {type(options).__name__}")
    return SedexTransport(options, context)


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``sedex`` transport: the sedex client's outbox, inbox and receipts folders."""
    return [TransportType(
        "sedex", SedexOptions, create_transport,
        "sedex file interface: eCH-0090 envelopes into the outbox, receipts and inbound pairs back",
    )]


@hookimpl
def gateway_commands() -> list[Command]:
    """``ech-gateway sedex-sim``: a simulated sedex client on the configured folders, for site tests."""
    return [COMMAND]
