"""The operator's rules: ``[[rules]]`` in order (the first that matches decides), then ``route_to``.

Answers ``gateway_decide`` last (``trylast``), so a vendor's code rules are
asked first. A rule matches when every key of its ``match`` holds for the
message's facts (a list: any of its values); what it decides is its
``then`` (:mod:`gateway.rules`). When no rule matches, a source's
``route_to`` still routes what it brings; otherwise nothing decided (the
core records "no rule decided").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.api import Decision, Normalised, RawInput, first_match, hookimpl


@hookimpl(trylast=True)
def gateway_decide(message: Normalised, raw: RawInput, facts: Mapping[str, Any],
                   settings: Any) -> Decision | None:
    """The first matching ``[[rules]]`` entry decides; else the source's ``route_to``."""
    decided = first_match(settings.rules, facts)
    if decided is not None:
        return decided
    source = settings.sources.get(raw.source)
    if source is None or not source.route_to:
        return None
    partners = tuple(source.route_to)
    return Decision(f"sources.{raw.source}.route_to",
                    f"source {raw.source!r} routes to {', '.join(map(repr, partners))} (route_to)",
                    partners=partners)
