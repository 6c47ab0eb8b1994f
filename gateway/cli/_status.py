"""``ech-gateway status``: counts per state and a verdict a monitoring check can act on."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli import _access, _render
from gateway.cli.exitcodes import ATTENTION, OK
from gateway.store import DeliveryState


def add_commands(sub: Any) -> None:
    """Register ``status``."""
    p = sub.add_parser("status", help="counts per state; exit 1 when something needs attention")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)


def attention(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """What needs an operator, each as ``{"kind", "count", "what", "hint"}``; empty when nothing."""
    deliveries = counts["deliveries"]
    found = [
        ("dead", deliveries.get(DeliveryState.DEAD, 0), "dead letters",
         "ech-gateway dead-letters; replay them with --replay"),
        ("needs_review", deliveries.get(DeliveryState.NEEDS_REVIEW, 0), "deliveries to review",
         "ech-gateway messages list --delivery-state needs_review"),
        ("overdue", sum(counts["overdue"].values()), "receipts overdue",
         "ech-gateway messages list --delivery-state sent; ask the sedex client"),
        ("review", counts.get("needs_review", 0), "partners' messages whose resident is"
         " not found", "ech-gateway messages list --state needs_review; then messages assign"
         " ID --person VN"),
        ("quarantined", counts["unhandled"], "quarantined inputs not handled",
         "ech-gateway messages list --unhandled; then messages resubmit or messages handle"),
    ]
    return [{"kind": kind, "count": count, "what": what, "hint": hint}
            for kind, count, what, hint in found if count]


def cmd_status(args: argparse.Namespace) -> int:
    """Counts per state; exit :data:`ATTENTION` with the reasons when something needs an operator."""
    with _access.reader(args) as store:
        counts = store.counts()
    reasons = attention(counts)
    verdict = "attention" if reasons else "ok"
    if args.json:
        print(json.dumps({**counts, "verdict": verdict, "reasons": reasons}, indent=2))
    else:
        print(_render.status(counts, reasons))
    return ATTENTION if reasons else OK
