"""Checks that span sections or look at the file system."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gateway.config._models import Settings
from gateway.config._provenance import Problem, Provenance
from gateway.config._rules import NORMALISER_FACTS
from gateway.config._suggest import did_you_mean
from gateway.errors import FolderHang
from gateway.facts import NAMES as FACT_NAMES
from gateway.folder_checks import answered
from gateway.manual import SOURCE as MANUAL

T = TypeVar("T")


def check_routes(data: Mapping[str, Any], provenance: Provenance,
                 fact_values: Mapping[str, Collection[str]] | None = None) -> list[Problem]:
    """Routes to unknown partners, and rules matching facts or values that do not exist.

    Found in the merged data before validation: looking at the data rather than
    validated settings reports these along with every other error; values of the
    wrong type are left to validation.

    :param fact_values: the values each fact can take (facts not in it are not checked).
    """
    partners = data.get("partners")
    names = sorted(partners) if isinstance(partners, dict) else []
    known = ", ".join(names) if names else "none is configured"
    sources = data.get("sources")
    registries = _registries(partners)
    problems = []
    for name, table in sources.items() if isinstance(sources, dict) else ():
        routes = table.get("route_to") if isinstance(table, dict) else None
        for partner in routes if isinstance(routes, list) else ():
            if isinstance(partner, str) and partner not in names:
                reason = f"unknown partner {partner!r}; partners: {known}"
                problems.append(provenance.problem(("sources", name, "route_to"), reason))
            elif partner in registries:
                problems.append(provenance.problem(("sources", name, "route_to"),
                                                   _to_registry(partner)))
        sender = table.get("partner") if isinstance(table, dict) else None
        if isinstance(sender, str) and (sender not in names or sender in registries):
            problems.append(provenance.problem(
                ("sources", name, "partner"),
                f"{sender!r} is no partner with role \"partner\"; partners: {known}"))
    return problems + _check_rules(data, provenance, names, known, registries, fact_values or {})


def _registries(partners: Any) -> set[str]:
    """The partners with ``role = "registry"``."""
    return {name for name, table in (partners.items() if isinstance(partners, dict) else ())
            if isinstance(table, dict) and table.get("role") == "registry"}


def _to_registry(partner: str) -> str:
    return (f"partner {partner!r} is the registry (role = \"registry\"): it gets the partners'"
            " messages on the way back, rules do not send to it")


def _check_rules(data: Mapping[str, Any], provenance: Provenance, partners: list[str],
                 known: str, registries: set[str],
                 fact_values: Mapping[str, Collection[str]]) -> list[Problem]:
    """Rules that name unknown partners, sources, facts or fact values."""
    rules = data.get("rules")
    sources = data.get("sources")
    source_names = sorted(sources) if isinstance(sources, dict) else []
    facts = set(FACT_NAMES) | set(NORMALISER_FACTS)
    problems = []
    named: dict[str, int] = {}  # a rule's name -> the number of the first rule with it
    for i, rule in enumerate(rules if isinstance(rules, list) else ()):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        if isinstance(name, str) and named.setdefault(name, i + 1) != i + 1:
            problems.append(provenance.problem(
                ("rules", str(i), "name"),
                f"rules[{named[name]}] has this name too: the journal and `rules explain` name"
                " each decision by its rule, so each rule needs a name of its own"))
        then, match = rule.get("then"), rule.get("match")
        routes = then.get("route_to") if isinstance(then, dict) else None
        for partner in routes if isinstance(routes, list) else ():
            if isinstance(partner, str) and partner not in partners:
                problems.append(provenance.problem(
                    ("rules", str(i), "then", "route_to"),
                    f"unknown partner {partner!r}; partners: {known}"))
            elif partner in registries:
                problems.append(provenance.problem(("rules", str(i), "then", "route_to"),
                                                   _to_registry(partner)))
        if not isinstance(match, dict):
            continue
        for source in match.get("source") or () if isinstance(match.get("source"), list) else ():
            if isinstance(source, str) and source not in source_names:
                problems.append(provenance.problem(
                    ("rules", str(i), "match", "source"),
                    f"unknown source {source!r}; sources: {', '.join(source_names) or 'none'}"))
        fields = match.get("fields")
        for name, wanted in fields.items() if isinstance(fields, dict) else ():
            key = ("rules", str(i), "match", "fields", name)
            if name not in facts:
                problems.append(provenance.problem(
                    key, f"unknown field {name!r}{did_you_mean(name, facts)}; fields: "
                    + ", ".join(sorted(facts))))
            elif name in fact_values:
                problems += [provenance.problem(key, reason)
                             for reason in _unknown_values(name, wanted, fact_values[name])]
    return problems


#: How many of a fact's values a problem lists.
_SHOWN = 12
#: Fact values meant as "the message has none", which no fact has: how a rule says it instead.
_NONE_IS = {("person_event", "none"): "a message without a personEvent has no person_event,"
            ' not "none"; match.event = ["none"] matches it'}


def _unknown_values(name: str, wanted: Any, known: Collection[str]) -> list[str]:
    """Why each of ``wanted`` (a value or a list) is no value of fact ``name``, one of ``known``."""
    values = sorted(known)
    shown = ", ".join(values[:_SHOWN]) + (f", ... ({len(values)} in all)"
                                          if len(values) > _SHOWN else "")
    reasons = []
    for value in wanted if isinstance(wanted, list) else [wanted]:
        if not isinstance(value, str):
            reasons.append(f"{name} {value!r} is not a string; values rules see: {shown}")
        elif (name, value.casefold()) in _NONE_IS and value not in known:
            reasons.append(f"{name} {value!r} never matches: {_NONE_IS[name, value.casefold()]}")
        elif value not in known:
            reasons.append(f"unknown {name} {value!r}{did_you_mean(value, values)};"
                           f" values rules see: {shown}")
    return reasons


def check_types(data: Mapping[str, Any], provenance: Provenance, sources: Collection[str],
                transports: Collection[str]) -> tuple[list[Problem], set[str]]:
    """Source types and transports no plugin provides, found in the merged data.

    :return: the problems, and the names of partners whose transport is unknown
        (their options table cannot be told from a typo: it is not reported).
    """
    problems: list[Problem] = []
    unknown_partners: set[str] = set()
    for section, field, known, what in (("sources", "type", sources, "source type"),
                                        ("partners", "transport", transports, "transport")):
        tables = data.get(section)
        for name, table in tables.items() if isinstance(tables, dict) else ():
            chosen = table.get(field) if isinstance(table, dict) else None
            if isinstance(chosen, str) and chosen not in known:
                names = ", ".join(sorted(known)) or "none (no plugin provides one)"
                problems.append(provenance.problem((section, name, field),
                                                   f"unknown {what} {chosen!r}"
                                                   f"{did_you_mean(chosen, known)}; known: {names}"))
                if section == "partners":
                    unknown_partners.add(name)
    return problems, unknown_partners


def cross_check(settings: Settings, provenance: Provenance) -> list[Problem]:
    """Problems a single section cannot see: retry bounds, directories, catalogs."""
    problems = []
    for name, partner_settings in settings.partners.items():
        retry = partner_settings.retry
        if retry.maximum < retry.initial:
            maximum = ("partners", name, "retry", "maximum")
            problems.append(provenance.problem(maximum, "must not be shorter than retry.initial"))
    for key, directory in (
        (("gateway", "data_dir"), settings.gateway.data_dir),
        (("store", "path"), settings.store.path.parent),
    ):
        why = looked_at(directory, creatable, directory)
        if why is not None:
            problems.append(provenance.problem(key, why))
    for section in ("sources", "partners"):
        if MANUAL in getattr(settings, section):
            problems.append(provenance.problem(
                (section, MANUAL), f"the name {MANUAL} is reserved for manual sends (ech-gateway send)"))
    if any(rule.then.documents for rule in settings.rules):
        why = looked_at(settings.documents.dir, readable_folder, settings.documents.dir)
        if why is not None:
            problems.append(provenance.problem(("documents", "dir"), why))
    validation = settings.validation
    catalog = ("validation", "official_catalog")
    if validation.schemas == "official" and validation.official_catalog is None:
        problems.append(provenance.problem(catalog, 'required when schemas = "official"'))
    elif validation.official_catalog is not None and not validation.official_catalog.is_file():
        problems.append(provenance.problem(catalog, f"no such file: {validation.official_catalog}"))
    return problems


def looked_at(path: Path, check: Callable[[T], str | None], subject: T) -> str | None:
    """``check(subject)``: why the gateway cannot work with ``path``, or ``None``; in a look
    into ``path`` given up on after a while (:func:`~gateway.folder_checks.answered`), a
    folder that does not answer in time (a share that is down) said as the reason."""
    try:
        return answered(path, check, subject)
    except FolderHang as exc:
        return str(exc)


def readable_folder(directory: Path) -> str | None:
    """Why the gateway cannot list and read ``directory`` (rules attach its files), or ``None``."""
    if not directory.is_dir():
        return f"no such folder: {directory} (rules name documents in it)"
    if not os.access(directory, os.R_OK | os.X_OK):
        return f"{directory} is not readable"
    return None


def creatable(directory: Path) -> str | None:
    """Why ``directory`` neither exists nor can be created, or ``None``."""
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if existing != directory and not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create {directory}: {existing} is not writable"
    return None
