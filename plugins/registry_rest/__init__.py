"""The reference registry plugin: a commune's registry connected over REST, both ways.

The model a vendor copies (docs/plugins.md, "Writing a registry plugin"):
it imports from :mod:`gateway.api` only, and each hook below is a few lines
that hand the work to a module of its own.

- **canton messages out** (the way back): the ``registry-rest`` transport,
  on the partner with ``role = "registry"``, POSTs each to the registry's
  ``inbox`` (:mod:`.transport`);
- **events in**: the ``registry-rest`` source polls the registry's
  ``events`` with a persisted cursor (:mod:`.source`); a registry that
  would rather push uses the built-in ``http`` source instead;
- **person look-up**: ``gateway_person_lookup`` asks the registry's
  ``persons`` for a person the gateway has no state of, and
  ``gateway_person_resolve`` searches it for the resident a canton's message
  names when the gateway's own state finds nobody (:mod:`.lookup`).

The registry's API is described in docs/registry-rest.md, and
:mod:`.sim` serves it, for tests and for trying a configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from pydantic import BaseModel

from gateway.api import (
    CONFIGURATION,
    PersonState,
    PluginContext,
    SourceType,
    TransportType,
    ech0223,
    hookimpl,
)
from plugins.registry_rest.lookup import identification_queries, look_up, resolve
from plugins.registry_rest.options import TRANSPORT, RegistryOptions
from plugins.registry_rest.source import (
    RegistrySource,
    RegistrySourceOptions,
    registry_options,
)
from plugins.registry_rest.transport import RegistryTransport


def registries(settings: Any) -> dict[str, RegistryOptions]:
    """The connections of the enabled ``registry-rest`` partners by name, in name order."""
    found = {name: registry_options(settings, name) for name in sorted(settings.partners)
             if settings.partners[name].enabled}
    return {name: options for name, options in found.items() if options is not None}


def _transport(options: BaseModel, context: PluginContext) -> RegistryTransport:
    assert isinstance(options, RegistryOptions)
    return RegistryTransport(options, context)


def _source(options: BaseModel, context: PluginContext) -> RegistrySource:
    assert isinstance(options, RegistrySourceOptions)
    return RegistrySource(options, context)


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``registry-rest`` transport: the canton's messages POSTed into the registry."""
    return [TransportType(TRANSPORT, RegistryOptions, _transport,
                          "a commune registry's REST API: canton messages POSTed to its inbox,"
                          " persons looked up there")]


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``registry-rest`` source: the registry's events, polled with a cursor."""
    return [SourceType(TRANSPORT, RegistrySourceOptions, _source,
                       "a commune registry's events, polled from its REST API (names the"
                       " registry-rest partner)")]


@hookimpl
def gateway_person_lookup(keys: Sequence[str], settings: Any
                          ) -> Awaitable[PersonState | None] | None:
    """Ask the registries for a person the gateway has no state of (``None``: none configured)."""
    connections = registries(settings)
    return look_up(connections, keys) if connections else None


@hookimpl
def gateway_person_resolve(identification: ech0223.PersonIdentificationLight, settings: Any
                           ) -> Awaitable[Sequence[PersonState]] | None:
    """Search the registries for the resident a canton's message names (``None``: none
    configured); raises when nobody was found and a registry could not be asked."""
    connections = registries(settings)
    return resolve(connections, identification_queries(identification)) if connections else None


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """A ``registry-rest`` partner is a registry; a ``registry-rest`` source names one."""
    problems = [(CONFIGURATION, f"partners.{name}.role",
                 f'a partner with transport = "{TRANSPORT}" is the registry: set role = "registry"')
                for name, partner in settings.partners.items()
                if partner.transport == TRANSPORT and partner.role != "registry"]
    for name, source in settings.sources.items():
        if source.type == TRANSPORT and isinstance(source.parsed, RegistrySourceOptions):
            partner = source.parsed.registry or name
            if registry_options(settings, partner) is None:
                problems.append((CONFIGURATION, f"sources.{name}.registry",
                                 f"{partner!r} is not a partner with transport = \"{TRANSPORT}\""))
    return problems
