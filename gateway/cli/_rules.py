"""``rules explain FILE...``: what the gateway would make of files, and why, sending nothing.

Each file goes through the same stages as in the daemon (normalise,
complete with the person state the database holds, rules, convert,
validate), in this process; nothing is stored. Files are taken in the
order given, each seeing the person states the earlier ones would leave.
A file whose bytes the database holds from the same source already is one
the daemon would store as a duplicate and go no further with: that is said
first, then what the rules would decide of it were it new (which neither
counts for the exit code nor changes the person states later files see).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.assembly import make_validator, schema_set
from gateway.cli import _access, _out
from gateway.cli._validate import export_hint
from gateway.cli.exitcodes import CONFIG, FAILED, NOT_FOUND, OK
from gateway.config._suggest import did_you_mean
from gateway.contracts import Normalised, RawInput
from gateway.errors import InputRejected
from gateway.facts import rule_facts
from gateway.person_state import PersonState, StoredPerson
from gateway.plugin_types import InputMetadata
from gateway.processor import Processor, normalise_context, partner_targets, remember, state_of
from gateway.rules import explain
from gateway.store import MessageState, Processed, StoreReader
from gateway.wording import counted

#: Facts worth printing when known.
_SHOWN = ("kind", "format", "source", "source_event", "event", "nationality", "country",
          "permit", "permit_category", "municipality", "canton", "age", "sex", "marital_status")


def add_commands(sub: Any) -> None:
    """Register ``rules explain``."""
    rules = sub.add_parser("rules", help="the operator's [[rules]]")
    rsub = rules.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = rsub.add_parser("explain", help="what would happen to FILEs and why (sends nothing)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="input files as the source brings them, in order: each sees the person"
                   " states the earlier ones leave")
    p.add_argument("--source", help="the source the files come from: a configured source, or a"
                   " partner for its messages (default: the first configured source)")
    p.set_defaults(handler=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain each file; exit 1 if any would be quarantined (a duplicate would not be),
    3 if one cannot be read."""
    settings = _access.configuration(args)
    source = args.source or next(iter(settings.sources), "registry")
    known = sorted({*settings.sources, *(name for name, partner in settings.partners.items()
                                         if partner.role == "partner")})
    if source not in known:
        _out.say(f"ech-gateway rules explain: no source {source!r}{did_you_mean(source, known)};"
                 f" the files may come from: {', '.join(known)}", file=sys.stderr)
        return CONFIG
    proc = Processor(args.pm, settings, normalise_context(settings),
                     make_validator(schema_set(settings)), partner_targets(settings))
    store = StoreReader(settings.store.path) if settings.store.path.exists() else None
    if store is None:
        _out.say(f"(no database at {settings.store.path}: no person state is known)")
    states: dict[str, StoredPerson] = {}
    code, unreadable = OK, False
    try:
        for path in args.files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                _out.say(f"ech-gateway rules explain: cannot read {path}: {exc.strerror or exc}",
                         file=sys.stderr)
                unreadable = True
                continue
            raw = RawInput(source, path.name, data,
                           {"path": str(path), **_source_meta(settings, source, path.name)})
            first = store.original_of(source, raw.data) if store is not None else None
            if first is not None:
                _out.say(f"{raw.ref}: the daemon would take it as a duplicate of message {first}"
                         f" (the same bytes from source {source}) and go no further")
                _out.say("  were it new, the rules would decide:")
                for line, _bad in _explain_input(proc, store, dict(states), raw, settings):
                    _out.say("    " + line)
                continue
            for line, bad in _explain_input(proc, store, states, raw, settings):
                _out.say(line)
                code = FAILED if bad else code
    finally:
        if store is not None:
            store.close()
    return NOT_FOUND if unreadable else code


def _source_meta(settings: Any, source: str, name: str) -> dict[str, str]:
    """What the source would tell the normalisers of a file called ``name`` (a mapping...)."""
    found = settings.sources.get(source)
    options = found.parsed if found is not None else None
    return options.input_meta(name) if isinstance(options, InputMetadata) else {}


