"""The operator's rules: ``[[rules]]`` in order (the first that matches decides), then ``route_to``.

Answers ``gateway_decide`` last (``trylast``), so a vendor's code rules are
asked first. A rule matches when every key of its ``match`` holds for the
message's facts (a list: any of its values); what it decides is its
``then``. When no rule matches, a source's ``route_to`` still routes what it
brings; otherwise nothing decided (the core records "no rule decided").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from gateway.api import Decision, Normalised, RawInput, hookimpl

#: ``match`` keys that compare a fact with a list of accepted values: key -> fact.
_LISTS = {"event": "event", "source": "source", "kind": "kind", "nationality": "nationality",
          "permit_category": "permit_category", "permit": "permit",
          "municipality": "municipality", "canton": "canton"}


@hookimpl(trylast=True)
def gateway_decide(message: Normalised, raw: RawInput, facts: Mapping[str, Any],
                   settings: Any) -> Decision | None:
    """The first matching ``[[rules]]`` entry decides; else the source's ``route_to``."""
    for number, rule in enumerate(settings.rules, start=1):
        if matches(rule.match, facts):
            return decision(rule, number, facts)
    source = settings.sources.get(raw.source)
    if source is None or not source.route_to:
        return None
    partners = tuple(source.route_to)
    return Decision(f"sources.{raw.source}.route_to",
                    f"source {raw.source!r} routes to {', '.join(map(repr, partners))} (route_to)",
                    partners=partners)


def matches(match: Any, facts: Mapping[str, Any]) -> bool:
    """Whether every key given in ``match`` holds for ``facts``."""
    for key, fact in _LISTS.items():
        accepted = getattr(match, key)
        if accepted is not None and _value(facts.get(fact), key) not in accepted:
            return False
    age = facts.get("age")
    if match.age_min is not None and (age is None or age < match.age_min):
        return False
    if match.age_max is not None and (age is None or age > match.age_max):
        return False
    for name, wanted in match.fields.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if facts.get(name) not in options:
            return False
    return True


def decision(rule: Any, number: int, facts: Mapping[str, Any]) -> Decision:
    """What ``rule`` (the ``number``-th) decides."""
    then = rule.then
    name = f"rules[{number}] {rule.name}"
    if then.not_relevant is not None:
        return Decision(name, then.not_relevant)
    partners: Sequence[str] = then.route_to
    reason = rule.description or f"rule {rule.name!r} routes to {', '.join(map(repr, partners))}"
    deadline = None
    if then.deadline is not None:
        deadline = _event_date(facts) + timedelta(seconds=then.deadline)
    return Decision(name, reason, partners=tuple(partners), business_key=then.business_key,
                    deadline=deadline, business_comment=then.business_comment,
                    documents=tuple(then.documents))


def _value(value: Any, key: str) -> Any:
    if key == "event" and value is None:
        return "none"
    return value


def _event_date(facts: Mapping[str, Any]) -> date:
    when = facts.get("event_date")
    return when if isinstance(when, date) else date.today()
