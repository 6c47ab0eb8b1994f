"""Stage *enrich*: the last known state of each message's person, before rules decide.

Runs in the daemon's event loop between the two halves of processing
(:mod:`gateway.processor`): one store read for the whole batch, then, for a
person the gateway has never seen, the ``gateway_person_lookup`` hook (a
registry plugin's look-up, which may be a coroutine: :mod:`gateway.person_hooks`),
for all of them at once. What a look-up returns is stored with the first
message about that person, so the next message finds it in the store. While the batch before is still being
recorded, what it leaves of its persons (:class:`Recording`) lies over
what the store has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pluggy

from gateway.contracts import Normalised
from gateway.person_hooks import at_once, look_up
from gateway.person_state import PersonChange, PersonState, StoredPerson
from gateway.store import Store


@dataclass(slots=True)
class Found:
    """The person states known before a batch, by key, and which came from a look-up."""

    known: dict[str, StoredPerson] = field(default_factory=dict)
    looked_up: dict[str, PersonState] = field(default_factory=dict)

    def looked_up_for(self, subject: Sequence[str]) -> tuple[PersonState, ...]:
        """The looked-up state of this subject, once: the first message about it stores it."""
        for key in subject:
            state = self.looked_up.get(key)
            if state is not None:
                for k in {*state.keys(), *subject}:
                    self.looked_up.pop(k, None)
                return (state,)
        return ()


async def enrich(store: Store, pm: pluggy.PluginManager, settings: Any,
                 messages: Sequence[tuple[int, Normalised]],
                 recording: Recording | None = None) -> Found:
    """The states of the persons ``messages`` (with their row ids) are about, or state (a
    ``baseDelivery``'s): from the store, else, for a message's subject, from a look-up.

    A stated person's state before the batch is what its update is merged into,
    and what recording compares with (:class:`Recording`): without it, the update
    would count as a new person's, and the next batch would not see it until committed.
    The look-ups run at once, ``[gateway] person_lookup_concurrency`` at a time, once
    per person: the first message about them asks.

    :param recording: what the batch before, still being recorded, leaves of its persons.
    """
    keys = sorted({key for _mid, n in messages for key in _named(n)})
    found = Found()
    if not keys:
        return found
    in_store = await store.stored_persons(keys)
    found.known.update(recording.over(in_store, keys) if recording is not None else in_store)
    asked: set[str] = set()
    todo: list[tuple[int, tuple[str, ...]]] = []
    for mid, n in messages:
        if not n.subject or any(k in found.known or k in asked for k in n.subject):
            continue
        asked.update(n.subject)
        todo.append((mid, n.subject))
    answers = await at_once(settings, [partial(look_up, pm, settings, subject, mid)
                                       for mid, subject in todo])
    for (_mid, subject), state in zip(todo, answers, strict=True):
        # in message order; a state that an earlier answer already gave is that one's
        if state is None or any(k in found.known for k in (*subject, *state.keys())):
            continue
        stored = StoredPerson.of(state)
        for key in {*state.keys(), *subject}:
            found.known[key] = stored
            found.looked_up[key] = state
    return found


class Recording:
    """The person states a batch leaves, while it is being recorded: the next batch
    is finished meanwhile, and must see them.

    For each key, the state the batch worked out, with the stored state it was
    worked out from. The store's answer for a key stands where it is neither of the
    two (another person holds that key: the recording will not give it to this one).
    """

    __slots__ = ("_by_key",)

    def __init__(self, changes: Sequence[PersonChange]) -> None:
        self._by_key: dict[str, tuple[str | None, StoredPerson]] = {}
        for change in changes:
            after = StoredPerson(None, change.merged)
            for key in change.keys:
                first = self._by_key.get(key)  # the base is the one before the batch
                self._by_key[key] = (first[0] if first else change.base, after)

    def touches(self, keys: Iterable[str]) -> bool:
        """Whether this recording changes a person any of ``keys`` names."""
        return any(key in self._by_key for key in keys)

    def over(self, stored: Mapping[str, StoredPerson], keys: Sequence[str]
             ) -> dict[str, StoredPerson]:
        """``stored`` (read before or after this recording committed) with its states on top."""
        out = dict(stored)
        for key in keys:
            entry = self._by_key.get(key)
            if entry is None:
                continue
            base, after = entry
            now = stored.get(key)
            if now is None or now.text == after.text or (base is not None and now.text == base):
                out[key] = after
        return out


def _named(n: Normalised) -> list[str]:
    """The keys of the persons ``n`` is about (its subject) and states."""
    keys = list(n.subject)
    for state in n.persons:
        keys += state.keys()
    return keys

