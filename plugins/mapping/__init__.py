"""The ``mapping`` plugin: JSON and CSV exports of registries turned into eCH-0223.

A mapping file (TOML) says which column or JSON path fills which eCH-0223
field, with value tables for codes and the date formats of the export; a
source names it (``mapping = "mappings/nova.toml"`` of a folder source).
``ech-gateway map-test`` shows what a mapping makes of an export.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from gateway.api import Command, NormaliseContext, Normalised, RawInput, hookimpl
from plugins.mapping.cli import COMMAND, mapping_problems
from plugins.mapping.normaliser import NATIONALITY_BEFORE, normalise
from plugins.mapping.spec import FORMATS

__all__ = ["gateway_check_config", "gateway_commands", "gateway_fact_values", "gateway_normalise"]


@hookimpl
def gateway_fact_values() -> Mapping[str, Collection[str]]:
    """``format``: what a mapping's export is written in (csv, json); ``nationality_before``
    of the events whose message states a nationality the person did not have before."""
    return {"format": FORMATS, "nationality_before": sorted(set(NATIONALITY_BEFORE.values()))}


@hookimpl(tryfirst=True)
def gateway_normalise(raw: RawInput, context: NormaliseContext) -> Normalised | None:
    """Exports (input whose source names a mapping) and their rows; declines anything else.

    First: an export is no XML, and other normalisers would refuse it as such.
    """
    return normalise(raw, context)


@hookimpl
def gateway_commands() -> list[Command]:
    """``ech-gateway map-test``: what a source's mapping makes of an export file."""
    return [COMMAND]


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """Every problem of the mapping files the sources name, as (file, key, reason)."""
    return mapping_problems(settings)
