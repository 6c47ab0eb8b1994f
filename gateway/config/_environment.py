"""``check-config`` beyond syntax: can the gateway work with the folders it is given?"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config._checks import creatable, looked_at
from gateway.config._connections import Plugged
from gateway.config._load import provenance_of
from gateway.config._models import Settings
from gateway.config._provenance import Key, Problem
from gateway.plugin_types import WritablePath, WritablePaths


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
        why = looked_at(path, _unwritable_if_there, path)
        if why is not None:
            problems.append(provenance.problem(("store", "path"), why))
    said: set[Key] = set()
    for key, folder in plugin_folders(settings):
        why = looked_at(folder.path, _check_folder, folder)
        if why is not None and not (folder.derived_from and key in said):  # (said once)
            problems.append(provenance.problem(key, derived(folder) + why))
            said.add(key)
    return problems


def plugin_folders(settings: Settings) -> list[tuple[Key, WritablePath]]:
    """Every folder the options of sources and partners name, with the key that names it
    (``settings`` as :func:`~gateway.config.check_plugin_options` left it): for a folder
    derived from another option (:attr:`~gateway.plugin_types.WritablePath.derived_from`),
    that option, which the operator wrote; :func:`derived` says which folder it is."""
    plugged: list[tuple[Key, Plugged]] = [
        *((("sources", name), source) for name, source in settings.sources.items()),
        *((("partners", name, p.transport), p) for name, p in settings.partners.items()),
    ]
    found: list[tuple[Key, WritablePath]] = []
    for table, item in plugged:
        options = item.parsed
        if isinstance(options, WritablePaths):
            found += [((*table, folder.derived_from or folder.key), folder)
                      for folder in options.writable_paths()]
    return found


def derived(folder: WritablePath) -> str:
    """How a problem with ``folder`` begins: for a derived folder, which one it is."""
    if folder.derived_from is None:
        return ""
    return f"the {folder.key} folder derived from {folder.derived_from} ({folder.key} is unset): "


def _check_folder(folder: WritablePath) -> str | None:
    """Why the gateway cannot work in ``folder``, or ``None``."""
    path = folder.path
    if path.exists() and not path.is_dir():
        return f"{path} is not a folder"
    if path.exists():
        return _unwritable(path)
    if folder.created:
        return creatable(path)
    return f"{path} does not exist"


def _unwritable_if_there(path: Path) -> str | None:
    return _unwritable(path) if path.exists() else None


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
