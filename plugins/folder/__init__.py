"""The ``folder`` source: picks up files a registry drops into a directory."""

from __future__ import annotations

from gateway.api import SourceType, hookimpl
from plugins.folder.source import FolderOptions, FolderSource


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``folder`` source type."""
    return [SourceType("folder", FolderOptions, FolderSource,
                       "files dropped into a directory (eCH-0223 XML, a zip with files/, or"
                       " JSON and CSV exports with a mapping)")]
