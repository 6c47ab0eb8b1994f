"""``check-config``: a drop folder that another source reads, or a partner's transport
writes into or reads, is refused.

Two sources on one folder whose patterns overlap would each take a file before the
other: which source (and which mapping) a file came from would be chance. A drop folder
that is a partner's folder (the registry's inbox the ``folder`` transport writes into,
the sedex client's inbox) would take the gateway's own deliveries, or the canton's
pairs, as the registry's input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.api import CONFIGURATION, FolderHang, WritablePaths, resolved
from plugins.folder.globs import share_a_name
from plugins.folder.source import FolderOptions

Problem = tuple[str, str, str]


def shared_folder_problems(settings: Any) -> list[Problem]:
    """The problems of enabled folder sources whose drop folder is not their own."""
    sources = [(name, source.parsed) for name, source in settings.sources.items()
               if source.enabled and isinstance(source.parsed, FolderOptions)]
    seen: dict[Path, Path] = {}

    def at(path: Path) -> Path:  # each folder resolved once (a look in a thread of its own)
        if path not in seen:
            seen[path] = resolved(path)
        return seen[path]

    problems = []
    for i, (name, options) in enumerate(sources):
        key = f"sources.{name}.path"
        try:
            reason = (_other_source(options, sources[:i], at)
                      or _partner(options, settings, at))
        except FolderHang as exc:  # a share that is down
            reason = str(exc)
        if reason is not None:
            problems.append((CONFIGURATION, key, reason))
    return problems


def _other_source(options: FolderOptions, earlier: list[tuple[str, FolderOptions]],
                  at: Callable[[Path], Path]) -> str | None:
    for other, theirs in earlier:
        overlap = _overlap(options.pattern, theirs.pattern)
        if overlap is not None and at(options.path) == at(theirs.path):
            return (f"{options.path} is the drop folder of sources.{other} too, and their"
                    f" patterns overlap ({overlap}): which source takes a file would be chance;"
                    " give each source a folder of its own")
    return None


def _partner(options: FolderOptions, settings: Any, at: Callable[[Path], Path]) -> str | None:
    for name, partner in settings.partners.items():
        parsed = partner.parsed
        if not isinstance(parsed, WritablePaths):
            continue
        for folder in parsed.writable_paths():
            if at(options.path) == at(folder.path):
                return (f"{options.path} is partners.{name}.{partner.transport}.{folder.key}"
                        " too: the gateway would take what it writes or reads there as this"
                        " source's input; give the source the folder the registry writes to")
    return None


def _overlap(ours: list[str], theirs: list[str]) -> str | None:
    """Two patterns some file name matches both of (``*.xml`` and ``export-*.xml``; ``a*.xml``
    and ``*b.xml``, both ``ab.xml``), said as ``'a' and 'b'``; ``None`` if there are none
    (``*.xml`` and ``*.csv``)."""
    for a in ours:
        for b in theirs:
            if share_a_name(a, b):
                return f"{a!r} and {b!r}"
    return None
