"""Building the plugin manager and calling hooks from async code."""

from __future__ import annotations

import inspect
import logging
import os
from importlib.metadata import entry_points
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.contracts import GatewayEvent, SourceType, TransportType

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
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    wanted = os.environ.get(LOAD_ENV)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=hookspecs.PROJECT):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        pm.register(ep.load(), name=ep.name)
    if os.environ.get(TRACE_ENV) == "1":
        pm.trace.root.setwriter(lambda msg: log.debug("hook %s", msg.rstrip()))
        pm.enable_tracing()
    pm.check_pending()
    return pm


def loaded_from_entry_points(pm: pluggy.PluginManager) -> bool:
    """True when every plugin came from an ``ech_gateway`` entry point.

    Worker processes rebuild their plugin manager from entry points; a plugin
    registered by code (an embedding application, a test) exists only here.
    """
    names = {ep.name for ep in entry_points(group=hookspecs.PROJECT)}
    return all(name in names for name, _plugin in pm.list_name_plugin())


def source_types(pm: pluggy.PluginManager) -> dict[str, SourceType]:
    """All source types the loaded plugins declare, by name."""
    return {t.name: t for types in pm.hook.gateway_source_types() for t in types}


def transport_types(pm: pluggy.PluginManager) -> dict[str, TransportType]:
    """All transport types the loaded plugins declare, by name."""
    return {t.name: t for types in pm.hook.gateway_transport_types() for t in types}


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
