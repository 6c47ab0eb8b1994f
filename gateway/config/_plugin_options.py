"""Validating each source's and partner's options with its plugin's model.

A key the model does not declare is refused, naming the plugin and the
closest keys it does declare, whatever the model's own ``extra`` setting
defaults to: a typo in an option must not silently fall back to a default.
A model that wants other keys says so (``extra="allow"`` or ``"ignore"``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gateway.config._connections import Plugged
from gateway.config._load import provenance_of
from gateway.config._models import Settings
from gateway.config._prepare import FILE_SUFFIX, keys_of, members, prepare
from gateway.config._provenance import Key, Problem, Provenance
from gateway.config._suggest import did_you_mean
from gateway.plugin_types import SourceType, TransportType

#: What a plugin's problem names for a key of the configuration, whichever file set it.
CONFIGURATION = "(configuration)"


def check_plugin_options(
    settings: Settings,
    source_types: Mapping[str, SourceType],
    transport_types: Mapping[str, TransportType],
) -> list[Problem]:
    """Validate plugin options; set ``parsed`` on each source and partner that passes.

    Sources are checked against ``source_types[source.type].options``,
    partners against ``transport_types[partner.transport].options``.

    :return: the problems, as (file, key, reason); empty when all is well.
    """
    provenance = provenance_of(settings)
    problems: list[Problem] = []
    for name, source in settings.sources.items():
        table = ("sources", name)
        problems += _check(
            source, source.type, source_types, "source type", table, (*table, "type"), provenance
        )
    for name, partner in settings.partners.items():
        table = ("partners", name)
        options_table = (*table, partner.transport)
        problems += _check(
            partner,
            partner.transport,
            transport_types,
            "transport",
            options_table,
            (*table, "transport"),
            provenance,
        )
    return problems


def located(settings: Settings, problems: list[Problem]) -> list[Problem]:
    """``problems`` a plugin found, each naming the file (or variable) that set its key where
    the plugin wrote ``(configuration)``: a plugin sees the merged settings, not the layers."""
    provenance = provenance_of(settings)
    return [(provenance.at(tuple(key.split("."))).label if file == CONFIGURATION else file, key, reason)
            for file, key, reason in problems]


def _check(
    plugged: Plugged,
    chosen: str,
    types: Mapping[str, SourceType | TransportType],
    what: str,
    prefix: Key,
    type_key: Key,
    provenance: Provenance,
) -> list[Problem]:
    """Validate ``plugged.options`` (the table at ``prefix``) with the ``chosen`` type."""
    plugged.parsed = None
    plugin = types.get(chosen)
    if plugin is None:
        names = ", ".join(sorted(types)) or "none (no plugin provides one)"
        return [provenance.problem(type_key, f"unknown {what} {chosen!r}{did_you_mean(chosen, types)};"
                                                 f" known: {names}")]
    problems: list[Problem] = []
    options = prepare(plugged.options, plugin.options, prefix, provenance, problems)
    owner = f"the {what} {chosen!r} (plugin {plugin.plugin!r})" if plugin.plugin else (
        f"the {what} {chosen!r}")
    unknown = _unknown_keys(options, plugin.options, prefix, owner, provenance)
    try:
        parsed = plugin.options.model_validate(options)
    except ValidationError as exc:
        # (a secret file refused: its key is not said to be missing as well)
        reported = {k for _file, key, _reason in [*unknown, *problems]
                    for k in (key, key.removesuffix(FILE_SUFFIX))}
        problems += [p for p in provenance.problems(exc, prefix) if p[1] not in reported]
    else:
        plugged.parsed = None if unknown else parsed
    return problems + unknown


def _unknown_keys(data: Mapping[str, Any], model: type[BaseModel], prefix: Key, owner: str,
                  provenance: Provenance) -> list[Problem]:
    """A problem for each key of ``data`` (and of its nested tables) that ``model`` lacks."""
    if model.model_config.get("extra") in ("allow", "ignore"):
        return []
    fields = model.model_fields | {f.alias: f for f in model.model_fields.values() if f.alias}
    problems = []
    for name, value in data.items():
        key = (*prefix, name)
        field = fields.get(name)
        if field is None:
            close = difflib.get_close_matches(name, keys_of(model), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else (
                f"; it takes {', '.join(sorted(model.model_fields)) or 'no keys'}")
            problems.append(provenance.problem(key, f"unknown key {name!r} for {owner}{hint}"))
            continue
        if not isinstance(value, Mapping):
            continue
        for member in members(field.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                problems += _unknown_keys(value, member, key, owner, provenance)
                break
            args = get_args(member)
            if get_origin(member) is dict and len(args) == 2 and isinstance(args[1], type) and (
                    issubclass(args[1], BaseModel)):
                for item, table in value.items():
                    if isinstance(table, Mapping):
                        problems += _unknown_keys(table, args[1], (*key, item), owner, provenance)
                break
    return problems

