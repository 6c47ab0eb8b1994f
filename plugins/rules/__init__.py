"""The operator's rules: ``[[rules]]`` in the configuration, then each source's ``route_to``.

Answers ``gateway_decide`` last (``trylast``), so a vendor's code rules are asked first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.api import Decision, Normalised, RawInput, hookimpl


@hookimpl(trylast=True)
def gateway_decide(message: Normalised, raw: RawInput, facts: Mapping[str, Any],
                   settings: Any) -> Decision | None:
    """Route everything from a configured source to that source's ``route_to`` partners."""
    source = settings.sources.get(raw.source)
    if source is None or not source.route_to:
        return None
    partners = tuple(source.route_to)
    return Decision(f"sources.{raw.source}.route_to",
                    f"source {raw.source!r} routes to {', '.join(map(repr, partners))} (route_to)",
                    partners=partners)
