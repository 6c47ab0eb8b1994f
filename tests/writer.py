"""A writer as real ones write: under the final name, in chunks, with pauses; run as a process.

    python tests/writer.py PAUSE CHUNKS DEST=SOURCE [DEST=SOURCE ...]

writes each SOURCE file's bytes to DEST (created in place, no temporary
name) in CHUNKS pieces, sleeping PAUSE seconds between pieces; all files
advance together, piece by piece. A DEST given twice is rewritten from
the start (truncated) with its second SOURCE after the first is complete.
"""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str]) -> None:
    """Write the files as the module docstring says."""
    pause, chunks = float(argv[0]), int(argv[1])
    rounds: list[list[tuple[str, bytes]]] = [[]]
    for pair in argv[2:]:
        dest, _, source = pair.partition("=")
        with open(source, "rb") as f:
            data = f.read()
        target = next((r for r in rounds if all(d != dest for d, _ in r)), None)
        if target is None:
            target = []
            rounds.append(target)
        target.append((dest, data))
    for files in rounds:
        fds = [(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), data)
               for dest, data in files]
        for n in range(chunks):
            for fd, data in fds:
                step = -(-len(data) // chunks)
                os.write(fd, data[n * step:(n + 1) * step])
            time.sleep(pause)
        for fd, _ in fds:
            os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1:])
