"""The way back at the command line: ``cases list``/``show`` and ``messages assign``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from gateway.cli import _access, _args, _out, _render
from gateway.cli._reprocess import process_stored
from gateway.cli.exitcodes import FAILED, OK
from gateway.errors import NotFound
from gateway.person_state import parse_key
from gateway.store import MessageState


def add_commands(sub: Any, messages: Any) -> None:
    """Register ``cases`` and ``messages assign``."""
    cases = sub.add_parser("cases", help="conversations with partners, message by message")
    csub = cases.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = csub.add_parser("list", help="cases, the most recently updated first")
    p.add_argument("--limit", type=_args.limit, default=50,
                   help="list at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_list)
    p = csub.add_parser("show", help="a case with its messages in time order, both directions")
    p.add_argument("id", type=int, help="the case id (first column of cases list)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_show)
    p = messages.add_parser("assign", help="name the resident a partner's message waiting for"
                            " review is about, and send it on to the registry")
    p.add_argument("id", help="the message (needs_review): row id or eCH-0223 messageId, or row:ID")
    p.add_argument("--person", required=True, type=_args.person,
                   help="a VN (756.1234.5678.97 or 7561234567897), or a local id (CATEGORY:ID)")
    p.set_defaults(handler=cmd_assign)


def cmd_list(args: argparse.Namespace) -> int:
    """Cases, newest first."""
    with _access.reader(args) as r:
        cases = r.list_cases(args.limit)
    if args.json:
        _out.exact(json.dumps(_render.with_times(cases), indent=2))
    else:
        _out.say(*(_render.case_table(cases) if cases else ["no cases"]))
    return OK


def cmd_show(args: argparse.Namespace) -> int:
    """One case and its messages."""
    with _access.reader(args) as r:
        case = r.get_case(args.id)
    if case is None:
        raise NotFound(f"no case {args.id}")
    if args.json:
        _out.exact(json.dumps(_render.with_times(case), indent=2))
    else:
        _out.say(*_render.case_detail(case))
    return OK


def cmd_assign(args: argparse.Namespace) -> int:
    """Record the operator's person for the message, then process it again (the one path)."""
    keys = parse_key(args.person)
    with _access.writer(args) as (settings, store), _access.reader(args) as r:
        mid = _access.resolve(r, args.id)
        if any(k.startswith("local:*:") for k in keys):
            found = r.find_persons(keys)
            if len(found) != 1:
                raise NotFound(f"{args.person} names {len(found)} persons: give CATEGORY:ID"
                               " or the VN")
            person = r.get_person(found[0])
            assert person is not None
            keys = person["keys"]
        who = os.environ.get("USER") or "operator"
        asyncio.run(store.assign(mid, keys, who))
        state = asyncio.run(process_stored(mid, store, settings, args.pm)).state
        msg = r.get_message(mid)
    if state != MessageState.ROUTED and msg is not None:  # e.g. a person nobody knows
        _out.say(f"message {mid}: assigned, but {state}: {msg['reason']}")
        return FAILED
    _out.say(f"message {mid}: assigned, now {state}")
    return OK
