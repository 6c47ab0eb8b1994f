"""The polling source's persisted state: the service's cursor and the ids not yet acknowledged.

Written with :func:`~gateway.api.replace_durably`: after a crash the file holds
the previous state or the new one, never a torn mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.api import replace_durably


@dataclass(frozen=True, slots=True)
class PollState:
    """Where the next fetch starts, and what the service still has to be told we stored."""

    cursor: str | None = None
    unacknowledged: tuple[str, ...] = field(default=())


def load(path: Path) -> PollState:
    """The state saved at ``path``; the empty state if there is none.

    :raises ValueError: the file is not such a state (it is left as it is, for the operator).
    """
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return PollState()
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a cursor file: {exc}") from None
    if not isinstance(data, dict):  # valid JSON, but no state: ValueError like the rest
        raise ValueError(f"{path} is not a cursor file: unexpected content")
    cursor, pending = data.get("cursor"), data.get("unacknowledged", [])
    if not (cursor is None or isinstance(cursor, str)) or not isinstance(pending, list):
        raise ValueError(f"{path} is not a cursor file: unexpected content")
    return PollState(cursor, tuple(str(i) for i in pending))


def save(path: Path, state: PollState) -> None:
    """Replace the state at ``path`` with ``state``, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"cursor": state.cursor, "unacknowledged": list(state.unacknowledged)})
    replace_durably(path, data.encode(), 0o600)
