"""``partners resume``: end a partner's pause by hand, for a node that will not probe it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.cli import _access, _out, _render
from gateway.cli.exitcodes import FAILED, OK
from gateway.config._suggest import did_you_mean
from gateway.store import SQLiteStore
from gateway.wording import counted


def add_commands(sub: Any) -> None:
    """Register ``partners resume``."""
    p = sub.add_parser("partners", help="end a partner's pause by hand")
    psub = p.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    r = psub.add_parser(
        "resume", help="end the pause of PARTNER on NODE (a node renamed or gone, whose own"
                       " probe will never end it); journaled as partner.resumed")
    r.add_argument("partner", help="the partner's name ([partners.NAME])")
    r.add_argument("--node", help="the node whose pause to end (default: this one,"
                                  " [gateway] node_id)")
    r.set_defaults(handler=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    """End the stored pause of a partner on a node, as its probe would have."""
    with _access.writer(args) as (settings, store):
        node = args.node or settings.gateway.node_id
        found = asyncio.run(_resume(store, node, args.partner))
    if isinstance(found, list):
        where = f" (paused on: {', '.join(found)})" if found else ""
        if not found and args.partner not in settings.partners:  # a typo, most likely
            where = (f", nor on any other; no partner {args.partner!r} is configured"
                     f"{did_you_mean(args.partner, settings.partners)}")
        _out.say(f"ech-gateway: partner {args.partner} is not paused on node {node}{where}",
                 file=sys.stderr)
        return FAILED
    since, moved = found
    _out.say(f"partner {args.partner} resumed on node {node}: paused since {_render.iso(since)};"
             " the pause no longer counts toward max_age for"
             f" {counted(moved, 'open delivery', 'open deliveries')}")
    return OK


async def _resume(store: SQLiteStore, node: str, partner: str) -> tuple[float, int] | list[str]:
    """(since, deliveries moved) of the pause ended, or the nodes ``partner`` is paused on."""
    pauses = await store.paused_partners()
    if (node, partner) not in pauses:
        return [n for n, p in pauses if p == partner]
    since, error = pauses[(node, partner)]
    return since, await store.resume_partner(node, partner, since, error)
