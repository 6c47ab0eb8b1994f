"""``messages replay``: process quarantined input again (an export: its quarantined rows),
or resend dead deliveries."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.cli import _access, _out
from gateway.cli.exitcodes import AMBIGUOUS, FAILED, NOT_FOUND, OK, worst
from gateway.errors import Ambiguous, NotFound, StoreError, StoreUnavailable
from gateway.store import MessageState, SQLiteStore, StoreReader
from gateway.wording import noun

if TYPE_CHECKING:
    from gateway.cli._reprocess import Reprocessor

#: The states a message is processed again from.
_AGAIN = (MessageState.QUARANTINED, MessageState.NOT_RELEVANT, MessageState.NEEDS_REVIEW)


def cmd_replay(args: argparse.Namespace) -> int:
    """Reprocess quarantined messages (an export: its quarantined rows not handled); resend
    dead deliveries of the others.

    Exit 1 when a message is quarantined again (its reason printed) or cannot be
    replayed; an ID that names no message, or several, exits 3 or 4 as elsewhere. Of
    several IDs, the most severe of their codes (:func:`~gateway.cli.exitcodes.worst`).
    """
    from gateway.cli._reprocess import Reprocessor  # the daemon's pipeline: loaded when needed

    status = OK
    with _access.writer(args) as (settings, store), _access.reader(args) as r:
        # built once, when a message is to be processed again (not for dead deliveries)
        processing = functools.cache(lambda: Reprocessor(store, settings, args.pm))
        for key in args.ids:
            try:
                msg = r.get_message(_access.resolve(r, key))
                if msg is None:
                    raise NotFound(f"no message {key}")
                if msg["state"] == MessageState.SPLIT:
                    status = worst(status, _replay_rows(msg, r, processing()))
                elif not _replay_one(msg, store, processing):
                    status = worst(status, FAILED)
            except NotFound as exc:
                _out.say(f"ech-gateway: {exc}", file=sys.stderr)
                status = worst(status, NOT_FOUND)
            except Ambiguous as exc:
                _out.say(f"ech-gateway: {exc}", *(f"  {c}" for c in exc.candidates), file=sys.stderr)
                status = worst(status, AMBIGUOUS)
            except StoreUnavailable:  # no refusal: it stops every item (cli.main)
                raise
            except StoreError as exc:
                _out.say(f"ech-gateway: message {key}: {exc}", file=sys.stderr)
                status = worst(status, FAILED)
    return status


def _replay_one(msg: dict[str, Any], store: SQLiteStore,
                processing: Callable[[], Reprocessor]) -> bool:
    """Replay one message and say what became of it; False if it is quarantined again."""
    if msg["state"] in _AGAIN:
        p = asyncio.run(processing().again(msg["id"]))
        if p.state == MessageState.QUARANTINED:
            _out.say(f"message {msg['id']}: processed again, still quarantined: {p.reason}")
            return False
        _out.say(f"message {msg['id']}: processed again, now {p.state}")
        return True
    dead = [d["id"] for d in msg["deliveries"] if d["state"] in ("dead", "needs_review", "rejected")]
    if not dead:
        raise StoreError(f"it is {msg['state']} and has no dead delivery to replay")
    new = [asyncio.run(store.replay_delivery(d)) for d in dead]
    _out.say(f"message {msg['id']}: {noun(len(dead), 'delivery', 'deliveries')}"
             f" {', '.join(map(str, dead))} replayed as {', '.join(map(str, new))}")
    return True


def _replay_rows(export: dict[str, Any], r: StoreReader, processing: Reprocessor) -> int:
    """Process each quarantined row of ``export`` that no operator handled again, one line
    each, then the count; FAILED if one was refused (the others go on). Rows in other
    states (routed, handled...) are left as they are.

    A row the mapping found the same as an earlier row of its file has that row's
    messageId: whichever of the two is processed second becomes a duplicate of the
    first, so the event is sent once.

    :raises StoreError: none of its rows is quarantined and unhandled.
    """
    rows = r.unhandled_rows(export["id"])
    if not rows:
        total = export["rows"]["total"] if export["rows"] else 0
        raise StoreError(f"it is split and none of its {total} rows is quarantined and"
                         " unhandled: nothing to replay")
    states, refused = asyncio.run(_again_each(rows, processing))
    counts = ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
    _out.say(f"message {export['id']}: {len(rows) - refused} of {len(rows)} quarantined rows"
             f" processed again ({counts or 'none'})")
    return FAILED if refused else OK


async def _again_each(rows: list[tuple[int, str]], processing: Reprocessor
                      ) -> tuple[Counter[str], int]:
    """Process each row again, one line each; how many came to each state, how many
    were refused (said on stderr)."""
    states: Counter[str] = Counter()
    refused = 0
    for mid, ref in rows:
        try:
            p = await processing.again(mid)
        except StoreUnavailable:  # no refusal: it stops every row (cli.main)
            raise
        except StoreError as exc:
            _out.say(f"message {mid} ({ref}): {exc}", file=sys.stderr)
            refused += 1
            continue
        states[p.state] += 1
        why = f": {p.reason}" if p.reason and p.state is not MessageState.ROUTED else ""
        _out.say(f"message {mid} ({ref}): processed again, now {p.state}{why}")
    return states, refused
