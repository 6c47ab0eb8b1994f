"""The operator's ``[[rules]]``: matching a message's facts, and saying why a rule did or did not match.

The built-in ``rules`` plugin decides with :func:`first_match`;
``ech-gateway rules explain`` shows :func:`explain` for a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.contracts import Decision

#: ``match`` keys that compare a fact with a list of accepted values (key = fact name).
LIST_KEYS = ("event", "source", "kind", "nationality", "permit_category", "permit",
             "municipality", "canton")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule held against a message's facts: whether it matched, and if not, why not."""

    number: int
    name: str
    matched: bool
    why_not: tuple[str, ...] = ()


def mismatches(match: Any, facts: Mapping[str, Any]) -> list[str]:
    """What in ``match`` does not hold for ``facts`` (empty: the rule matches)."""
    out = []
    for key in LIST_KEYS:
        accepted = getattr(match, key)
        value = facts.get(key)
        if key == "event" and value is None:
            value = "none"
        if accepted is not None and value not in accepted:
            out.append(f"{key} is {value!r}, not one of {accepted}")
    age = facts.get("age")
    if match.age_min is not None and (age is None or age < match.age_min):
        out.append(f"age is {age!r}, not at least {match.age_min}")
    if match.age_max is not None and (age is None or age > match.age_max):
        out.append(f"age is {age!r}, not at most {match.age_max}")
    for name, wanted in match.fields.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if facts.get(name) not in options:
            out.append(f"{name} is {facts.get(name)!r}, not one of {options}")
    return out


def explain(rules: Sequence[Any], facts: Mapping[str, Any]) -> list[Verdict]:
    """Each rule up to and including the first that matches, with why the others did not."""
    verdicts = []
    for number, rule in enumerate(rules, start=1):
        why_not = mismatches(rule.match, facts)
        verdicts.append(Verdict(number, rule.name, not why_not, tuple(why_not)))
        if not why_not:
            break
    return verdicts


def first_match(rules: Sequence[Any], facts: Mapping[str, Any]) -> Decision | None:
    """The decision of the first rule that matches ``facts``, or ``None``."""
    for number, rule in enumerate(rules, start=1):
        if not mismatches(rule.match, facts):
            return decision(rule, number, facts)
    return None


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
        when = facts.get("event_date")
        start = when if isinstance(when, date) else date.today()
        deadline = start + timedelta(seconds=then.deadline)
    return Decision(name, reason, partners=tuple(partners), business_key=then.business_key,
                    deadline=deadline, business_comment=then.business_comment,
                    documents=tuple(then.documents))
