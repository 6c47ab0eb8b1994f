"""In-memory stand-ins for what the core hands to plugins (Intake, ReceiptSink).

They record every call, so a test can assert what a source or transport
submitted, quarantined or reported. ``during_*`` callbacks run while a call
is in progress, e.g. to check that a plugin has not yet removed a file.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

from gateway.contracts import RawInput
from gateway.outbound import Receipt


class StubIntake:
    """An :class:`gateway.contracts.Intake` that keeps everything in lists."""

    def __init__(
        self,
        *,
        during_submit: Callable[[Sequence[RawInput]], None] | None = None,
        during_quarantine: Callable[[RawInput, str], None] | None = None,
    ) -> None:
        self.submitted: list[RawInput] = []
        self.submit_calls: list[list[RawInput]] = []
        self.quarantined: list[tuple[RawInput, str]] = []
        self.during_submit = during_submit
        self.during_quarantine = during_quarantine
        self._next_id = 1

    def _ids(self, count: int) -> list[int]:
        ids = list(range(self._next_id, self._next_id + count))
        self._next_id += count
        return ids

    async def submit(self, raws: Sequence[RawInput], *, wait: bool = True) -> list[int]:
        """Record ``raws`` as one call; return fresh row ids."""
        if self.during_submit is not None:
            self.during_submit(raws)
        self.submit_calls.append(list(raws))
        self.submitted.extend(raws)
        return self._ids(len(raws))

    async def quarantine(self, raw: RawInput, reason: str, *, wait: bool = True) -> int:
        """Record ``raw`` with ``reason``; return a fresh row id."""
        if self.during_quarantine is not None:
            self.during_quarantine(raw, reason)
        self.quarantined.append((raw, reason))
        return self._ids(1)[0]

    @property
    def reasons(self) -> list[str]:
        """The quarantine reasons, in order."""
        return [reason for _, reason in self.quarantined]


class StubReceiptSink:
    """A :class:`gateway.outbound.ReceiptSink` that matches the refs it is told of.

    :param known: attempt refs that match a delivery; ``None`` matches all.
    """

    def __init__(
        self,
        known: Container[str] | None = None,
        *,
        during_record: Callable[[Sequence[Receipt]], None] | None = None,
    ) -> None:
        self.known = known
        self.during_record = during_record
        self.calls: list[list[Receipt]] = []

    async def record(self, receipts: Sequence[Receipt]) -> list[bool]:
        """Record ``receipts`` as one call; ``True`` for each known ref."""
        if self.during_record is not None:
            self.during_record(receipts)
        self.calls.append(list(receipts))
        return [self.known is None or r.attempt_ref in self.known for r in receipts]

    @property
    def receipts(self) -> list[Receipt]:
        """Every receipt recorded, in order."""
        return [r for call in self.calls for r in call]
