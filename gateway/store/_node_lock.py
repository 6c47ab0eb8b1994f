"""One process per node on a database: a lock file beside it, held while the store is open.

Two processes running the same ``[gateway] node_id`` on one database (a daemon
started by systemd and one by hand) take each other for their node: the second
expires the first's leases at its start and sends again what the first is
sending, and both read the same drop folders. So ``run`` holds the node before
anything else: an exclusive ``flock`` on ``<database>.node-<id>.lock``, which the
kernel lets go when the process ends, however it ends. The file keeps the holder's
process id, for the reason a second one is given. (PostgreSQL, later: an advisory
lock on the node's name, held by the store's session.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import quote

from gateway.errors import NodeRunning


def lock_path(database: Path, node: str) -> Path:
    """The lock file of ``node`` on ``database`` (the node's name quoted for a file name)."""
    return database.with_name(f"{database.name}.node-{quote(node, safe='')}.lock")


def hold(database: Path, node: str) -> int:
    """Hold ``node`` on ``database`` for this process; the lock file's descriptor, to close
    when the store closes.

    :raises NodeRunning: another process holds it, naming its process id.
    """
    path = lock_path(database, node)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        raise NodeRunning(f"node {node!r} already runs on {database}"
                          f"{f' (process {holder})' if holder.isdigit() else ''}: stop it"
                          " first, or give this one another [gateway] node_id") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
