"""The built-in sedex plugin: the ``sedex`` transport and the ``sedex-sim`` command.

``check-config`` refuses enabled partners sharing an inbox that their ids
cannot tell apart.

Registered like any third-party plugin::

    [project.entry-points.ech_gateway]
    sedex = "plugins.sedex"
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api import (
    CONFIGURATION,
    Command,
    FolderHang,
    PluginContext,
    TransportType,
    hookimpl,
    same_folder,
)
from plugins.sedex.inbox_partners import sedex_partners
from plugins.sedex.options import SedexOptions
from plugins.sedex.sim_cli import COMMAND
from plugins.sedex.transport import SedexTransport

__all__ = ["SedexOptions", "SedexTransport", "gateway_check_config", "gateway_commands",
           "gateway_transport_types"]


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


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """Enabled partners sharing an inbox are told apart by their ``recipient_id`` and
    ``sender_id``: two with the same pair of ids could each claim the other's messages."""
    problems = []
    enabled = [(name, opts) for name, on, opts in sedex_partners(settings) if on]
    for i, (name, opts) in enumerate(enabled):
        try:
            twin = next((other for other, o in enabled[:i]
                         if (o.recipient_id, o.sender_id) == (opts.recipient_id, opts.sender_id)
                         and same_folder(o.inbox, opts.inbox)), None)
        except FolderHang as exc:  # a share that is down
            problems.append((CONFIGURATION, f"partners.{name}.sedex.inbox", str(exc)))
            continue
        if twin is not None:
            problems.append((CONFIGURATION, f"partners.{name}.sedex.recipient_id",
                             f"partner {twin!r} has the same recipient_id and sender_id"
                             f" ({opts.recipient_id}, {opts.sender_id}) and the same inbox"
                             f" ({opts.inbox}): whose a message there is could not be told"))
    return problems
