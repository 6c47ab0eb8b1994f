"""Stage *enrich*: the last known state of each message's person, before rules decide.

Runs in the daemon's event loop between the two halves of processing
(:mod:`gateway.processor`): one store read for the whole batch, then, for a
person the gateway has never seen, the ``gateway_person_lookup`` hook (a
registry plugin's look-up, which may be a coroutine). What a look-up
returns is stored with the first message about that person, so the next
message finds it in the store.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from gateway.contracts import Normalised
from gateway.person_state import PersonState, StoredPerson
from gateway.store import Store

log = logging.getLogger(__name__)


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
                 messages: Sequence[Normalised]) -> Found:
    """The states of the persons ``messages`` are about: from the store, else from a look-up."""
    keys = sorted({key for n in messages for key in n.subject})
    found = Found()
    if not keys:
        return found
    found.known.update(await store.stored_persons(keys))
    asked: set[str] = set()
    for n in messages:
        if not n.subject or any(k in found.known or k in asked for k in n.subject):
            continue
        asked.update(n.subject)
        state = await _look_up(pm, settings, n.subject)
        if state is not None:
            stored = StoredPerson.of(state)
            for key in {*state.keys(), *n.subject}:
                found.known[key] = stored
                found.looked_up[key] = state
    return found


async def _look_up(pm: pluggy.PluginManager, settings: Any,
                   subject: Sequence[str]) -> PersonState | None:
    """Ask the plugins; a failing look-up is logged and counts as "unknown"."""
    try:
        answer = pm.hook.gateway_person_lookup(keys=list(subject), settings=settings)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:  # a registry that is down must not stop processing
        log.warning("person look-up failed (%s); going on without the registry's data",
                    type(exc).__name__)
        log.debug("person look-up failure", exc_info=True)
        return None
    if answer is not None and not isinstance(answer, PersonState):
        log.warning("person look-up returned %s, not a PersonState; ignored",
                    type(answer).__name__)
        return None
    return answer
