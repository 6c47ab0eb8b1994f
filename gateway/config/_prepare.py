"""Before validation: read ``<key>_file`` secrets and resolve relative paths (refusing URLs)."""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

from gateway.config._provenance import Key, Problem, Provenance
from gateway.config._units import bare_number_problem

FILE_SUFFIX = "_file"
#: The start of a URL, which a path key never takes (``https://canton.example/svc?wsdl``).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def prepare(
    data: Mapping[str, Any],
    model: type[BaseModel],
    prefix: Key,
    provenance: Provenance,
    problems: list[Problem],
) -> dict[str, Any]:
    """Return a copy of ``data``, the table of ``model`` at ``prefix``, ready to validate.

    ``<key>_file = "/path"`` sets ``<key>`` (a field of ``model``, which has no
    field ``<key>_file``) to the file's content without its trailing newline; an empty
    file, or one of more lines, is a problem.
    A relative path given for a ``Path`` field is resolved against the
    directory of the file that set it, without ``..`` (:func:`config_path`),
    as the operator is shown it; a URL given for one is a problem (the gateway
    reads local files and fetches nothing). A duration or size written as a bare number
    whose meaning is not plain (:func:`bare_number_problem`) is a problem.
    Nested tables are prepared alike; problems are appended to ``problems``.
    """
    fields = model.model_fields | {f.alias: f for f in model.model_fields.values() if f.alias}
    prepared: dict[str, Any] = {}
    for name, value in data.items():
        key = (*prefix, name)
        target = name.removesuffix(FILE_SUFFIX)
        if target != name and name not in fields and target in fields:
            if target in data:
                problems.append(provenance.problem(key, f"set either {target} or {name}, not both"))
                continue
            secret = _read_secret(value, key, provenance, problems)
            if secret is not None:
                prepared[target] = secret
                provenance.origins[(*prefix, target)] = provenance.at(key)
            continue
        field = fields.get(name)
        if field is not None:
            unit = bare_number_problem(value, field)
            if unit is not None:
                problems.append(provenance.problem(key, unit))
            value = _prepare_value(value, field.annotation, key, provenance, problems)
        prepared[name] = value
    return prepared


def _prepare_value(
    value: Any, annotation: Any, key: Key, provenance: Provenance, problems: list[Problem]
) -> Any:
    kinds = members(annotation)
    if isinstance(value, str) and any(_is_subclass(m, PurePath) for m in kinds):
        if _URL.match(value):
            problems.append(provenance.problem(key, f"{value} is a URL: this key takes the path"
                                               " of a local file (the gateway fetches nothing);"
                                               " save the file and name it here"))
        return config_path(provenance.at(key).base, value)
    if isinstance(value, list) and any(get_origin(m) is list for m in kinds):
        items = [arg for m in kinds if get_origin(m) is list for arg in get_args(m)]
        return [_prepare_value(item, Union[tuple(items)], (*key, str(i)), provenance,  # noqa: UP007
                               problems) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    for member in kinds:
        if _is_subclass(member, BaseModel):
            return prepare(value, member, key, provenance, problems)
        args = get_args(member)
        if get_origin(member) is dict and len(args) == 2 and _is_subclass(args[1], BaseModel):
            return {
                name: prepare(table, args[1], (*key, name), provenance, problems)
                if isinstance(table, dict)
                else table
                for name, table in value.items()
            }
    return value


def config_path(base: Path, value: str) -> Path:
    """``value`` relative to ``base``; one with ``..`` (``conf.d/../nova``) resolved as
    opening it would (following symlinks: ``conf.d`` may be a link), others as written."""
    path = base / value
    return path.resolve() if ".." in path.parts else path


def keys_at(model: type[BaseModel], key: Key) -> list[str]:
    """The keys the table at ``key`` of ``model`` takes, through tables, named tables
    (``[sources.<name>]``) and array entries (``[[rules]]``); none if no model says."""
    kinds: list[Any] = [model]
    for part in key:
        inner: list[Any] = []
        for kind in (m for k in kinds for m in members(k)):
            if get_origin(kind) in (dict, list, tuple):
                inner.append(get_args(kind)[-1])  # ``part`` names an entry
            elif _is_subclass(kind, BaseModel) and part in kind.model_fields:
                inner.append(kind.model_fields[part].annotation)
        kinds = inner
    return sorted({name for k in kinds for m in members(k) if _is_subclass(m, BaseModel)
                   for name in keys_of(m)})


def keys_of(model: type[BaseModel]) -> list[str]:
    """The keys ``model``'s table takes: its fields, and ``<key>_file`` for each text field
    (a typo of ``token_file`` is said to be one)."""
    return [*model.model_fields, *(f"{name}{FILE_SUFFIX}" for name, field
                                   in model.model_fields.items() if _is_text(field.annotation))]


def _is_text(annotation: Any) -> bool:
    return any(m is str or _is_subclass(m, SecretStr) for m in members(annotation))


def members(annotation: Any) -> tuple[Any, ...]:
    """The types a value of ``annotation`` may have (``Path | None`` → Path, None)."""
    if get_origin(annotation) is Annotated:
        return members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(m for arg in get_args(annotation) for m in members(arg))
    return (annotation,)


def _is_subclass(candidate: Any, base: type) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, base)


def _read_secret(
    value: Any, key: Key, provenance: Provenance, problems: list[Problem]
) -> str | None:
    if not isinstance(value, str):
        problems.append(provenance.problem(key, "must be the path of a file (a string)"))
        return None
    path = config_path(provenance.at(key).base, value)
    try:
        secret = path.read_text(encoding="utf-8").removesuffix("\n")  # (\r\n read as \n)
    except OSError as exc:
        problems.append(provenance.problem(key, f"cannot read {path}: {exc.strerror or exc}"))
        return None
    except UnicodeDecodeError:
        problems.append(provenance.problem(key, f"{path} is not UTF-8 text"))
        return None
    if not secret:  # a secret never written: an empty token or password is sent otherwise
        problems.append(provenance.problem(key, f"{path} is empty: write the value into it"))
        return None
    if "\n" in secret:  # a line break in a token makes every request fail
        problems.append(provenance.problem(
            key, f"{path} holds more than one line (an empty line at its end?): write the value"
            " alone on one line; only the line end after it is left out"))
        return None
    return secret