def _explain_input(proc: Processor, store: StoreReader | None, states: dict[str, StoredPerson],
                   raw: RawInput, settings: Any) -> list[tuple[str, bool]]:
    """Lines about one input (and its parts), each with whether it says "quarantined"."""
    step = proc.normalise(0, raw)
    if isinstance(step, Processed):
        # an export where no mapping reads it (with one, the mapping's reason is the better)
        hint = (export_hint(raw.meta.get("path", raw.ref), raw.data)
                if "mapping" not in raw.meta else None)
        return [(f"{raw.ref}: quarantined: {hint or step.reason}", True)]
    if step.parts or step.rejected_parts:
        rows = counted(len(step.parts) + len(step.rejected_parts), "row")
        out = [(f"{raw.ref}: an export of {rows}", False)]
        out += [(f"  warning: {w}", False) for w in (*step.warnings, *step.rejected_warnings)]
        out += [(f"  {part.ref}: rejected: {reason}", True) for part, reason in step.rejected_parts]
        for part in step.parts:
            out += [("  " + line, bad) for line, bad in
                    _explain_input(proc, store, states, part, settings)]
        return out
    if store is not None:
        missing = [k for k in step.subject if k not in states]
        states.update({k: v for k, v in store.stored_persons(missing).items() if k not in states})
    stored = state_of(states, step.subject)
    before = stored.state if stored is not None else None
    lines = [(f"{raw.ref}: {step.kind}" + (f", person {', '.join(step.subject)}"
                                            if step.subject else ""), False),
             (f"  person state before: {_known(before)}", False)]
    lines += _rules_lines(proc, raw, step, before, settings)
    result = proc.finish(0, raw, step, before)
    for update in result.persons:
        if isinstance(update, PersonState):  # (finish leaves them states; finish_batch changes)
            remember(states, update)
    return lines + _outcome_lines(result, settings)


def _rules_lines(proc: Processor, raw: RawInput, step: Normalised, before: PersonState | None,
                 settings: Any) -> list[tuple[str, bool]]:
    """The facts rules see and which rule matches, or why the normaliser decided alone."""
    if step.not_relevant is not None:
        return [("  the normaliser decided: not relevant", False)]
    try:
        done = proc.complete(step, raw, before)
    except InputRejected:
        return []  # the outcome says why
    facts = rule_facts(done, raw, before)
    shown = ", ".join(f"{k}={facts[k]}" for k in _SHOWN if facts.get(k) is not None)
    lines = [(f"  facts: {shown}", False)]
    for verdict in explain(settings.rules, facts):
        if verdict.matched:
            lines.append((f"  rules[{verdict.number}] {verdict.name}: matches", False))
        else:
            lines.append((f"  rules[{verdict.number}] {verdict.name}: no ({'; '.join(verdict.why_not)})",
                          False))
    return lines


def _outcome_lines(result: Processed, settings: Any) -> list[tuple[str, bool]]:
    bad = result.state is MessageState.QUARANTINED
    decision = result.decision
    lines = []
    if decision is not None:
        lines.append((f"  decided by {decision.rule}: {decision.reason}", False))
        extras = {"businessKey": decision.business_key, "deadline": decision.deadline,
                  "businessComment": decision.business_comment,
                  "documents": ", ".join(decision.documents) or None}
        lines += [(f"    {k}: {v}", False) for k, v in extras.items() if v]
    if result.state is MessageState.ROUTED:
        for route in result.routes:
            version = settings.partners[route.partner].ech0223_version
            lines.append((f"  → {route.partner} (eCH-0223 {version})", False))
    else:
        lines.append((f"  {result.state}: {result.reason}", bad))
    lines += [(f"  warning: {w}", False) for w in result.detail.get("warnings", ())]
    return lines


def _known(before: PersonState | None) -> str:
    if before is None:
        return "none"
    facts = before.facts()
    shown = ", ".join(f"{k}={v}" for k, v in facts.items() if v is not None)
    return shown or "identification only"
