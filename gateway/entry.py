"""The ``ech-gateway`` console script and ``python -m gateway``: a TERM while loading is kept.

Importing the command line takes about a second (lxml, zeep, aiohttp, the
plugins), longer on a loaded machine. A TERM arriving then (``systemctl stop``
right after a start) ended the process by the default action: exit 143, no
orderly stop. :func:`main` records TERM and INT before it imports anything
else (:mod:`gateway.early_signals`); the command then takes them over.
"""

from __future__ import annotations

from gateway import early_signals


def main() -> int:
    """Record TERM and INT, then load and run the command line; its exit code."""
    early_signals.install()
    from gateway.cli import main as run_command_line  # here: after the handlers

    return run_command_line()
