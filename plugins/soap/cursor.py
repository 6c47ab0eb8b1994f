"""The polling source's persisted state: the service's cursor and the ids not yet acknowledged.

Kept in a :class:`~gateway.api.CursorFile`: written durably (after a crash
the file holds the previous state or the new one, never a torn mix), each
read and write given up on after a while (the data folder may be a share that
hangs) as a :class:`~gateway.api.TransientError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gateway.api import CursorFile


@dataclass(frozen=True, slots=True)
class PollState:
    """Where the next fetch starts, and what the service still has to be told we stored."""

    cursor: str | None = None
    unacknowledged: tuple[str, ...] = field(default=())


async def load(file: CursorFile) -> PollState:
    """The state saved in ``file``; the empty state if there is none.

    :raises ValueError: the file is not such a state (it is left as it is, for the operator).
    :raises ~gateway.api.TransientError: it was not read in time.
    :raises OSError: it cannot be read.
    """
    data = await file.read()
    if data is None:
        return PollState()
    try:
        found = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file.path} is not a cursor file: {exc}") from None
    if not isinstance(found, dict):  # valid JSON, but no state: ValueError like the rest
        raise ValueError(f"{file.path} is not a cursor file: unexpected content")
    cursor, pending = found.get("cursor"), found.get("unacknowledged", [])
    if not (cursor is None or isinstance(cursor, str)) or not isinstance(pending, list):
        raise ValueError(f"{file.path} is not a cursor file: unexpected content")
    return PollState(cursor, tuple(str(i) for i in pending))


async def save(file: CursorFile, state: PollState) -> None:
    """Replace the state in ``file`` with ``state``, durably.

    :raises ~gateway.api.TransientError: it was not written in time.
    :raises OSError: it cannot be written.
    """
    data = json.dumps({"cursor": state.cursor, "unacknowledged": list(state.unacknowledged)})
    await file.write(data.encode())
