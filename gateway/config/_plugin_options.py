"""Validating each source's and partner's options with its plugin's model."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from gateway.config._load import provenance_of
from gateway.config._models import Plugged, Settings
from gateway.config._prepare import prepare
from gateway.config._provenance import Key, Problem, Provenance
from gateway.contracts import SourceType, TransportType


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
        return [provenance.problem(type_key, f"unknown {what} {chosen!r}; known: {names}")]
    problems: list[Problem] = []
    options = prepare(plugged.options, plugin.options, prefix, provenance, problems)
    try:
        plugged.parsed = plugin.options.model_validate(options)
    except ValidationError as exc:
        problems += provenance.problems(exc, prefix)
    return problems
