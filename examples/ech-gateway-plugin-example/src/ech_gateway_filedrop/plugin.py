"""The hooks of the filedrop plugin (the module the ``ech_gateway`` entry point names)."""

from __future__ import annotations

from ech_gateway_filedrop.transport import FiledropOptions, FiledropTransport
from gateway.api import TransportType, hookimpl


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``filedrop`` transport: ``transport = "filedrop"`` in ``[partners.<name>]``."""
    return [TransportType("filedrop", FiledropOptions, FiledropTransport,
                          "writes each message into a folder; the partner confirms with"
                          " receipt files")]
