"""The processing stages as a worker process runs them, and what it keeps between them.

The pipeline (:mod:`gateway.pipeline`) calls these in the worker processes
(``[gateway] workers``): :func:`normalise_work`, then, for the same batch in the
same worker, :func:`finish_kept`, naming its inputs by id only; where the worker
no longer holds them, :func:`finish_work` with the inputs. Each runs this
worker's :class:`~gateway.processor.Processor`, made by :func:`init_worker`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from gateway import logs
from gateway.contracts import Draft, Normalised, RawInput
from gateway.errors import InputRejected
from gateway.person_state import PersonState, StoredPerson
from gateway.processor import Processor, Step, normalise_context, partner_targets
from gateway.store import Processed

_worker: Processor | None = None


def start_worker(settings: Any) -> None:
    """A spawned worker process's initializer: the daemon's logging (its level and format,
    VN/AHV numbers hidden), then :func:`init_worker`. A spawned process has no handler of
    its own: without this, what plugins log there would reach stderr as Python's bare
    fallback line, unformatted and unfiltered."""
    logs.setup(settings.gateway.log_level, settings.gateway.log_format)
    init_worker(settings)


def init_worker(settings: Any) -> None:
    """Build this worker process's processor from the daemon's settings."""
    from gateway.assembly import make_validator, schema_set
    from gateway.plugins import get_plugin_manager
    from gateway.workers import settle_gc

    global _worker
    _worker = Processor(get_plugin_manager(), settings, normalise_context(settings),
                        make_validator(schema_set(settings)), partner_targets(settings))
    settle_gc()


#: Batches whose inputs a worker keeps for their finish: one normalised ahead, and those being
#: decided, which may be decided again (``Pipeline.run``).
KEPT_BATCHES = 4
#: The inputs this worker normalised, by message id, with their steps as made (drafts
#: parsed), until :data:`KEPT_BATCHES` later batches were normalised here.
_inputs: dict[int, tuple[RawInput, Normalised]] = {}
#: The message ids of the batches whose inputs are kept, oldest first.
_kept: deque[list[int]] = deque()
#: The kept inputs beyond which those already finished here are let go of, oldest first
#: (finished again, which is rare, they are normalised again): a base delivery of 128 MB
#: states 28,000 persons, about 500 MiB with its input; four kept took a worker to 1.3 GB.
KEPT_BYTES = 64 << 20
#: The message ids of kept inputs finished here at least once.
_finished: set[int] = set()


class _KeptDraft:
    """What crosses to the core in place of a draft that the worker which made it keeps
    (:data:`KEPT`): the core needs to know only that the message has one."""

    __slots__ = ()

    def complete(self, person: PersonState | None) -> Normalised:
        """Never called: :func:`finish_work` puts the draft itself back first."""
        raise InputRejected("the draft of this input stayed in another worker process")

    def __reduce__(self) -> str:
        return "KEPT"  # pickles as a reference to this module's one instance


#: Stands in for a draft its worker keeps, wherever the message goes from there.
KEPT: Draft = _KeptDraft()


class _KeptPersons:
    """What crosses to the core in place of the person states a step states, which the
    worker that made it keeps: their keys, all that enrichment reads of them. A
    ``baseDelivery`` of 16.8 MB states 3,680 persons; as models in the event loop they
    took about 5 KB each (18 MiB), several deliveries' at once."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys

    def keys(self) -> list[str]:
        """The keys of every person stated (one stand-in holds them all)."""
        return list(self._keys)

    def __reduce__(self) -> tuple[type[_KeptPersons], tuple[tuple[str, ...]]]:
        return _KeptPersons, (self._keys,)


def held(n: Normalised) -> bool:
    """Whether the core has only stand-ins for what the worker that normalised ``n`` keeps
    (its draft, its person states): it is best finished there."""
    return n.draft is not None or any(isinstance(p, _KeptPersons) for p in n.persons[:1])


