"""A dependency-free ``sd_notify``: tell systemd we are ready, alive or stopping.

The unit is ``Type=notify``: systemd counts the daemon started at ``READY=1``, which
comes once the inputs stored before the last stop are processed again. A large
backlog takes longer than the unit's ``TimeoutStartSec`` (90 s by default), after
which systemd would kill the daemon mid-start, and ``Restart=on-failure`` would
start it again into the same backlog: :func:`extend_start` asks for more time
while the start goes on (``EXTEND_TIMEOUT_USEC``, systemd 236 and later), saying
what it does (``STATUS``, shown by ``systemctl status``).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

#: How often a start still under way asks systemd for more time, in seconds.
EXTEND_EVERY = 10.0
#: How much more time each asks for, in intervals: a busy event loop may send one late.
EXTEND_MARGIN = 3


def notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``) to systemd, if it listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # a listener that does not read (its queue full) holds up nothing
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd set (``WATCHDOG_USEC``), in seconds."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


async def extend_start(doing: Callable[[], str], every: float = EXTEND_EVERY) -> None:
    """Until cancelled, every ``every`` seconds: tell systemd the start goes on, for at most
    :data:`EXTEND_MARGIN` times ``every`` more without a word (``EXTEND_TIMEOUT_USEC``), and
    what it does now, ``doing()`` (``STATUS``). Nothing, without systemd."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    while True:
        notify(f"EXTEND_TIMEOUT_USEC={round(every * EXTEND_MARGIN * 1_000_000)}\n"
               f"STATUS={doing()}")
        await asyncio.sleep(every)
