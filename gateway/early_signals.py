"""TERM and INT received while the command line loads, kept for the command.

:func:`install` records them (the console entry point, :mod:`gateway.entry`, calls
it before it imports anything heavy); the command then takes them over: ``run``
stops at once and cleanly (:func:`take`), every other command is ended by them
as before (:func:`release`).
"""

from __future__ import annotations

import signal
from types import FrameType

#: Signals received before the command took TERM and INT over, in order.
_received: list[int] = []


def _record(number: int, _frame: FrameType | None) -> None:
    _received.append(number)


def install() -> None:
    """Record TERM and INT from now on, until the command takes them over."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _record)


def take() -> list[int]:
    """The signals recorded so far, forgotten here (``run``: call it once its own handlers
    are installed, so that none falls between)."""
    taken = _received[:]
    del _received[:len(taken)]
    return taken


def release() -> None:
    """Give TERM and INT their default actions back, then deliver any recorded meanwhile
    (TERM ends the process, INT raises :class:`KeyboardInterrupt`).

    Nothing is done when :func:`install` was not called (the command line
    run in-process, by tests or a plugin).
    """
    if signal.getsignal(signal.SIGTERM) is not _record:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in take():
        signal.raise_signal(number)
