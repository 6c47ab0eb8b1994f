"""The daemon's long-running tasks: supervised (restarted after a failure), waited for
against a stop, cancelled together; and the signals that stop them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.errors import GatewayError, StoreLost
from gateway.logs import redact

log = logging.getLogger("gateway.daemon")

T = TypeVar("T")

#: Seconds before a failed task is restarted, doubling up to the maximum.
RESTART_MIN, RESTART_MAX = 1.0, 60.0


def supervise(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """A task running ``run`` under :func:`_supervised`: restarted after a failure."""
    return asyncio.create_task(_supervised(name, run), name=name)


async def _supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run`` until it returns; restart it after a failure, waiting longer each time.

    A source whose folder is briefly unreachable, or a transport loop that hits a
    bug, must not stop the daemon: what was committed stays, the rest is retried.
    """
    delay = RESTART_MIN
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except StoreLost:  # alerted once already; the daemon is stopping
            return
        except (OSError, GatewayError) as exc:  # the world, not a bug: no traceback
            log.error("%s failed: %s; restarting it in %.0fs", name, redact(str(exc)), delay)
        except Exception:
            log.exception("%s failed; restarting it in %.0fs", name, delay)
        if time.monotonic() - started > RESTART_MAX:
            delay = RESTART_MIN
        await asyncio.sleep(delay)
        delay = min(delay * 2, RESTART_MAX)


async def to_the_end(step: Awaitable[T]) -> T:
    """Await ``step``; if the caller is cancelled meanwhile, wait for ``step`` to end all the
    same, then pass the cancellation on (a second one stops the wait; ``step`` goes on).

    For what must not stop half way: a source that stored its inputs (which
    :meth:`Intake.submit <gateway.plugin_types.Intake.submit>` finishes whatever happens)
    and has yet to move their files away, or the next start takes them again as duplicates.
    What ``step`` raises after the cancellation is logged, not raised.
    """
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the caller is stopping: say it, do not raise it
                log.warning("while stopping: %s", redact(str(exc)))
        raise


async def first_done(task: asyncio.Task[Any], *cuts: Awaitable[Any],
                 timeout: float | None = None) -> None:
    """Wait until ``task`` is done, one of ``cuts`` is, or ``timeout`` seconds passed
    (``task`` goes on)."""
    waits = [asyncio.ensure_future(cut) for cut in cuts]
    try:
        await asyncio.wait([task, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it raised."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def install_signal_handlers(stop: asyncio.Event, on_second: Callable[[], None]) -> None:
    """TERM and INT set ``stop``; a second one calls ``on_second``."""
    loop = asyncio.get_running_loop()

    def handler() -> None:
        if stop.is_set():
            on_second()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)
