"""``ech-gateway status``: counts per state and a verdict a monitoring check can act on."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gateway.cli import _access, _out, _render
from gateway.cli.exitcodes import ATTENTION, OK
from gateway.retention import free_bytes
from gateway.store import DeliveryState
from gateway.wording import noun


def add_commands(sub: Any) -> None:
    """Register ``status``."""
    p = sub.add_parser("status", help="counts per state; exit 1 when something needs attention")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_status)


def attention(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """What needs an operator, each as ``{"kind", "count", "what", "hint"}``; empty when nothing.

    A partner paused by a fault on a node's machine comes first (that node sends nothing to
    it), one reason per node and partner, with ``node``, ``partner``, ``since`` and
    ``error``; its count is the partner's deliveries held. A pause of a partner disabled or
    no longer configured is no reason: nothing would be sent to it. Deliveries failing
    for longer than their partner's ``failing_after`` (``failing``, see
    :func:`gateway.store._queries.failing`), dead letters, rejections no operator has
    handled (a negative eventReport: a case worker acts), deliveries to review and overdue
    receipts name their ``partners``: ``{partner: count}``.
    """
    reasons = [{"kind": "paused", "count": p["deliveries"],
                "what": f"{noun(p['deliveries'], 'delivery', 'deliveries')} held: partner"
                        f" {p['partner']} paused on node {p['node']}"
                        f" since {p['since']} by a fault on that machine ({p['error']})",
                "hint": PAUSED_HINT, "node": p["node"], "partner": p["partner"],
                "since": p["since"], "error": p["error"]}
               for p in counts["paused"] if p["configured"] == "enabled"]

    def in_state(state: str) -> dict[str, int]:
        """The partners with deliveries in ``state``, and how many each has."""
        return {p: n[state] for p, n in counts["unsettled"].items() if state in n}

    per_partner = [
        ("failing", counts["failing"], ("delivery failing for longer than its partner's"
                                        " failing_after",
                                        "deliveries failing for longer than their partner's"
                                        " failing_after"),
         FAILING_HINT),
        ("dead", in_state(DeliveryState.DEAD), ("dead letter",),
         "ech-gateway dead-letters; replay them with --replay"),
        ("rejected", counts["rejected"], ("delivery rejected by its partner, not handled",
                                          "deliveries rejected by their partners, not handled"),
         REJECTED_HINT),
        ("needs_review", in_state(DeliveryState.NEEDS_REVIEW),
         ("delivery to review", "deliveries to review"),
         "ech-gateway messages list --delivery-state needs_review"),
        ("overdue", counts["overdue"], ("receipt overdue", "receipts overdue"),
         "ech-gateway messages list --delivery-state sent; ask the sedex client"),
    ]
    reasons += [{"kind": kind, "count": (n := sum(by.values())), "what": noun(n, *what),
                 "hint": hint, "partners": by} for kind, by, what, hint in per_partner if by]
    found = [
        ("review", counts.get("needs_review", 0),
         ("partner's message whose resident is not found",
          "partners' messages whose resident is not found"),
         ("ech-gateway messages list --state needs_review (each says why); then messages"
          " assign ID --person VN, or messages replay ID to search again where the registry"
          " could not be searched")),
        ("quarantined", counts["unhandled"],
         ("quarantined input not handled", "quarantined inputs not handled"),
         ("ech-gateway messages list --unhandled; then messages replay (an export's ID: its"
          " rows), resubmit or handle")),
    ]
    reasons += [{"kind": kind, "count": count, "what": noun(count, *what), "hint": hint}
                for kind, count, what, hint in found if count]
    store = counts["store"]
    if store["warn_free_below"] and store["free_bytes"] < store["warn_free_below"]:
        reasons.append({"kind": "disk", "count": store["free_bytes"] >> 20,
                        "free_bytes": store["free_bytes"],
                        "what": "MiB free on the database's disk, below [retention]"
                                f" warn_free_below ({store['warn_free_below'] >> 20} MiB)",
                        "hint": "make room there, or keep less ([retention] keep, then"
                                " ech-gateway prune)"})
    return reasons


#: What to do about a partner's rejection: read its reasons, then resend or let it be.
REJECTED_HINT = ("ech-gateway messages list --unhandled --delivery-state rejected; the reasons"
                 " in messages show ID; then messages replay ID once corrected, or messages"
                 " handle ID --note TEXT")
#: What to do about a partner whose attempts keep failing.
FAILING_HINT = ("ech-gateway messages list --delivery-state retry_wait --partner P; the error in messages"
                " show ID (the partner or the way to it fails); its deliveries are retried"
                " until their max_age, then dead letters")
#: What to do about a partner paused by a fault on a node's machine.
PAUSED_HINT = ("make its transport's outbox on that node's machine writable again (missing,"
               " read-only, disk full, or not answering: a share that hangs; the error says"
               " which); that node resumes the partner by itself at its next probe, within a"
               " minute")


def paused(found: list[dict[str, Any]], partners: dict[str, Any]) -> list[dict[str, Any]]:
    """The pauses (as :meth:`StoreReader.counts` has them: ``node``, ``partner``, ``since``,
    ``error``, ``deliveries``), each with its ``since`` as text and whether the partner is
    ``configured``: ``enabled``, ``disabled`` or ``removed``."""
    return [{**p, "since": _render.iso(p["since"]),
             "configured": ("removed" if p["partner"] not in partners else
                            "enabled" if partners[p["partner"]].enabled else "disabled")}
            for p in found]


def store_space(path: Path, warn_free_below: int) -> dict[str, Any]:
    """The database's size on disk (with its WAL) and the free space beside it."""
    files = [path, path.with_name(path.name + "-wal")]
    return {"path": str(path),
            "bytes": sum(f.stat().st_size for f in files if f.exists()),
            "free_bytes": free_bytes(path.parent),
            "warn_free_below": warn_free_below}


def cmd_status(args: argparse.Namespace) -> int:
    """Counts per state; exit :data:`ATTENTION` with the reasons when something needs an operator."""
    settings = _access.configuration(args)
    now = time.time()  # the embedded store's clock
    with _access.reader(args, settings) as store:
        counts = store.counts({name: now - p.failing_after
                               for name, p in settings.partners.items() if p.enabled})
    # a disabled partner's deliveries wait for it: said, but not a reason for attention (the
    # operator disabled it, for a canton's maintenance say)
    counts["held"] = {partner: n for partner, n in counts.pop("waiting").items()
                      if partner in settings.partners and not settings.partners[partner].enabled}
    counts["paused"] = paused(counts["paused"], settings.partners)
    counts["store"] = store_space(settings.store.path, int(settings.retention.warn_free_below))
    reasons = attention(counts)
    verdict = "attention" if reasons else "ok"
    if args.json:
        _out.exact(json.dumps({**counts, "verdict": verdict, "reasons": reasons}, indent=2))
    else:
        _out.say(*_render.status(counts, reasons, settings.partners.keys()))
    return ATTENTION if reasons else OK
