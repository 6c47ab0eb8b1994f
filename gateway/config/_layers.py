"""The layers of a configuration: TOML files, then environment variables.

Each layer is a nested dict. Layers are deep-merged key by key in order,
and :class:`Provenance` remembers which layer set each key last.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from gateway.config._prepare import FILE_SUFFIX
from gateway.config._provenance import Key, Origin, Problem, Provenance, dotted

_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def read_toml(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse one TOML file; on failure return ``None`` and the problem."""
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream), []
    except FileNotFoundError:
        return None, [(str(path), "(file)", "file not found")]
    except IsADirectoryError:
        inside = path / "gateway.toml"
        hint = f": give the file, {inside}" if inside.is_file() else ""
        return None, [(str(path), "(file)", f"a folder, not a configuration file{hint}")]
    except OSError as exc:
        return None, [(str(path), "(file)", f"cannot read: {exc.strerror}")]
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT.search(message)
        if at is None:
            return None, [(str(path), "(file)", f"TOML syntax error: {message}")]
        reason = f"TOML syntax error at column {at[2]}: {message[: at.start()]}"
        return None, [(str(path), f"line {at[1]}", reason)]


def env_layer(
    env: Mapping[str, str], prefix: str, delimiter: str, sections: Collection[str]
) -> tuple[dict[str, Any], Provenance, list[Problem]]:
    """The keys set by ``<prefix><SECTION><delimiter><KEY>...`` variables.

    Names are case-insensitive; a value starting with ``[`` or ``{`` is JSON.
    Variables without the delimiter that name no section (such as
    ``ECH_GATEWAY_CONFIG``) are not configuration keys and are skipped.
    """
    data: dict[str, Any] = {}
    cwd = Path.cwd()
    provenance = Provenance(Origin("env", cwd))
    problems: list[Problem] = []
    for name, text in sorted(env.items()):
        if not name.upper().startswith(prefix.upper()):
            continue
        key = tuple(name[len(prefix) :].lower().split(delimiter))
        label = f"env {name}"
        if key[0] not in sections and len(key) == 1:
            meant = _one_underscore(key[0], sections, delimiter)
            if meant is not None:  # ECH_GATEWAY_GATEWAY_LOG_LEVEL: not silently ignored
                problems.append((label, key[0], "not a configuration key; did you mean"
                                 f" {prefix}{meant.upper()}? ({delimiter} between section"
                                 " and key, and between tables)"))
            continue
        if key[0] not in sections or not all(key):
            problems.append((label, dotted(key), "not a configuration key"))
            continue
        value: Any = text
        if text.lstrip().startswith(("[", "{")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append((label, dotted(key), f"invalid JSON: {exc}"))
                continue
        table = data
        for part in key[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                problems.append((label, dotted(key), "conflicts with a variable setting its table"))
                break
        else:
            table[key[-1]] = value
            provenance.origins[key] = Origin(label, cwd)
            for size in range(1, len(key)):
                provenance.origins.setdefault(key[:size], Origin(label, cwd))
    return data, provenance, problems


def _one_underscore(name: str, sections: Collection[str], delimiter: str) -> str | None:
    """``gateway__log_level`` for ``gateway_log_level``: a section and a key joined by one
    underscore, not ``delimiter``; ``None`` for a name that does not start with a section
    (``config``, ``load_plugins``: variables that are no configuration key)."""
    section = next((s for s in sections if name.startswith(f"{s}_")), None)
    if section is None or not name[len(section) + 1:].strip("_"):
        return None
    return f"{section}{delimiter}{name[len(section) + 1:]}"


def merge(
    into: dict[str, Any],
    layer: Mapping[str, Any],
    origin_of: Callable[[Key], Origin],
    provenance: Provenance,
    prefix: Key = (),
) -> None:
    """Deep-merge ``layer`` into ``into``: tables merge, other values replace.

    ``key`` and ``key_file`` are one setting: setting either drops the other.
    """
    for name, value in layer.items():
        key = (*prefix, name)
        if not (isinstance(value, dict) and isinstance(into.get(name), dict)):
            twin = (
                name.removesuffix(FILE_SUFFIX) if name.endswith(FILE_SUFFIX) else name + FILE_SUFFIX
            )
            for replaced in (name, twin):
                into.pop(replaced, None)
                provenance.forget((*prefix, replaced))
            into[name] = {} if isinstance(value, dict) else value
        provenance.origins[key] = origin_of(key)
        if isinstance(value, dict):
            merge(into[name], value, origin_of, provenance, key)
