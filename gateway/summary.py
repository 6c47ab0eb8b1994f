"""The periodic summary: what a busy gateway did since the last one, in one INFO line.

Counts come from the store's journal (what was committed), never from the
messages themselves: no names, no VN numbers. An idle gateway says nothing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from gateway.store import StoreReader

log = logging.getLogger("gateway.summary")

#: Journal events counted as failed: the input or the delivery needs a person.
FAILED = ("message.quarantined", "delivery.dead", "delivery.rejected", "delivery.needs_review")


class Summary:
    """Logs ``received, delivered, failed, pending`` when the journal grew since the last call."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self._seen: int | None = None

    def _read(self, since: int) -> tuple[int, dict[str, int], int]:
        reader = StoreReader(self._db)
        try:
            return reader.activity(since)
        finally:
            reader.close()

    async def start(self) -> None:
        """Count from now on (what happened before this start is not summarised)."""
        self._seen, _, _ = await asyncio.to_thread(self._read, 2**62)

    async def tick(self) -> None:
        """Log the summary if anything was committed since the last tick."""
        since = self._seen or 0
        head, events, pending = await asyncio.to_thread(self._read, since)
        if head == since:
            return
        self._seen = head
        failed = sum(events.get(kind, 0) for kind in FAILED)
        log.info("summary: %d received, %d delivered, %d failed, %d pending",
                 events.get("message.received", 0), events.get("delivery.delivered", 0),
                 failed, pending)
