"""Calls into a file system that may hang (a network share), each given up on after a while.

A call runs in a thread of its own (:func:`~gateway.plugin_types.in_thread`),
or in a worker process (:meth:`BoundedCalls.offload`). One that does not
return within the timeout is given up on: its thread is left behind, stuck
in the kernel until the file system answers; its worker process is killed
and replaced (and left behind the same way). While a thread given up on has
not returned, the next call fails at once, the same way, instead of leaving
another thread beside it: the file system has not answered yet. Once it has
returned, calls run again. After a worker process was given up on, calls
run in threads, watched so, until the function given up on returned in time
in a thread. So one file system that hangs leaves at most one thread and one
worker process behind, however often it is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gateway.errors import TransientError
from gateway.plugin_types import Offload, in_thread

T = TypeVar("T")


class BoundedCalls:
    """Calls into one file system, each for up to ``timeout`` seconds.

    :param offload: how :meth:`offload` runs a call in a worker process
        (:attr:`~gateway.plugin_types.PluginContext.offload`).
    """

    def __init__(self, timeout: float, offload: Offload = in_thread) -> None:
        self.timeout = timeout
        self._offload = offload
        #: A call given up on, until it returns, and why it was.
        self._stuck: tuple[asyncio.Future[Any], str] | None = None
        #: The function a worker process was given up on in, until it returned in time in a thread.
        self._suspect: Callable[..., Any] | None = None

    @property
    def hung(self) -> bool:
        """Whether a call given up on has not returned yet."""
        return self._stuck is not None and not self._stuck[0].done()

    @property
    def in_doubt(self) -> bool:
        """Whether the file system may still hang: a call given up on has not returned, or
        one given up on in a worker process has not returned in time in a thread since (a
        call that works says nothing of the kind that hung)."""
        return self.hung or self._suspect is not None

    def _refuse_while_stuck(self) -> None:
        if self._stuck is not None:
            stuck, why = self._stuck
            if not stuck.done():
                raise TimeoutError(why)
            self._stuck = None

    def _why(self, doing: str) -> str:
        said = f"{doing}: " if doing else ""
        return f"{said}not done within {self.timeout:g}s (does its file system hang?)"

    async def __call__(self, fn: Callable[..., T], *args: Any, doing: str = "") -> T:
        """``fn(*args)`` in a thread.

        :param doing: what the call does, said before why it was given up on.
        :raises TimeoutError: it did not return within :attr:`timeout`, or a call given
            up on before has not returned yet (then ``fn`` is not called); the same text
            either way, so that a log says the hang once.
        """
        self._refuse_while_stuck()
        call: asyncio.Future[T] = asyncio.ensure_future(in_thread(fn, *args))
        # (not wait_for: it swallows a cancellation that comes as the call returns, and a
        # source whose stop is swallowed never stops)
        limit = asyncio.timeout(self.timeout)
        try:
            async with limit:
                result = await asyncio.shield(call)
        except TimeoutError:
            if not limit.expired():
                raise  # fn's own
            why = self._why(doing)
            self._stuck = (call, why)
            call.add_done_callback(_ignore)
            raise TimeoutError(why) from None
        except asyncio.CancelledError:
            call.add_done_callback(_ignore)
            raise
        if fn is self._suspect:
            self._suspect = None
        return result

    async def or_transient(self, fn: Callable[..., T], *args: Any, doing: str = "") -> T:
        """:meth:`__call__`, a call given up on raised as a transient error (a scan tries
        again later).

        :raises ~gateway.errors.TransientError: it did not return in time, or one given
            up on before has not returned yet.
        """
        try:
            return await self(fn, *args, doing=doing)
        except TimeoutError as exc:
            raise TransientError(str(exc)) from None

    async def offload(self, fn: Callable[..., T], *args: Any, doing: str = "") -> T:
        """``fn(*args)`` in a worker process (a module-level ``fn``, picklable arguments), or
        in a thread as :meth:`__call__` while the file system may still hang.

        :raises TimeoutError: as :meth:`__call__` (the worker is killed and replaced).
        :raises ~gateway.errors.WorkerLost: the worker died meanwhile.
        """
        if self.in_doubt:
            return await self(fn, *args, doing=doing)
        try:
            return cast(T, await self._offload(fn, *args, timeout=self.timeout))
        except TimeoutError:
            self._suspect = fn
            raise TimeoutError(self._why(doing)) from None


def _ignore(call: asyncio.Future[Any]) -> None:
    """Take the outcome of a call given up on: nobody waits for it any more."""
    if not call.cancelled():
        call.exception()
