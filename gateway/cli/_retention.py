"""``ech-gateway prune``: retention now, beside the daemon's hourly run."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from gateway.assembly import load_config
from gateway.cli import _access
from gateway.cli.exitcodes import OK
from gateway.retention import Retention


def add_commands(sub: Any) -> None:
    """Register ``prune``."""
    p = sub.add_parser("prune", help="delete the input and payloads of settled messages older"
                       " than [retention] keep now (the daemon does it every [retention] interval)")
    p.add_argument("--dry-run", action="store_true",
                   help="only count the messages that would be pruned")
    p.set_defaults(handler=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    """Prune what is due (or count it, ``--dry-run``) and say how many messages."""
    settings = load_config(args.config, args.pm)
    keep = settings.retention.keep
    if not keep:
        print("[retention] keep is 0: messages keep their bodies forever; nothing to prune")
        return OK
    if args.dry_run:
        with _access.reader(args, settings) as r:
            before = datetime.now(UTC).timestamp() - keep
            count = r.count_prunable(before)
        print(f"{count} settled messages unchanged since {_iso(before)} would be pruned"
              " (an export's file counts once its rows are pruned)")
        return OK
    with _access.writer(args) as (_settings, store):
        before = store.now() - keep
        count = asyncio.run(Retention(store, settings.retention, settings.store.path.parent).prune())
    print(f"pruned {count} settled messages unchanged since {_iso(before)}: their input and"
          " payloads are deleted; their records and journal remain")
    return OK


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
