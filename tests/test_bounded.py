"""Bounded calls into a file system (gateway.bounded); the hangs themselves, on frozen file
systems and ones that never answer (tests.mounts), are in test_sedex_transport,
test_recovery, test_way_back, test_daemon, test_retention and test_rest_source."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from gateway.bounded import BoundedCalls


async def test_a_stop_is_never_swallowed_by_a_call_that_returns_as_it_comes() -> None:
    """A reader's loop of short calls is cancelled (the daemon stops) at any moment, also as
    a call returns: it always ends. (asyncio.wait_for returned the call's result then and
    dropped the cancellation, and the stop waited for that reader for ever.)"""
    calls = BoundedCalls(5)

    async def reader() -> None:
        while True:
            await calls(time.sleep, 0)

    kept_running = 0
    for _ in range(200):
        task = asyncio.create_task(reader())
        await asyncio.sleep(random.random() / 1000)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1)
        if not done:
            kept_running += 1
            task.cancel()
    assert kept_running == 0


async def test_a_timeout_of_the_call_itself_is_not_taken_for_a_hang() -> None:
    def times_out() -> None:
        raise TimeoutError("the call's own")

    calls = BoundedCalls(5)
    with pytest.raises(TimeoutError, match="the call's own"):
        await calls(times_out)
    assert not calls.hung and not calls.in_doubt
