"""Calls into a file system that may hang (a network share), each given up on after a while.

A call runs in a thread of its own (:func:`~gateway.api.in_thread`). One
that does not return within the timeout is given up on and its thread left
behind, stuck in the kernel until the file system answers. While it is,
the next call fails at once, the same way, instead of leaving another thread
beside it: the file system has not answered yet. Once the stuck call has
returned, calls run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.api import in_thread

T = TypeVar("T")


class BoundedCalls:
    """Calls into one file system, each for up to ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: A call given up on, until it returns, and why it was.
        self._stuck: tuple[asyncio.Future[Any], str] | None = None

    @property
    def hung(self) -> bool:
        """Whether a call given up on has not returned yet."""
        return self._stuck is not None and not self._stuck[0].done()

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread.

        :raises TimeoutError: it did not return within :attr:`timeout`, or a call given
            up on before has not returned yet (then ``fn`` is not called); the same text
            either way, so that a log says the hang once.
        """
        if self._stuck is not None:
            stuck, why = self._stuck
            if not stuck.done():
                raise TimeoutError(why)
            self._stuck = None
        call: asyncio.Future[T] = asyncio.ensure_future(in_thread(fn, *args))
        try:
            return await asyncio.wait_for(asyncio.shield(call), self.timeout)
        except TimeoutError:
            why = f"not done within {self.timeout:g}s (does its file system hang?)"
            self._stuck = (call, why)
            call.add_done_callback(_ignore)
            raise TimeoutError(why) from None


def _ignore(call: asyncio.Future[Any]) -> None:
    """Take the outcome of a call given up on: nobody waits for it any more."""
    if not call.cancelled():
        call.exception()
