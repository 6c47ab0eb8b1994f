"""Opening the store from the command line: read-only for readers, the writer for operations."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway import logs
from gateway.assembly import load_config
from gateway.cli import _render
from gateway.errors import Ambiguous, NotFound
from gateway.events import Publisher
from gateway.person_state import parse_key
from gateway.store import SQLiteStore, StoreReader


def configuration(args: argparse.Namespace) -> Any:
    """The configuration ``--config`` names (else the first found); the command logs from here
    on as it says (:func:`gateway.logs.setup_command`)."""
    loaded = load_config(args.config, args.pm)
    logs.setup_command(loaded.gateway.log_level, loaded.gateway.log_format)
    return loaded


@contextmanager
def reader(args: argparse.Namespace, settings: Any = None) -> Iterator[StoreReader]:
    """The configured store, read-only; :class:`NotFound` before the gateway ran once.

    :param settings: the configuration, if loaded already.
    """
    path = (settings or configuration(args)).store.path
    if not path.exists():
        raise NotFound(f"no database at {path} yet: start the gateway once")
    store = StoreReader(path)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def writer(args: argparse.Namespace) -> Iterator[tuple[Any, SQLiteStore]]:
    """The settings and the configured store, open for writing (migrated).

    What an operation commits is announced to the plugins as the daemon's
    commits are (``gateway_event``): a replay from the command line reaches
    the alerting plugins too.
    """
    settings = configuration(args)
    store = SQLiteStore(settings.store.path, busy_timeout=settings.store.busy_timeout)
    store.on_commit(Publisher(args.pm))
    store.start()
    try:
        yield settings, store
    finally:
        store.close()


def resolve(store: StoreReader, key: str) -> int:
    """The row id of the message ``key`` names: a row id or an eCH-0223 messageId, or
    ``row:N``, the row id alone.

    :raises NotFound: when no message matches.
    :raises Ambiguous: when the key names several messages (a messageId several
        senders used, or a number that is a row id and a messageId), each a candidate.
    """
    found = store.find_messages(key)
    if not found:
        raise NotFound(f"no message {key}")
    if len(found) > 1:
        width = max(len(str(m["id"])) for m in found) + len("row:")
        candidates = [f"{'row:' + str(m['id']):<{width}}  {m['state']:<12}"
                      f" received {_render.iso(m['received_at'])}"
                      f"  {m['source']}/{m['ref']}"
                      + (f"  from sender {m['sender_id']}" if m["sender_id"] else "")
                      for m in found]
        what = (f"{key} is a row id and a messageId" if any(m["id"] == _number(key) for m in found)
                else f"messageId {key}")
        raise Ambiguous(f"{what}: it names {len(found)} messages; give one as row:ID"
                        " (first column):", candidates)
    return int(found[0]["id"])


def _number(key: str) -> int | None:
    return int(key) if key.isascii() and key.isdigit() else None


def person(store: StoreReader, text: str, unknown: str) -> dict[str, Any]:
    """The one person ``text`` (a VN or local id) names: state, keys, messages.

    :param unknown: the message when nobody matches (a VN with a wrong check digit does
        not get here: the argument is refused, :func:`gateway.cli._args.person`).
    :raises NotFound: nobody matches. :raises Ambiguous: several do, each a candidate.
    """
    found = store.find_persons(parse_key(text))
    if not found:
        raise NotFound(unknown)
    if len(found) > 1:
        people = [store.get_person(pid) for pid in found]
        raise Ambiguous(f"{text} names {len(found)} persons; give one of their keys:",
                        [", ".join(p["keys"]) for p in people if p is not None])
    one = store.get_person(found[0])
    assert one is not None
    return one
