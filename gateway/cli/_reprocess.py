"""Processing a stored input again (``messages replay``) or for the first time (``resubmit``)."""

from __future__ import annotations

from typing import Any

import pluggy

from gateway.assembly import make_validator, schema_set
from gateway.contracts import RawInput
from gateway.daemon import build_pipeline
from gateway.store import Store
from gateway.workers import WorkerPool


async def reprocess(mid: int, store: Store, settings: Any, pm: pluggy.PluginManager) -> str:
    """Run quarantined or not-relevant message ``mid`` through processing again; its new state.

    New deliveries are picked up by the running daemon's dispatcher.
    """
    await store.requeue_message(mid)
    return await process_stored(mid, store, settings, pm)


async def process_stored(mid: int, store: Store, settings: Any, pm: pluggy.PluginManager) -> str:
    """Run stored input ``mid`` through the daemon's processing path; return its new state."""
    pipeline = build_pipeline(settings, pm, store, make_validator(schema_set(settings)),
                              lambda: None, WorkerPool(0))
    p = await store.load_input(mid)
    [processed] = await pipeline.process([(mid, RawInput(p.source, p.ref, p.data, p.meta))])
    return str(processed.state)
