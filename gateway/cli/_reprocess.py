"""Processing a stored input again (``messages replay``) or for the first time (``resubmit``)."""

from __future__ import annotations

from typing import Any

import pluggy

from gateway.assembly import make_validator, schema_set
from gateway.contracts import RawInput
from gateway.daemon import build_pipeline
from gateway.store import Store
from gateway.store.records import Processed
from gateway.workers import WorkerPool


class Reprocessor:
    """The daemon's processing path (:meth:`Pipeline.process <gateway.pipeline.Pipeline.process>`)
    for the command line, built once for as many inputs as an operation takes (an
    export's rows). New deliveries are picked up by the running daemon's dispatcher.
    """

    def __init__(self, store: Store, settings: Any, pm: pluggy.PluginManager) -> None:
        self._store = store
        self._pipeline = build_pipeline(settings, pm, store, make_validator(schema_set(settings)),
                                        lambda: None, WorkerPool(0))

    async def again(self, mid: int) -> Processed:
        """Run quarantined, not-relevant or needs-review message ``mid`` through processing
        again; its outcome as recorded.

        :raises StoreError: it is in another state, or retention deleted its input.
        """
        await self._store.requeue_message(mid)
        return await self.stored(mid)

    async def stored(self, mid: int) -> Processed:
        """Run stored input ``mid`` through processing; its outcome as recorded."""
        p = await self._store.load_input(mid)
        [processed] = await self._pipeline.process([(mid, RawInput(p.source, p.ref, p.data,
                                                                   p.meta))])
        return processed


async def process_stored(mid: int, store: Store, settings: Any, pm: pluggy.PluginManager
                         ) -> Processed:
    """Run stored input ``mid`` through the daemon's processing path; its outcome as recorded."""
    return await Reprocessor(store, settings, pm).stored(mid)
