"""The ``folder`` source (files a registry drops into a directory) and transport (files
written into a directory a registry reads: the way back)."""

from __future__ import annotations

from typing import Any

from gateway.api import SourceType, TransportType, hookimpl
from plugins.folder.shared import shared_folder_problems
from plugins.folder.source import FolderOptions, FolderSource
from plugins.folder.transport import FolderTransport, FolderTransportOptions


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``folder`` source type."""
    return [SourceType("folder", FolderOptions, FolderSource,
                       "files dropped into a directory (eCH-0223 XML, a zip with files/, or"
                       " JSON and CSV exports with a mapping)")]


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``folder`` transport type."""
    return [TransportType("folder", FolderTransportOptions, FolderTransport,
                          "files written into a directory another program reads (the"
                          " registry's inbox for the canton's messages)")]


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """A drop folder another source reads with overlapping patterns, or that is a partner's
    folder, is refused (:mod:`plugins.folder.shared`)."""
    return shared_folder_problems(settings)
