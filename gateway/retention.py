"""Retention and disk space: the store must not grow until the disk is full.

Settled messages lose their bodies once unchanged for ``[retention] keep``
(:meth:`Store.prune <gateway.store.Store.prune>`; their records and the
journal stay), and persons who left the register are deleted once departed
for that long (:meth:`Store.prune_persons <gateway.store.Store.prune_persons>`),
and receipts that matched no delivery lose their bytes once recorded that
long ago (:meth:`Store.prune_receipts <gateway.store.Store.prune_receipts>`);
the files plugins archived go ``keep_files`` after they were moved there
(:mod:`gateway.archives`). A warning comes while the disk that holds the
database has less free space than ``warn_free_below``: one
``store.space_low`` event when it falls below, one ``store.space_ok`` when
it is back, each journaled (the alerts plugin tells the operator). (When
the disk is full after all, intake pauses and resumes by itself:
:mod:`gateway.intake_pause`.)
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from gateway.archives import ArchivedFiles
from gateway.config import RetentionSettings
from gateway.store import Store
from gateway.wording import counted

log = logging.getLogger(__name__)

#: Messages pruned per transaction: the writer is not held up for long.
PRUNE_BATCH = 500
#: Seconds between looks at the database's free disk space.
SPACE_INTERVAL = 60.0


def free_bytes(folder: Path) -> int:
    """The free space this process may use on the file system that holds ``folder``."""
    return shutil.disk_usage(folder).free


class Retention:
    """Prunes settled messages, departed persons, unmatched receipts and archived files, and
    watches the database's disk."""

    def __init__(self, store: Store, settings: RetentionSettings, folder: Path,
                 archives: Mapping[Path, float] | None = None) -> None:
        """:param folder: the folder of the database, whose disk is watched.
        :param archives: the folders whose files go ``keep_files`` after they were moved
            there, each with the seconds a call into it may take
            (:func:`~gateway.archives.archive_folders`)."""
        self._store = store
        self._settings = settings
        self._folder = folder
        self.files = ArchivedFiles(archives or {}, settings.files_for)
        #: whether the last look found the free space below the threshold (and said so)
        self.low = False

    async def prune(self) -> int:
        """Delete the bodies of every settled message unchanged for ``keep``, a batch per
        transaction; how many messages (0 when ``keep`` is 0: kept forever)."""
        return await self._in_batches(self._store.prune, "settled message",
                                      "deleted the input and payloads of %s unchanged since %s")

    async def prune_persons(self) -> int:
        """Delete the states of persons who left the register (moved out, died, deleted in it)
        more than ``keep`` ago and whose messages are pruned, a batch per transaction; how
        many (0 when ``keep`` is 0). Residents are kept: the events that follow need them."""
        return await self._in_batches(self._store.prune_persons, "person",
                                      "deleted the states of %s who left the register before %s")

    async def prune_receipts(self) -> int:
        """Delete the bytes of every receipt that matched no delivery (``receipt.unmatched``)
        recorded more than ``keep`` ago, a batch per transaction; how many (0 when ``keep``
        is 0). Their records stay."""
        return await self._in_batches(self._store.prune_receipts, "unmatched receipt",
                                      "deleted the bytes of %s recorded before %s")

    async def _in_batches(self, prune: Callable[[float, int], Awaitable[int]],
                          what: str, said: str) -> int:
        """``prune(before, PRUNE_BATCH)`` until a batch is not full, ``before`` being ``keep``
        ago; how many in all, logged with ``said`` (how many ``what``, then that time)."""
        keep = self._settings.keep
        if not keep:
            return 0
        before = self._store.now() - keep
        total = 0
        while True:
            pruned = await prune(before, PRUNE_BATCH)
            total += pruned
            if pruned < PRUNE_BATCH:
                break
        if total:
            log.info("retention: " + said, counted(total, what),
                     datetime.fromtimestamp(before, UTC).isoformat(timespec="seconds"))
        return total

    async def watch_space(self) -> None:
        """Look at the free space once; journal when it falls below the threshold, and when
        it is back above (nothing while it stays on one side)."""
        threshold = int(self._settings.warn_free_below)
        if not threshold:
            return
        free = free_bytes(self._folder)
        low = free < threshold
        if low == self.low:
            return
        detail = {"folder": str(self._folder), "free_bytes": free, "threshold_bytes": threshold}
        await self._store.note("store.space_low" if low else "store.space_ok", detail)
        self.low = low  # said once committed: the alerts plugin tells the operator
