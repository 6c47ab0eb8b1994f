"""The one way the command line writes: text line by line, each line kept on its line.

What the commands print quotes what came from outside: file names from drop folders and
sedex envelopes, envelope fields, reasons quoting input, a canton's comments. A line break
or an escape sequence in one would break a table, forge the next line or drive the
operator's terminal. Every line written by :func:`say` passes :func:`gateway.logs.one_line`
(control characters as escapes: ``\\n``, ``\\r``, ``\\x1b``): the command line's own line
breaks are the boundaries between the lines it hands over. JSON (:func:`exact`) is
written as it is: it escapes control characters itself.

Nothing else in ``gateway.cli`` prints (ruff's T201 says so).
"""

from __future__ import annotations

import sys
from typing import TextIO

from gateway.logs import one_line


def say(*lines: object, file: TextIO | None = None) -> None:
    """Write each of ``lines`` as one line (on stdout, or ``file``), its control characters
    escaped."""
    stream = file if file is not None else sys.stdout
    for line in lines:
        stream.write(one_line(str(line)) + "\n")


def exact(text: str) -> None:
    """Write ``text`` (JSON) on stdout as it is."""
    print(text)
