"""Storing inputs: the calls waiting for one commit batch share one operation.

Each call of :meth:`IntakeBatcher.add` would otherwise be an operation of its
own in the group commit (a savepoint, a statement per table, a journal
append). Many senders pushing one input each at once (the HTTP push source)
made the event loop pay that per input; now the inputs of all calls waiting
for the same batch are stored by one operation, as one call with many inputs
is. When that fails, each call's inputs are stored on their own, so only the
call at fault gets the error (an idempotency key reused for other bytes, say).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.contracts import RawInput
from gateway.store import _intake_ops
from gateway.store._cannot_write import unavailable
from gateway.store._writer import GroupCommitWriter
from gateway.store.journal import Entry
from gateway.store.states import MessageState

Rows = list[tuple[int, bool]]


@dataclass(eq=False, slots=True)
class _Batch:
    """The calls whose inputs one operation stores, in call order, and its answers."""

    calls: list[Sequence[RawInput]]
    answers: asyncio.Future[list[Rows | Exception]] = field(init=False)


class IntakeBatcher:
    """``add_raw`` of the store, one operation per commit batch."""

    def __init__(self, writer: GroupCommitWriter, now: Callable[[], float]) -> None:
        self._writer = writer
        self._now = now
        #: the calls waiting for the next batch, until its operation runs
        self._waiting: _Batch | None = None

    async def add(self, raws: Sequence[RawInput]) -> Rows:
        """Store ``raws`` as received; (id, is_new) of each after the commit.

        :raises KeyReuseRejected: an idempotency key came with other bytes (nothing of
            this call is stored).
        """
        batch = self._waiting
        if batch is not None and not batch.answers.done():
            index = len(batch.calls)
            batch.calls.append(raws)
        else:  # inputs in place first: the writer may run the operation within queue()
            index = 0
            batch = self._waiting = _Batch([raws])
            calls = batch.calls
            batch.answers = self._writer.queue(lambda conn: self._store(conn, calls))
        answer = (await asyncio.shield(batch.answers))[index]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _store(self, conn: sqlite3.Connection, calls: list[Sequence[RawInput]]
               ) -> tuple[list[Rows | Exception], list[Entry]]:
        """Store the inputs of ``calls``: per call its rows, or the error it caused."""
        if self._waiting is not None and self._waiting.calls is calls:
            self._waiting = None  # calls from now on wait for the next batch
        now = self._now()
        if len(calls) > 1:
            try:
                rows, entries = _saved(conn, [r for raws in calls for r in raws], now)
            except Exception:  # each call on its own, below, finds the one at fault
                pass
            else:
                out: list[Rows | Exception] = []
                for raws in calls:
                    out.append(rows[:len(raws)])
                    rows = rows[len(raws):]
                return out, entries
        answers: list[Rows | Exception] = []
        entries = []
        for raws in calls:
            try:
                rows, done = _saved(conn, raws, now)
            except Exception as exc:  # the call's own error, for its caller
                answers.append(unavailable(exc))
            else:
                answers.append(rows)
                entries += done
        return answers, entries


def _saved(conn: sqlite3.Connection, raws: Sequence[RawInput], now: float
           ) -> tuple[Rows, list[Entry]]:
    """:func:`_intake_ops.add_raw` under a savepoint: all of it, or nothing when it raises."""
    conn.execute("SAVEPOINT intake")
    try:
        result = _intake_ops.add_raw(conn, raws, MessageState.RECEIVED, None, now)
    except BaseException:
        conn.execute("ROLLBACK TO intake")
        conn.execute("RELEASE intake")
        raise
    conn.execute("RELEASE intake")
    return result
