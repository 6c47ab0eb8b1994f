"""``ech-gateway prune``: retention now, beside the daemon's hourly run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.archives import ArchivedFiles, Pruned, archive_folders
from gateway.cli import _access, _out
from gateway.cli._render import iso
from gateway.cli.exitcodes import FAILED, OK
from gateway.config import format_duration
from gateway.retention import Retention
from gateway.wording import counted


def add_commands(sub: Any) -> None:
    """Register ``prune``."""
    p = sub.add_parser("prune", help="delete now what [retention] keep and keep_files let go:"
                       " the input and payloads of settled messages, persons who left the"
                       " register, the bytes of unmatched receipts, archived files (the daemon"
                       " does it every [retention] interval)")
    p.add_argument("--dry-run", action="store_true",
                   help="only count what would be deleted")
    p.set_defaults(handler=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    """Prune what is due (or count it, ``--dry-run``) and say how many of each kind."""
    settings = _access.configuration(args)
    keep = settings.retention.keep
    files = ArchivedFiles(archive_folders(settings), settings.retention.files_for)
    if not keep:
        _out.say("[retention] keep is 0: messages keep their bodies forever")
    elif not settings.store.path.exists():  # the archived files may be pruned all the same
        _out.say(f"no database at {settings.store.path} yet: no messages to prune")
    elif args.dry_run:
        with _access.reader(args, settings) as r:
            before = datetime.now(UTC).timestamp() - keep
            count, persons, receipts = r.count_prunable(before)
        _out.say(f"{counted(count, 'settled message')} unchanged since {iso(before)} would be"
                 " pruned (an export's file counts once its rows are pruned)")
        _out.say(f"{counted(persons, 'person')} who left the register before {iso(before)} would be"
                 " deleted")
        _out.say(f"the bytes of {counted(receipts, 'unmatched receipt')} recorded before"
                 f" {iso(before)} would be deleted")
    else:
        with _access.writer(args) as (_settings, store):
            before = store.now() - keep
            retention = Retention(store, settings.retention, settings.store.path.parent)
            count = asyncio.run(retention.prune())
            persons = asyncio.run(retention.prune_persons())
            receipts = asyncio.run(retention.prune_receipts())
        _out.say(f"pruned {counted(count, 'settled message')} unchanged since {iso(before)}: input"
                 " and payloads deleted; records and journal remain")
        _out.say(f"deleted {counted(persons, 'person')} who left the register before {iso(before)}:"
                 " states, keys and message links (the messages' records and the journal remain)")
        _out.say(f"deleted the bytes of {counted(receipts, 'unmatched receipt')} recorded before"
                 f" {iso(before)}: receipts that matched no delivery (records and journal remain)")
    done = asyncio.run(_archived(files, args.dry_run))
    _out.say(_files(files, {folder: pruned.count for folder, pruned in done.items()},
                    "would be deleted" if args.dry_run else "deleted"))
    failed = [(folder, pruned.failed) for folder, pruned in done.items() if pruned.failed]
    for folder, why in failed:
        _out.say(f"cannot {'count' if args.dry_run else 'delete'} the old archived files in"
                 f" {folder}: {why}", file=sys.stderr)
    return FAILED if failed else OK


async def _archived(files: ArchivedFiles, dry_run: bool) -> dict[Path, Pruned]:
    """The old archived files deleted (or counted) in each folder, each call into it bounded
    in time: a folder on a share that hangs is given up on, and the next one pruned."""
    return {folder: await files.prune_in(folder, dry_run=dry_run) for folder in files.folders}


def _files(files: ArchivedFiles, counts: dict[Path, int], done: str) -> str:
    """What becomes of the archived files: how many in each folder, or why none."""
    if not files.keep:
        return "[retention] keep_files is 0: archived files are kept forever"
    if not files.folders:
        return "no archive folders (a source's done_dir, sedex receipts_archive) are configured"
    each = ", ".join(f"{n} in {folder}" for folder, n in counts.items())
    return (f"{counted(sum(counts.values()), 'archived file')} moved there more than"
            f" {format_duration(files.keep)} ago {done} ({each})")

