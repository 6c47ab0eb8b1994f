"""Static routing: a source's ``route_to`` list names the partners of what it brings."""

from __future__ import annotations

from typing import Any

from gateway.api import Normalised, RawInput, Route, hookimpl


@hookimpl
def gateway_route(message: Normalised, raw: RawInput, settings: Any) -> list[Route] | None:
    """Route everything from a configured source to that source's ``route_to`` partners."""
    source = settings.sources.get(raw.source)
    if source is None:
        return None
    return [Route(p, f"source {raw.source!r} routes to {p!r} (route_to)") for p in source.route_to]
