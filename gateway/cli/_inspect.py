"""Commands that look into the store and act on it: messages, dead-letters, journal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.cli import _access, _args, _detail, _out, _render, _replay
from gateway.cli.exitcodes import FAILED, OK
from gateway.errors import NotFound
from gateway.store import DeliveryState, MessageState
from gateway.store.anchor import anchor_path, read_anchor
from gateway.wording import counted


def add_commands(sub: Any) -> Any:
    """Register this module's commands; return the ``messages`` actions for more."""
    msgs = sub.add_parser("messages", help="list, show, replay, resubmit and handle messages")
    msub = msgs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="messages, newest first")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--state", choices=[s.value for s in MessageState],
                       help="only messages in this state")
    which.add_argument("--unhandled", action="store_true",
                       help="quarantined messages, and messages a partner rejected, that no"
                            " operator has handled yet (messages handle)")
    p.add_argument("--delivery-state", choices=[s.value for s in DeliveryState],
                   help="only messages with a delivery in this state")
    p.add_argument("--partner", help="only messages with a delivery to this partner (with"
                   " --delivery-state: a delivery to it in that state)")
    p.add_argument("--limit", type=_args.limit, default=50,
                   help="list at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_list)
    p = msub.add_parser("show", help="one message with its deliveries and history")
    p.add_argument("id", help="row id or eCH-0223 messageId (refused if it names several), or row:ID")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--raw", action="store_true", help="print the raw bytes as received")
    p.add_argument("--all", action="store_true",
                   help="every attempt, receipt and history line (without it, of a delivery"
                        f" with many attempts the first {_detail.FIRST} and the last"
                        f" {_detail.LAST}; --json has all)")
    p.set_defaults(handler=cmd_show)
    p = msub.add_parser("replay", help="process a quarantined, not relevant or needs_review"
                        " message again (an export: its quarantined rows), or resend its dead,"
                        " rejected or needs_review deliveries")
    p.add_argument("ids", nargs="+", metavar="ID",
                   help="row id or eCH-0223 messageId (refused if it names several), or row:ID;"
                   " an export's (state split) replays its quarantined rows")
    p.set_defaults(handler=_replay.cmd_replay)

    p = sub.add_parser("dead-letters", help="deliveries that gave up (replay with --replay)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--replay", action="store_true", help="replay every dead letter listed")
    p.add_argument("--limit", type=_args.limit, default=10_000,
                   help="the dead letters of at most this many messages, the newest"
                        " (default 10000)")
    p.set_defaults(handler=cmd_dead_letters)

    j = sub.add_parser("journal", help="the hash-chained journal")
    jsub = j.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = jsub.add_parser("verify", help="check the hash chain")
    p.set_defaults(handler=cmd_journal_verify)
    return msub


def _public(m: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON shape of a message: ``reason`` is null unless quarantined or rejected,
    ``note`` explains the other states (not relevant, duplicate)."""
    rejected = [d["reason"] for d in m["deliveries"] if d["state"] == DeliveryState.REJECTED]
    if m["state"] == MessageState.QUARANTINED:
        reason, note = m["reason"], None
    else:
        reason, note = (rejected[0] if rejected else None), m["reason"]
    return {
        "id": m["id"], "state": m["state"], "reason": reason, "note": note,
        "message_id": m["message_id"],
        "kind": m["kind"], "source": m["source"], "ref": m["ref"],
        "received_at": _render.iso(m["received_at"]),
        "deliveries": [
            {"id": d["id"], "partner": d["partner"], "state": d["state"],
             "attempts": d["attempts"], "reason": d["reason"],
             "handled": _render.with_times(d["handled"]),
             "overdue": _render.receipt_overdue(d),
             "next_attempt_at": _render.iso(d["next_attempt_at"])}
            for d in m["deliveries"]
        ],
        "handled": _render.with_times(m["handled"]),
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Messages, newest first; says so when ``--limit`` cut the list short."""
    filters = {"state": args.state, "delivery_state": args.delivery_state,
               "unhandled": args.unhandled, "partner": args.partner}
    with _access.reader(args) as r, r.snapshot():  # the total of the messages listed
        msgs = r.list_messages(**filters, limit=args.limit)
        total = r.count_messages(**filters) if len(msgs) >= args.limit else len(msgs)
    rows = [_public(m) for m in msgs]
    if not rows and not args.json:
        _out.say(_none_listed(args))
        return OK
    if args.json:
        _out.exact(json.dumps(rows, indent=2))
    else:
        _out.say(*_render.message_table(rows))
    if total > len(rows):
        # beside JSON (on stderr) so that the JSON stays whole
        _out.say(f"showing {len(rows)} of {total} (--limit N for more)",
                 file=sys.stderr if args.json else sys.stdout)
    return OK


def _none_listed(args: argparse.Namespace) -> str:
    """What an empty ``messages list`` says: no messages, and which were asked for."""
    asked = [f"--state {args.state}" if args.state else "",
             "--unhandled" if args.unhandled else "",
             f"--delivery-state {args.delivery_state}" if args.delivery_state else "",
             f"--partner {args.partner}" if args.partner else ""]
    given = ", ".join(a for a in asked if a)
    return "no messages" + (f" ({given})" if given else "")


def cmd_show(args: argparse.Namespace) -> int:
    """One message: state, reason, deliveries, attempts, receipts, journal."""
    with _access.reader(args) as r, r.snapshot():
        mid = _access.resolve(r, args.id)
        msg = r.get_message(mid)
        raw = r.raw(mid) if args.raw else None
    if msg is None:
        raise NotFound(f"no message {args.id}")
    if raw is not None:
        sys.stdout.buffer.write(raw)
        return OK
    if args.json:
        msg = {**msg, "deliveries": [{**d, "overdue": _render.receipt_overdue(d)}
                                     for d in msg["deliveries"]]}
        _out.exact(json.dumps(_render.with_times(msg), indent=2, default=str))
    else:
        _out.say(*_detail.message_detail(msg, every=args.all))
    return OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """Deliveries that gave up, with their reasons; optionally replay them all. Says so when
    ``--limit`` cut the list short (on stderr beside JSON)."""
    with _access.reader(args) as r, r.snapshot():  # the total of the dead letters listed
        msgs = r.list_messages(delivery_state=DeliveryState.DEAD, limit=args.limit)
        total = (r.counts()["deliveries"].get(DeliveryState.DEAD, 0)
                 if len(msgs) >= args.limit else None)
    rows = [(m["id"], m["message_id"], d) for m in msgs for d in m["deliveries"]
            if d["state"] == DeliveryState.DEAD]
    cut = total is not None and total > len(rows)
    if args.replay:
        if not rows:
            _out.say("no dead letters to replay")
            return OK
        with _access.writer(args) as (_settings, store):
            for mid, _ref, d in rows:
                new = asyncio.run(store.replay_delivery(d["id"]))
                _out.say(f"delivery {d['id']} of message {mid} replayed as {new}")
        if cut:
            _out.say(f"replayed {len(rows)} of {total} dead letters (those of the newest"
                     f" {len(msgs)} messages); run dead-letters --replay again for the others")
        return OK
    if args.json:
        _out.exact(json.dumps([{"message": mid, "message_id": ref, "delivery": d["id"],
                                "partner": d["partner"], "attempts": d["attempts"],
                                "reason": d["reason"]} for mid, ref, d in rows], indent=2))
    else:
        _out.say(*_render.dead_letters(rows))
    if cut:  # beside JSON (on stderr) so that the JSON stays whole
        _out.say(f"showing {len(rows)} of {total} dead letters (those of the newest {len(msgs)}"
                 " messages; --limit N for more)", file=sys.stderr if args.json else sys.stdout)
    return OK


def cmd_journal_verify(args: argparse.Namespace) -> int:
    """Check the hash chain, and the database against the journal's anchor; exit 1 if not intact.

    Verdicts: intact; BROKEN (an entry was edited or removed inside the chain);
    TRUNCATED (the journal ends before the entry the anchor names); REPLACED
    (another database, or another history); MISSING (the database is gone).
    """
    settings = _access.configuration(args)
    path = settings.store.path
    anchor = read_anchor(path)
    if anchor is not None and not path.exists():
        _out.say(f"journal MISSING: no database at {path}; its anchor {anchor_path(path)}"
                 f" names journal entry {anchor.seq}")
        return FAILED
    with _access.reader(args) as r:
        count, broken = r.verify_journal()
        anchor, problem = r.against_anchor()
    if broken is not None:
        _out.say(f"journal BROKEN at entry {broken} ({counted(count, 'entry', 'entries')} read)")
        return FAILED
    if problem is not None:
        _out.say(f"journal {problem} ({counted(count, 'entry', 'entries')} read)")
        return FAILED
    where = f", anchored at entry {anchor.seq}" if anchor else ", no anchor yet"
    _out.say(f"journal intact: {counted(count, 'entry', 'entries')}{where}")
    return OK
