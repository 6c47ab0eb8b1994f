"""Commands that look into the store and act on it: status, messages, dead-letters, journal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.assembly import load_config
from gateway.cli import _render
from gateway.cli.exitcodes import FAILED, NOT_FOUND, OK
from gateway.errors import NotFound, StoreError
from gateway.store import DeliveryState, MessageState, SQLiteStore, StoreReader


def add_commands(sub: Any) -> None:
    """Register this module's commands."""
    p = sub.add_parser("status", help="counts of messages and deliveries per state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    msgs = sub.add_parser("messages", help="list, show and replay messages")
    msub = msgs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="messages, newest first")
    p.add_argument("--state", choices=[s.value for s in MessageState])
    p.add_argument("--delivery-state", choices=[s.value for s in DeliveryState])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    p = msub.add_parser("show", help="one message with its deliveries and history")
    p.add_argument("id", help="row id or eCH-0223 messageId")
    p.add_argument("--json", action="store_true")
    p.add_argument("--raw", action="store_true", help="print the raw bytes as received")
    p.set_defaults(handler=cmd_show)
    p = msub.add_parser("replay", help="process a quarantined message again, or resend its"
                        " dead deliveries")
    p.add_argument("ids", nargs="+")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser("dead-letters", help="deliveries that gave up (replay with --replay)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--replay", action="store_true", help="replay every dead letter listed")
    p.set_defaults(handler=cmd_dead_letters)

    j = sub.add_parser("journal", help="the hash-chained journal")
    jsub = j.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = jsub.add_parser("verify", help="check the hash chain")
    p.set_defaults(handler=cmd_journal_verify)


@contextmanager
def _reader(args: argparse.Namespace) -> Iterator[StoreReader]:
    settings = load_config(args.config, args.pm)
    path = settings.store.path
    if not path.exists():
        raise NotFound(f"no database at {path} yet: start the gateway once")
    reader = StoreReader(path)
    try:
        yield reader
    finally:
        reader.close()


def cmd_status(args: argparse.Namespace) -> int:
    """Counts per state."""
    with _reader(args) as r:
        counts = r.counts()
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(_render.status(counts))
    return OK


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
             "attempts": d["attempts"], "reason": d["reason"], "overdue": d["overdue"],
             "next_attempt_at": _render.iso(d["next_attempt_at"])}
            for d in m["deliveries"]
        ],
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Messages, newest first."""
    with _reader(args) as r:
        msgs = r.list_messages(state=args.state, delivery_state=args.delivery_state,
                               limit=args.limit)
    rows = [_public(m) for m in msgs]
    print(json.dumps(rows, indent=2) if args.json else _render.message_table(rows))
    return OK


def cmd_show(args: argparse.Namespace) -> int:
    """One message: state, reason, deliveries, attempts, receipts, journal."""
    with _reader(args) as r:
        mid = r.find_message(args.id)
        msg = r.get_message(mid) if mid is not None else None
        raw = r.raw(mid) if (mid is not None and args.raw) else None
    if msg is None:
        print(f"no message {args.id}", file=sys.stderr)
        return NOT_FOUND
    if raw is not None:
        sys.stdout.buffer.write(raw)
        return OK
    if args.json:
        print(json.dumps(msg, indent=2, default=str))
    else:
        print(_render.message_detail(msg))
    return OK


def _with_store(args: argparse.Namespace) -> tuple[Any, SQLiteStore]:
    settings = load_config(args.config, args.pm)
    store = SQLiteStore(settings.store.path, busy_timeout=settings.store.busy_timeout)
    store.start()
    return settings, store


def cmd_replay(args: argparse.Namespace) -> int:
    """Reprocess quarantined messages; resend dead deliveries of the others."""
    from gateway.cli._reprocess import reprocess

    settings, store = _with_store(args)
    status = OK
    try:
        with _reader(args) as r:
            for key in args.ids:
                mid = r.find_message(key)
                msg = r.get_message(mid) if mid is not None else None
                if msg is None:
                    print(f"{key}: no such message", file=sys.stderr)
                    status = NOT_FOUND
                    continue
                try:
                    print(_replay_one(msg, store, settings, args, reprocess))
                except StoreError as exc:
                    print(f"{key}: {exc}", file=sys.stderr)
                    status = FAILED
    finally:
        store.close()
    return status


def _replay_one(msg: dict[str, Any], store: SQLiteStore, settings: Any,
                args: argparse.Namespace, reprocess: Any) -> str:
    if msg["state"] in (MessageState.QUARANTINED, MessageState.NOT_RELEVANT):
        state = asyncio.run(reprocess(msg["id"], store, settings, args.pm))
        return f"message {msg['id']}: processed again, now {state}"
    dead = [d["id"] for d in msg["deliveries"] if d["state"] in ("dead", "needs_review", "rejected")]
    if not dead:
        raise StoreError(f"message is {msg['state']} and has no dead delivery to replay")
    new = [asyncio.run(store.replay_delivery(d)) for d in dead]
    return f"message {msg['id']}: deliveries {dead} replayed as {new}"


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """Deliveries that gave up, with their reasons; optionally replay them all."""
    with _reader(args) as r:
        msgs = r.list_messages(delivery_state=DeliveryState.DEAD, limit=10_000)
    rows = [(m["id"], m["message_id"], d) for m in msgs for d in m["deliveries"]
            if d["state"] == DeliveryState.DEAD]
    if args.replay:
        _settings, store = _with_store(args)
        try:
            for mid, _ref, d in rows:
                new = asyncio.run(store.replay_delivery(d["id"]))
                print(f"delivery {d['id']} of message {mid} replayed as {new}")
        finally:
            store.close()
        return OK
    if args.json:
        print(json.dumps([{"message": mid, "message_id": ref, "delivery": d["id"],
                           "partner": d["partner"], "attempts": d["attempts"],
                           "reason": d["reason"]} for mid, ref, d in rows], indent=2))
    else:
        print(_render.dead_letters(rows))
    return OK


def cmd_journal_verify(args: argparse.Namespace) -> int:
    """Check the hash chain; exit 1 at the first broken entry."""
    with _reader(args) as r:
        count, broken = r.verify_journal()
    if broken is not None:
        print(f"journal BROKEN at entry {broken} ({count} entries read)")
        return FAILED
    print(f"journal intact: {count} entries")
    return OK
