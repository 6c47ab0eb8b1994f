"""A polling source run until something happens, and what it logs meanwhile.

For the tests of the REST, SOAP and registry sources whose cursor folder hangs
(:func:`tests.mounts.unanswering`), each in a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from gateway.api import CursorFile
from gateway.testing import until


def messages_of(logger: str) -> list[str]:
    """The messages ``logger`` logs from now on, as they come (its handler stays: for a
    test's own process)."""
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger(logger).addHandler(handler)
    return said


async def run_until(source: Any, cursor: CursorFile, intake: Any,
                    done: Callable[[], bool], timeout: float = 1.0) -> None:
    """Run ``source`` (its ``run(intake)``) until ``done()``, its ``cursor``'s calls given
    up on after ``timeout`` seconds; then cancel it."""
    cursor.calls.timeout = timeout
    task = asyncio.create_task(source.run(intake))
    try:
        await until(done)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
