"""Intake paused while the store cannot write, resumed when it can.

The store cannot write while its disk is full, or while another program holds
the database's write lock (longer than ``[store] busy_timeout``: a tool with
the database open for writing). Every store write of the intake side (storing
inputs, recording what processing decided, recording receipts) goes through
:meth:`IntakePause.write`. When the store raises
:class:`~gateway.errors.StoreUnavailable`, the write waits and is
tried again, after 2 s, then twice as long each time up to a minute, until
it succeeds: sources block in ``submit`` meanwhile (their files stay where
they are), and stored inputs keep their place in the pipeline, so nothing
waits for a restart. ``intake.paused`` and ``intake.resumed`` are emitted
directly, not from the journal: the store is what cannot write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pluggy

from gateway.errors import StoreUnavailable
from gateway.plugin_types import GatewayEvent
from gateway.plugins import notify

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds before a failed write is tried again, doubling up to the maximum.
RETRY_FIRST, RETRY_MAX = 2.0, 60.0


class IntakePause:
    """Retries the intake's store writes until the store can write again."""

    def __init__(self, pm: pluggy.PluginManager, *, first: float = RETRY_FIRST,
                 longest: float = RETRY_MAX) -> None:
        self._pm = pm
        self.first = first
        self.longest = longest
        self._since: float | None = None
        self._delay = first

    @property
    def paused(self) -> bool:
        """Whether a write is waiting for the store now."""
        return self._since is not None

    async def write(self, op: Callable[[], Awaitable[T]], *, wait: bool = True) -> T:
        """``await op()``, tried again while it raises :class:`StoreUnavailable`.

        :param wait: ``False``: raise :class:`StoreUnavailable` instead of waiting (the
            intake is paused all the same), for a caller whose sender can come back later.
        """
        while True:
            try:
                result = await op()
            except StoreUnavailable as exc:
                if not wait:
                    self._pause(exc)
                    raise
                await self._wait(exc)
                continue
            if self._since is not None:
                self._resume()
            return result

    def _pause(self, exc: StoreUnavailable) -> None:
        """Note the pause (once, until the store writes again)."""
        if self._since is None:
            self._since, self._delay = time.time(), self.first
            log.info("intake paused until the store can write again (retrying every %.0f-%.0fs)",
                     self.first, self.longest)
            notify(self._pm, GatewayEvent("intake.paused", None, None, {"error": str(exc)}))

    async def _wait(self, exc: StoreUnavailable) -> None:
        self._pause(exc)
        delay = self._delay
        self._delay = min(self._delay * 2, self.longest)
        await asyncio.sleep(delay)

    def _resume(self) -> None:
        assert self._since is not None
        seconds = round(time.time() - self._since, 1)
        self._since = None
        notify(self._pm, GatewayEvent("intake.resumed", None, None, {"paused_for": seconds}))
