"""``persons show``: a person's last known state and the messages about them, in time order."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli import _access, _args, _out, _render
from gateway.cli.exitcodes import OK


def add_commands(sub: Any) -> None:
    """Register ``persons show``."""
    persons = sub.add_parser("persons", help="the person state the gateway keeps")
    psub = persons.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = psub.add_parser("show", help="a person's state and messages, in time order")
    p.add_argument("person", type=_args.person, help="a VN (756.1234.5678.97 or 7561234567897), or a local id"
                   " (CATEGORY:ID, or ID of any category)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """Print the person ``args.person`` names."""
    with _access.reader(args) as r:
        person = _access.person(r, args.person, f"no person {args.person}")
    if args.json:
        _out.exact(json.dumps(_render.with_times(person), indent=2, default=str))
    else:
        _out.say(*render(person))
    return OK


def render(person: dict[str, Any]) -> list[str]:
    """The text form: keys, the state part by part, then the timeline."""
    state = person["state"]
    ident = state["identification"]
    lines = [f"person {person['id']}: {ident.get('first_name')} {ident.get('official_name')}",
             f"  keys: {', '.join(person['keys'])}",
             f"  updated: {_render.iso(person['updated_at'])} (message {person['updated_by']})"]
    if person.get("departed_at") is not None:
        lines.append(f"  left the register: {_render.iso(person['departed_at'])} (moved out, died"
                     " or deleted; retention deletes the state [retention] keep later, once"
                     " the messages about them are pruned)")
    for part, value in state.items():
        if part == "identification" or value in (None, []):
            continue
        lines.append(f"  {part}: {_compact(value)}")
    if person.get("cases"):
        lines.append(f"  case ids: {', '.join(map(str, person['cases']))}"
                     " (ech-gateway cases show ID)")
    lines.append("messages (in: from a partner; out: the registry's, to partners):")
    for m in person["messages"]:
        deliveries = ", ".join(f"{d['partner']} {d['state']}" for d in m["deliveries"]) or "-"
        what = m["event"] or m["kind"] or "?"
        lines.append(f"  {_render.iso(m['received_at'])}  {m['id']:>6}  {m['direction']:<3}"
                     f" {what:<22} {m['state']:<13} {deliveries}")
        if m["state"] != "routed" and m["reason"]:
            lines.append(f"          {m['reason']}")
    return lines


def _compact(value: Any) -> str:
    """A part of the state on one line: its leaf values, without empty ones."""
    if isinstance(value, dict):
        inner = [f"{k}={_compact(v)}" for k, v in value.items() if v not in (None, [], {})]
        return "{" + ", ".join(inner) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return str(value)
