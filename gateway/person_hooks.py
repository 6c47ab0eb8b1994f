"""Asking the registry plugins about persons: every call of ``gateway_person_lookup`` and
``gateway_person_resolve`` goes through here (stage *enrich*, the way back, ``messages assign``).

A batch asks about its persons at once, ``[gateway] person_lookup_concurrency`` at a time
(:func:`at_once`, the one bound of both stage *enrich* and the way back).

Each plugin implementing the hook is asked on its own, so that what goes wrong is known to
be its, and within ``[gateway] person_lookup_timeout``, so that no plugin holds up its
batch (or an operator's command) for good. One that raises, does not answer in time or
answers something else than the hook's type counts as knowing nobody: one warning names
the plugin and the message asked for (its row id), never the person; the exception's text
(which may quote the person) and traceback are logged at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pluggy

from gateway.ech0223 import PersonIdentificationLight
from gateway.person_state import PersonState
from gateway.plugins import each_plugin, resolve

log = logging.getLogger(__name__)

LOOKUP = "gateway_person_lookup"
RESOLVE = "gateway_person_resolve"
_WHAT = {LOOKUP: "person look-up", RESOLVE: "person resolution"}

T = TypeVar("T")


async def at_once(settings: Any, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """What each of ``calls`` (work that asks the registry plugins) answers, in their order;
    ``[gateway] person_lookup_concurrency`` of them run at a time.

    A call that raises ends the others (cancelled: none is left running) and its error
    goes on as it is.
    """
    slots = asyncio.Semaphore(settings.gateway.person_lookup_concurrency)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await call()

    tasks = [asyncio.ensure_future(one(call)) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # after an error or a cancellation; done ones are left as they are
            task.cancel()


async def look_up(pm: pluggy.PluginManager, settings: Any, keys: Sequence[str],
                  message: int) -> PersonState | None:
    """The person ``keys`` name, as the first plugin that knows them answers (in pluggy's
    order; one that fails counts as not knowing them); ``None``: none does.

    :param message: the row id of the message the person is looked up for (for the log).
    """
    for plugin, call in each_plugin(pm, LOOKUP):
        _failed, answer = await _asked(plugin, LOOKUP, message, settings,
                                       partial(call, keys=list(keys), settings=settings))
        if isinstance(answer, PersonState):
            return answer
        if answer is not None:
            _ignored(plugin, LOOKUP, message, answer)
    return None


@dataclass(slots=True)
class Candidates:
    """The residents the plugins named, and the plugins that could not say (they raised or
    did not answer in time: the resident may be known to them)."""

    persons: list[PersonState]
    failed: list[str]


async def candidates(pm: pluggy.PluginManager, settings: Any,
                     identification: PersonIdentificationLight, message: int) -> Candidates:
    """The residents the plugins name for ``identification``, every plugin asked at once,
    each person once (by keys); a plugin that fails names nobody, and is listed as failed.

    :param message: the row id of the message whose person is searched (for the log).
    """
    callers = each_plugin(pm, RESOLVE)
    answers = await asyncio.gather(*(
        _asked(plugin, RESOLVE, message, settings,
               partial(call, identification=identification, settings=settings))
        for plugin, call in callers))
    unique: dict[tuple[str, ...], PersonState] = {}
    failed: list[str] = []
    for (plugin, _call), (fails, answer) in zip(callers, answers, strict=True):
        if fails:
            failed.append(plugin)
        if answer is None:
            continue
        if isinstance(answer, PersonState | str | bytes) or not isinstance(answer, Sequence):
            _ignored(plugin, RESOLVE, message, answer)
            continue
        for state in answer:
            if isinstance(state, PersonState):
                unique.setdefault(tuple(sorted(state.keys())) or (str(id(state)),), state)
            else:
                _ignored(plugin, RESOLVE, message, state)
    return Candidates(list(unique.values()), failed)


async def _asked(plugin: str, hook: str, message: int, settings: Any,
                 call: Callable[[], Any]) -> tuple[bool, Any]:
    """Whether ``call`` (one plugin's implementation of ``hook``) failed, and what it answers,
    awaited if need be, within ``[gateway] person_lookup_timeout``; failed (logged), with
    ``None``, if it raises or takes longer."""
    limit = settings.gateway.person_lookup_timeout
    what = _WHAT[hook]
    try:
        async with asyncio.timeout(limit):
            answer = call()
            if hook == RESOLVE:  # not a first-result hook: pluggy lists the plugin's answer
                answer = answer[0] if answer else None
            answer = await resolve(answer)
    except TimeoutError:  # a plugin without a bound of its own must not stall its batch
        log.warning("%s by plugin %r for message %d did not answer within [gateway]"
                    " person_lookup_timeout (%gs); going on without the registry's data",
                    what, plugin, message, limit)
        return True, None
    except Exception as exc:  # a registry that is down must not stop processing
        log.warning("%s by plugin %r for message %d failed (%s); going on without the"
                    " registry's data", what, plugin, message, type(exc).__name__)
        log.debug("%s failure by plugin %r for message %d", what, plugin, message,
                  exc_info=True)
        return True, None
    return False, answer


def _ignored(plugin: str, hook: str, message: int, answer: object) -> None:
    expected = "PersonState" if hook == LOOKUP else "a list of PersonState"
    log.warning("%s by plugin %r for message %d returned %s, not %s; ignored",
                _WHAT[hook], plugin, message, type(answer).__name__, expected)
