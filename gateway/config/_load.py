"""Loading the configuration: find the files, merge the layers, validate."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.config._checks import check_routes, check_types, cross_check
from gateway.config._layers import env_layer, merge, read_toml
from gateway.config._models import ENV_DELIMITER, ENV_PREFIX, Settings
from gateway.config._prepare import FILE_SUFFIX, keys_at, prepare
from gateway.config._provenance import Key, Origin, Problem, Provenance
from gateway.errors import ConfigError

#: Environment variable naming the main configuration file.
CONFIG_ENV = "ECH_GATEWAY_CONFIG"
#: Where the main file is looked for when neither a path nor CONFIG_ENV is given.
DEFAULT_PATHS = (Path("gateway.toml"), Path("/etc/ech-gateway/gateway.toml"))
#: The directory, next to the main file, whose ``*.toml`` files override it.
CONF_D = "conf.d"


def find_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The main file: ``path``, else ``$ECH_GATEWAY_CONFIG``, else the first default that exists."""
    environ = os.environ if env is None else env
    if path is not None:
        return path.absolute()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).absolute()
    return next((p.absolute() for p in DEFAULT_PATHS if p.is_file()), None)


def ignored_files(main: Path | None) -> list[Path]:
    """The files in ``conf.d`` beside ``main`` that are not read, their names not ending in
    ``.toml`` (``20-canton.conf``, a ``.bak``, an editor's ``.toml~``), in name order."""
    if main is None:
        return []
    try:
        entries = sorted((main.parent / CONF_D).iterdir(), key=lambda p: p.name)
    except OSError:  # no conf.d (or one that cannot be listed: loading says so)
        return []
    return [p for p in entries if not p.name.endswith(".toml") and p.is_file()]


def load_settings(path: Path | None = None, *, env: Mapping[str, str] | None = None,
                  source_types: Collection[str] | None = None,
                  transport_types: Collection[str] | None = None,
                  fact_values: Mapping[str, Collection[str]] | None = None) -> Settings:
    """Load ``gateway.toml``, then ``conf.d/*.toml`` by name, then the environment.

    :param path: the main file; default: see :func:`find_config`.
    :param env: the environment (default ``os.environ``); variables named
        ``ECH_GATEWAY_<SECTION>__<KEY>`` override keys.
    :param source_types: the source types the plugins provide; when given with
        ``transport_types``, an unknown ``type`` or ``transport`` is named as such, with
        the known ones, rather than as an unknown options table.
    :param transport_types: the transports the plugins provide.
    :param fact_values: the values each fact can take (the plugins declare them): a rule
        matching a fact in it on any other value is named, with the known ones.
    :raises ConfigError: listing every problem as (file, key, reason).
    """
    environ = os.environ if env is None else env
    main = find_config(path, environ)
    problems: list[Problem] = []
    if main is None:
        looked = " and ".join(str(p.absolute()) for p in DEFAULT_PATHS)
        reason = (
            f"no configuration file: looked for {looked}; create one with `ech-gateway init DIR`"
        )
        problems.append((str(DEFAULT_PATHS[0].absolute()), "(file)", reason))
    fallback = Origin(str(main), main.parent) if main else Origin("defaults", Path.cwd())
    provenance = Provenance(fallback)
    data: dict[str, Any] = {}
    files = []
    if main is not None:
        conf_d = sorted((main.parent / CONF_D).glob("*.toml"), key=lambda p: p.name)
        for file in [main, *conf_d]:
            layer, found = read_toml(file)
            problems += found
            if layer is not None:
                files.append(file)
                merge(data, layer, _always(Origin(str(file), file.parent)), provenance)
    env_data, env_provenance, found = env_layer(environ, ENV_PREFIX, ENV_DELIMITER, _sections())
    problems += found
    merge(data, env_data, env_provenance.at, provenance)
    if "config_files" in data:
        del data["config_files"]
        problems.append(provenance.problem(("config_files",), "not a configuration key"))
    rules = data.get("rules")
    provenance.rule_names = [str(r.get("name", "")) if isinstance(r, dict) else ""
                             for r in (rules if isinstance(rules, list) else ())]
    gateway = data.setdefault("gateway", {})
    if isinstance(gateway, dict):
        gateway.setdefault("data_dir", fallback.base)
    prepared = prepare(data, Settings, (), provenance, problems)
    problems += check_routes(prepared, provenance, fact_values)
    # an unknown type or transport is reported here only with other problems; alone,
    # check_plugin_options reports it together with the options of the known ones
    unknown_types: list[Problem] = []
    unknown: set[str] = set()
    if source_types is not None and transport_types is not None:
        unknown_types, unknown = check_types(prepared, provenance, source_types, transport_types)
    try:
        settings = Settings(**prepared, config_files=files)
    except ValidationError as exc:
        # (a bare number, say: said once; a secret file refused: not said missing too)
        said = {k for _file, key, _reason in problems
                for k in (key, key.removesuffix(FILE_SUFFIX))}
        problems += [p for p in provenance.problems(exc, keys=partial(_keys_at, prepared))
                     if not _options_of(p, unknown) and p[1] not in said]
        raise ConfigError(unknown_types + problems) from None
    problems += cross_check(settings, provenance)
    if problems:
        raise ConfigError(unknown_types + problems)
    settings._provenance = provenance
    return settings


def _options_of(problem: Problem, partners: set[str]) -> bool:
    """Whether ``problem`` is an "unknown table" inside a partner whose transport is unknown."""
    parts = problem[1].split(".")
    return (len(parts) == 3 and parts[0] == "partners" and parts[1] in partners
            and problem[2].startswith("unknown table"))


def _keys_at(data: Mapping[str, Any], key: Key) -> list[str]:
    """The keys the table at ``key`` takes; a partner's table takes its transport's table too
    (``[partners.canton.sedx]``: did you mean 'sedex'?)."""
    keys = keys_at(Settings, key)
    partners = data.get("partners")
    if len(key) == 2 and key[0] == "partners" and isinstance(partners, dict):
        partner = partners.get(key[1])
        transport = partner.get("transport") if isinstance(partner, dict) else None
        if isinstance(transport, str):
            keys.append(transport)
    return keys


def _always(origin: Origin) -> Callable[[Key], Origin]:
    return lambda _key: origin


def _sections() -> list[str]:
    return [name for name in Settings.model_fields if name != "config_files"]


def provenance_of(settings: Settings) -> Provenance:
    """The provenance recorded by :func:`load_settings` (or the settings' own)."""
    if settings._provenance is not None:
        return settings._provenance
    return Provenance(Origin("settings", settings.gateway.data_dir))
