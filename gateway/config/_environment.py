"""``check-config`` beyond syntax: can the gateway work with the folders it is given?"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config._checks import creatable
from gateway.config._connections import Plugged
from gateway.config._load import provenance_of
from gateway.config._models import Settings
from gateway.config._provenance import Key, Problem, Provenance
from gateway.plugin_types import WritablePaths


def check_environment(settings: Settings) -> list[Problem]:
    """Folders that are missing or not writable, and a database the gateway cannot write.

    Plugin folders come from options models that implement
    :class:`~gateway.plugin_types.WritablePaths` (``settings`` as
    :func:`~gateway.config.check_plugin_options` left it). A folder the
    plugin creates may be missing if it can be created.
    """
    provenance = provenance_of(settings)
    store = settings.store.path
    problems = []
    for path in (store.parent, store):
        why = _unwritable(path) if path.exists() else None
        if why is not None:
            problems.append(provenance.problem(("store", "path"), why))
    plugged: list[tuple[Key, Plugged]] = [
        *((("sources", name), source) for name, source in settings.sources.items()),
        *((("partners", name, p.transport), p) for name, p in settings.partners.items()),
    ]
    for table, item in plugged:
        problems += _check_folders(table, item, provenance)
    return problems


def _check_folders(table: Key, item: Plugged, provenance: Provenance) -> list[Problem]:
    options = item.parsed
    if not isinstance(options, WritablePaths):
        return []
    problems = []
    for folder in options.writable_paths():
        path = folder.path
        if path.exists():
            why = _unwritable(path)
        elif folder.created:
            why = creatable(path)
        else:
            why = f"{path} does not exist"
        if why is not None:
            problems.append(provenance.problem((*table, folder.key), why))
    return problems


def _unwritable(path: Path) -> str | None:
    """Why the gateway cannot write in directory (or to file) ``path``, or ``None``."""
    if path.is_dir():
        if os.access(path, os.W_OK | os.X_OK):
            return None
        what = f"cannot write in {path}"
    elif path.is_file():
        if os.access(path, os.W_OK):
            return None
        what = f"cannot write to {path}"
    else:
        return f"{path} is neither a folder nor a file"
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return f"{what}: read-only file system"
    return f"{what}: permission denied"
