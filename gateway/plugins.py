"""Building the plugin manager and calling hooks from async code."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Collection, Iterator
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.errors import PluginError
from gateway.facts import VALUES as CORE_VALUES
from gateway.plugin_types import GatewayEvent, SourceType, TransportType

log = logging.getLogger(__name__)

#: Comma-separated entry-point names to load; unset loads all.
LOAD_ENV = "ECH_GATEWAY_LOAD_PLUGINS"
#: Set to 1 to log every hook call at DEBUG.
TRACE_ENV = "ECH_GATEWAY_TRACE_PLUGINS"


def get_plugin_manager() -> pluggy.PluginManager:
    """Build a plugin manager with every ``ech_gateway`` entry point loaded.

    ``ECH_GATEWAY_LOAD_PLUGINS=sedex,folder`` restricts loading to the named
    entry points (built-ins are entry points too); ``ECH_GATEWAY_TRACE_PLUGINS=1``
    traces hook calls.

    :raises PluginError: a plugin fails to import or to register (a hook it
        implements does not match its spec), or two installed plugins share a name.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    wanted = os.environ.get(LOAD_ENV)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    loaded: dict[str, EntryPoint] = {}
    for ep in entry_points(group=hookspecs.PROJECT):
        if allowed is not None and ep.name not in allowed:
            continue
        seen = loaded.get(ep.name)
        if seen is not None:
            if seen.value == ep.value:
                continue  # one plugin listed twice (an editable install's two metadata folders)
            raise PluginError(f"two plugins are named {ep.name!r}: {_origin(seen)} and"
                              f" {_origin(ep)}; uninstall one of them")
        loaded[ep.name] = ep
        try:
            plugin = ep.load()
        except Exception as exc:  # whatever importing a third party's module raises
            raise PluginError(f"plugin {ep.name!r} ({_origin(ep)}) fails to load:"
                              f" {type(exc).__name__}: {_one_line(exc)}") from exc
        try:
            pm.register(plugin, name=ep.name)
            pm.check_pending()  # a hook the gateway does not have: a typo, or a newer API
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {ep.name!r} ({_origin(ep)}) cannot be used:"
                              f" {_one_line(exc)}") from exc
    if os.environ.get(TRACE_ENV) == "1":
        pm.trace.root.setwriter(lambda msg: log.debug("hook %s", msg.rstrip()))
        pm.enable_tracing()
    return pm


def _origin(ep: EntryPoint) -> str:
    """Where an entry point comes from: ``module from distribution version``."""
    dist = ep.dist
    return ep.value if dist is None else f"{ep.value} from {dist.name} {dist.version}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def loaded_from_entry_points(pm: pluggy.PluginManager) -> bool:
    """True when every plugin came from an ``ech_gateway`` entry point.

    Worker processes rebuild their plugin manager from entry points; a plugin
    registered by code (an embedding application, a test) exists only here.
    """
    names = {ep.name for ep in entry_points(group=hookspecs.PROJECT)}
    return all(name in names for name, _plugin in pm.list_name_plugin())


def source_types(pm: pluggy.PluginManager) -> dict[str, SourceType]:
    """All source types the loaded plugins declare, by name, each with its plugin's name.

    :raises PluginError: two plugins declare the same source type.
    """
    return _declared(pm, "gateway_source_types", "source type")


def transport_types(pm: pluggy.PluginManager) -> dict[str, TransportType]:
    """All transport types the loaded plugins declare, by name, each with its plugin's name.

    :raises PluginError: two plugins declare the same transport.
    """
    return _declared(pm, "gateway_transport_types", "transport")


def fact_values(pm: pluggy.PluginManager) -> dict[str, frozenset[str]]:
    """The values each fact can take: what the core and every loaded plugin declare, together.

    A fact nobody declares values for is not in it (rules matching it are not checked).

    :raises PluginError: a plugin declares a fact's values as anything but a collection
        of strings.
    """
    found: dict[str, set[str]] = {name: set(values) for name, values in CORE_VALUES.items()}
    for plugin, declared in _answers(pm, "gateway_fact_values"):
        for name, values in declared.items():
            if (isinstance(values, str | bytes) or not isinstance(values, Collection)
                    or not all(isinstance(v, str) for v in values)):
                raise PluginError(f"plugin {plugin!r} declares the values of fact {name!r} as"
                                  f" {values!r}: give a collection of strings")
            found.setdefault(name, set()).update(values)
    return {name: frozenset(values) for name, values in found.items()}


def _declared(pm: pluggy.PluginManager, hook: str, what: str) -> dict[str, Any]:
    """The types each plugin answers ``hook`` with, stamped with that plugin's name."""
    found: dict[str, Any] = {}
    for plugin, types in _answers(pm, hook):
        for declared in types:
            earlier = found.get(declared.name)
            if earlier is not None:
                raise PluginError(f"plugins {earlier.plugin!r} and {plugin!r} both"
                                  f" declare the {what} {declared.name!r}; uninstall one")
            found[declared.name] = replace(declared, plugin=plugin)
    return found


def _answers(pm: pluggy.PluginManager, hook: str) -> Iterator[tuple[str, Any]]:
    """Each plugin's answer to ``hook`` (a hook without arguments), with that plugin's name."""
    for name, call in reversed(each_plugin(pm, hook)):
        for answer in call():
            yield name, answer


def each_plugin(pm: pluggy.PluginManager, hook: str) -> list[tuple[str, pluggy.HookCaller]]:
    """For each plugin implementing ``hook``, its name and a caller of its implementation
    alone (what it raises or returns is known to be its), in the order pluggy calls them:
    ``tryfirst`` and the last registered first. Calls go through pluggy (traced as any)."""
    plugins = pm.get_plugins()
    callers = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        others = [p for p in plugins if p is not impl.plugin]
        callers.append((impl.plugin_name, pm.subset_hook_caller(hook, remove_plugins=others)))
    return callers


async def resolve(value: Any) -> Any:
    """Await ``value`` if a hook returned an awaitable, else return it."""
    if inspect.isawaitable(value):
        return await value
    return value


def notify(pm: pluggy.PluginManager, event: GatewayEvent) -> None:
    """Call ``gateway_event``; a failing listener is logged, never raised."""
    try:
        pm.hook.gateway_event(event=event)
    except Exception:  # a listener must not break the flow it observes
        log.exception("gateway_event listener failed for %s", event.kind)


def notify_stop(pm: pluggy.PluginManager) -> None:
    """Call ``gateway_stop``; a failing plugin is logged, never raised (the stop goes on)."""
    try:
        pm.hook.gateway_stop()
    except Exception:
        log.exception("gateway_stop failed")


def describe(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What ``ech-gateway plugins`` prints: each plugin with its hooks and types."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: p[0] or ""):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "module": getattr(plugin, "__name__", repr(plugin)),
                "hooks": hooks,
            }
        )
    return rows
