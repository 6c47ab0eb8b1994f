"""Putting the configuration, the plugins and the schemas together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

from gateway.archives import archive_problems
from gateway.config import check_plugin_options, load_settings, located
from gateway.contracts import PartnerVersion
from gateway.convert import Validator
from gateway.errors import ConfigError
from gateway.plugins import fact_values, source_types, transport_types
from gateway.xml.validation import SchemaSet


def load_config(path: Path | None, pm: pluggy.PluginManager) -> Any:
    """Load and fully check the configuration, plugin types and options included."""
    sources, transports = source_types(pm), transport_types(pm)
    settings = load_settings(path, source_types=sources, transport_types=transports,
                             fact_values=fact_values(pm))
    problems = check_plugin_options(settings, sources, transports)
    if not problems:
        problems = located(settings, [*archive_problems(settings),
                                      *(p for found in pm.hook.gateway_check_config(settings=settings)
                                        for p in found)])
    if problems:
        raise ConfigError(problems)
    return settings


def partner_ech0223(settings: Any) -> dict[str, PartnerVersion]:
    """Each partner's eCH-0223 version and unsupported-event policy, for :class:`NormaliseContext`."""
    return {name: PartnerVersion(p.ech0223_version, p.unsupported_event)
            for name, p in settings.partners.items()}


def schema_set(settings: Any) -> SchemaSet:
    """The schemas ``[validation]`` selects: the project's own, or an official catalog."""
    v = settings.validation
    if v.schemas == "official":
        return SchemaSet.from_catalog(v.official_catalog)
    return SchemaSet.from_directory()


def make_validator(schemas: SchemaSet) -> Validator:
    """A validator of eCH-0223 messages (parsed, or XML bytes) against a version."""

    def validate(doc: Any, version: str) -> list[str]:
        report = schemas.validate(doc, ech0223_version=version)
        return [f"line {e.line}: {e.message}" for e in report.errors]

    return validate


def partner_of(settings: Any, source: str) -> str | None:
    """The partner (``role = "partner"``) whose messages ``source`` brings, if any."""
    partner = source if source in settings.partners else None
    if partner is None and source in settings.sources:
        partner = settings.sources[source].partner
    if partner is None or partner not in settings.partners:
        return None
    return partner if settings.partners[partner].role == "partner" else None


def registries(settings: Any) -> list[str]:
    """The enabled partners with ``role = "registry"``, by name."""
    return sorted(name for name, p in settings.partners.items()
                  if p.role == "registry" and p.enabled)
