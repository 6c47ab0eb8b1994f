"""The ``ech-gateway`` console script and ``python -m gateway``: a TERM while loading is kept.

Importing the command line takes about a second (lxml, zeep, aiohttp, the
plugins), longer on a loaded machine. A TERM arriving then (``systemctl stop``
right after a start) ended the process by the default action: exit 143, no
orderly stop. :func:`main` records TERM and INT before it imports anything
else; the command then takes them over: ``run`` stops at once and cleanly
(:func:`take`), every other command is ended by them as before (:func:`release`).
"""

from __future__ import annotations

import signal
from types import FrameType

#: Signals received before the command took TERM and INT over, in order.
_received: list[int] = []


def _record(number: int, _frame: FrameType | None) -> None:
    _received.append(number)


def main() -> int:
    """Record TERM and INT, then load and run the command line; its exit code."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _record)
    from gateway.cli import main as run_command_line  # here: after the handlers

    return run_command_line()


def take() -> list[int]:
    """The signals recorded so far, forgotten here (``run``: call it once its own handlers
    are installed, so that none falls between)."""
    taken = _received[:]
    del _received[:len(taken)]
    return taken


def release() -> None:
    """Give TERM and INT their default actions back, then deliver any recorded meanwhile
    (TERM ends the process, INT raises :class:`KeyboardInterrupt`).

    Nothing is done when :func:`main` did not install the recorder (the command line
    run in-process, by tests or a plugin).
    """
    if signal.getsignal(signal.SIGTERM) is not _record:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in take():
        signal.raise_signal(number)