def _for_core(step: Step) -> Step:
    """``step`` as it crosses to the core: stand-ins for its draft and for the person states
    of a step that states several (a ``baseDelivery``). One state (an eCH-0223 message's)
    crosses whole: it is small, and any worker can then finish the step."""
    if not isinstance(step, Normalised) or (step.draft is None and len(step.persons) < 2):
        return step
    changes: dict[str, Any] = {}
    if step.draft is not None:
        changes["draft"] = KEPT
    if len(step.persons) > 1:
        keys = itertools.chain.from_iterable(state.keys() for state in step.persons)
        changes["persons"] = (_KeptPersons(tuple(keys)),)
    return step.replaced(**changes)


def normalise_work(batch: Sequence[tuple[int, RawInput]]) -> list[Step]:
    """Stage one in a worker process; the inputs and their steps stay here too, as made.

    The steps go to the core with :data:`KEPT` in place of their drafts and the
    keys of the persons they state in place of several states (:func:`held`). The
    pipeline finishes a batch in the worker that normalised it, naming its
    inputs by id (:func:`finish_kept`); a batch not finished here (its worker
    was busy, or a replay) is forgotten after :data:`KEPT_BATCHES` others.
    """
    assert _worker is not None, "init_worker was not called"
    steps = _worker.normalise_batch(batch)
    kept = {mid: (raw, step) for (mid, raw), step in zip(batch, steps, strict=True)
            if isinstance(step, Normalised)}
    _inputs.update(kept)
    _kept.append(list(kept))
    while len(_kept) > KEPT_BATCHES:
        _forget(_kept.popleft())
    return [_for_core(s) for s in steps]


def _forget(mids: Sequence[int]) -> None:
    """No longer keep the inputs ``mids``."""
    for mid in mids:
        _inputs.pop(mid, None)
        _finished.discard(mid)


def _let_go() -> None:
    """Forget batches finished here, oldest first, while the kept inputs exceed
    :data:`KEPT_BYTES`; a batch not finished yet stays, whatever its size."""
    held = sum(len(raw.data) for raw, _step in _inputs.values())
    for mids in list(_kept):
        if held <= KEPT_BYTES:
            return
        if all(mid in _finished for mid in mids):
            _kept.remove(mids)
            held -= sum(len(_inputs[mid][0].data) for mid in mids if mid in _inputs)
            _forget(mids)


def finish_kept(mids: Sequence[int], known: Mapping[str, StoredPerson]) -> list[Processed] | None:
    """Stage three in a worker process for inputs :func:`normalise_work` kept here, by id;
    ``None`` when it does not hold them all (another worker's batch, or this worker was
    restarted or has forgotten it): then :func:`finish_work` takes them with the inputs.

    The inputs stay kept (the pipeline may finish a batch again, with other person
    states) unless those finished here exceed :data:`KEPT_BYTES` (:func:`_let_go`).
    """
    assert _worker is not None, "init_worker was not called"
    if not all(mid in _inputs for mid in mids):
        return None
    results = _worker.finish_batch([(mid, *_inputs[mid]) for mid in mids], known)
    _finished.update(mids)
    _let_go()
    return results


def finish_work(items: Sequence[tuple[int, RawInput, Normalised]],
                known: Mapping[str, StoredPerson]) -> list[Processed]:
    """Stage three in a worker process, with the inputs and their steps.

    A step with stand-ins (:func:`held`) is the one kept here if it still is,
    else the raw input is normalised again (its outcome stands if that no
    longer gives a message).
    """
    worker = _worker
    assert worker is not None, "init_worker was not called"
    steps = [(mid, raw, _as_made(worker, mid, raw, n)) for mid, raw, n in items]
    done = iter(worker.finish_batch([(mid, raw, s) for mid, raw, s in steps
                                      if isinstance(s, Normalised)], known))
    return [next(done) if isinstance(s, Normalised) else s for _mid, _raw, s in steps]


def _as_made(worker: Processor, mid: int, raw: RawInput, n: Normalised) -> Step:
    """``n`` as normalised, without stand-ins: kept here, or made again from ``raw``."""
    if not held(n):
        return n
    kept = _inputs.get(mid)
    return kept[1] if kept is not None else worker.normalise(mid, raw)
