"""Synchronous looks at a folder that may hang (a share whose server is gone), each given up on.

Checking the configuration (at ``run``, ``check-config`` and every command
that loads it) looks at the folders it names: where they lead
(:func:`resolved`: ``same_folder``, an archive folder holding the database),
whether they exist and can be written in. A folder on a share that does not
answer would hold that up for as long as the share: each look runs in a
thread of its own, waited for :data:`ANSWER_TIMEOUT` seconds, then given up
on with :class:`~gateway.errors.FolderHang` (a problem of the key that names
the folder; its thread is left behind, and holds up no exit). While a look
given up on has not returned, the next into that folder, or one below it,
fails at once the same way: one share that is down costs the timeout once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import FolderHang

T = TypeVar("T")

#: Seconds a folder may take to answer one look before it is taken for hung.
ANSWER_TIMEOUT = 10.0

#: The folders a look was given up on, each with the event its thread sets on returning.
_stuck: dict[Path, threading.Event] = {}
_lock = threading.Lock()


def answered(folder: Path, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
    """``fn(*args)``, a look into ``folder``, in a thread of its own, for up to ``timeout``
    seconds (:data:`ANSWER_TIMEOUT` if not given).

    :raises ~gateway.errors.FolderHang: it did not return in time, or a look into
        ``folder`` (or a folder above it) given up on before has not returned yet (then
        ``fn`` is not called).
    """
    timeout = ANSWER_TIMEOUT if timeout is None else timeout
    with _lock:
        for stuck, returned in list(_stuck.items()):
            if returned.is_set():
                del _stuck[stuck]
            elif stuck == folder or stuck in folder.parents:
                raise FolderHang(stuck, timeout)
    outcome: list[Any] = []
    returned = threading.Event()

    def look() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # the caller's, whatever it is
            outcome.append((False, exc))
        returned.set()

    threading.Thread(target=look, daemon=True, name=f"look into {folder}").start()
    if not returned.wait(timeout):
        with _lock:
            _stuck[folder] = returned
        raise FolderHang(folder, timeout)
    [(ok, value)] = outcome
    if not ok:
        raise value
    return value


def resolved(path: Path) -> Path:
    """``path`` absolute, ``..`` and symbolic links resolved (:meth:`Path.resolve`), by a
    look given up on after :data:`ANSWER_TIMEOUT`.

    :raises ~gateway.errors.FolderHang: ``path`` did not answer in time.
    """
    return answered(path, path.resolve)
