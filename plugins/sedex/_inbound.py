"""Reading the sedex inbox: ``envl_<X>.xml`` + ``data_<X>.<ext>`` pairs, in any arrival order.

Partners of one sedex client share its inbox. A pair is the partner's whose
``recipient_id`` is the envelope's ``senderId`` and whose ``sender_id`` is
among its ``recipientId`` values, whichever partner's transport reads it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from gateway.api import (
    ANSWERED_ATTEMPT,
    BATCH_BYTES,
    DOCUMENT_LIMIT,
    MOVED_TO,
    NOT_FROM_PARTNER,
    BoundedCalls,
    FileTaker,
    InputRejected,
    Intake,
    Listing,
    RawInput,
    Ready,
    Stored,
    TooLarge,
    TransientError,
    Unfinished,
    counted,
    display_name,
    finish,
    to_the_end,
)
from plugins.sedex.envelope import Envelope, parse_envelope
from plugins.sedex.inbox_partners import InboxPartner

log = logging.getLogger(__name__)
T = TypeVar("T")

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Why a pair without a readable envelope, or a lone half, is nobody's (``NOT_FROM_PARTNER``).
_UNKNOWN = "its sender is not known"


@dataclass(slots=True)
class _Pair:
    envelope: Ready | None = None
    data: Ready | None = None
    #: a file of this pair is there but not ready yet
    pending: bool = False


def _key(name: str) -> str | None:
    """The middle part of an ``envl_``/``data_`` name, or ``None`` for another name."""
    if name.startswith("envl_") and name.endswith(".xml"):
        return name[5:-4]
    if name.startswith("data_"):
        return name[5:].rpartition(".")[0] or name[5:]
    return None


def _pairs(listing: Listing) -> dict[str, _Pair]:
    """Group the ready files of the inbox by their middle part; note pending halves."""
    pairs: dict[str, _Pair] = {}
    for ready in listing.ready:
        key = _key(ready.name)
        if key is None:
            continue
        pair = pairs.setdefault(key, _Pair())
        if ready.name.startswith("envl_"):
            pair.envelope = ready
        elif pair.data is None or ready.name < pair.data.name:  # stable choice among duplicates
            pair.data = ready
    for name in listing.pending:
        key = _key(name)
        if key is not None:
            pairs.setdefault(key, _Pair()).pending = True
    return pairs


@dataclass(frozen=True, slots=True)
class _Taken:
    """A pair or lone half read: its input, the files it came from, why it is refused (if
    it is), and where its files go once it is stored."""

    raw: RawInput
    stored: list[Stored]
    reason: str | None
    dest: Path

    @property
    def input(self) -> RawInput:
        """:attr:`raw` as stored: with the folder its files go to (``meta[MOVED_TO]``)."""
        return replace(self.raw, meta={**self.raw.meta, MOVED_TO: str(self.dest)})


#: What reading a pair or lone half gave: ``None`` to wait for it, an ``OSError`` if it
#: could not be read.
_Read = _Taken | OSError | None


class InboxScanner:
    """The inbox of ``partners`` (:func:`inbox_partners`); stored pairs and lone files go to
    ``processed``.

    Files are taken once settled and finished (see :class:`~gateway.api.FileTaker`).
    A pair whose envelope is unreadable, or whose payload is unfinished or
    larger than ``max_bytes``, is quarantined and moved to ``processed/rejected``
    (of a payload over the limit the store keeps the first ``max_kept``
    bytes, and it is never read whole). A lone half waits ``pair_grace`` for
    the other. Each input names the folder its files go to (``meta[MOVED_TO]``).

    A pair is stored under the name of the partner it comes from (see
    :meth:`attribute`). One addressed to none of our participant ids, or that two
    partners could claim, is quarantined. One that no enabled partner claims
    (another sender: a registry sending its eCH-0020 events over sedex) is
    stored under the name of the inbox's first enabled partner, with
    ``meta[NOT_FROM_PARTNER]`` saying why: it is decided by the rules like
    registry input, and an eCH-0223 message among them is quarantined, never
    taken as that partner's (:mod:`gateway.inbound`). Broken pairs and lone
    halves, whose sender is not known, are quarantined under that name too. A pair
    quarantined here, and a lone half, carries ``meta[NOT_FROM_PARTNER]`` as well:
    replayed, it is not taken as the partner's (``messages resubmit`` is the operator's
    word that it is).

    The inbox and ``processed`` are often a network share, which may hang: every
    call into them (listing, reading a batch of pairs, moving them) runs in a
    thread, given up on after ``timeout`` seconds
    (:class:`~gateway.api.BoundedCalls`), and the scan with it
    (:class:`~gateway.api.TransientError`); while that thread has not returned,
    scans fail at once. A pair is stored before it is moved: one whose move was
    given up on is not taken again until restart (and then it is a duplicate).
    A pair that cannot be read (an ``OSError``) is left there, with a warning; the
    others of its batch go on.
    """

    def __init__(self, folder: Path, processed: Path, *, partners: Sequence[InboxPartner],
                 max_bytes: int, max_kept: int, settle: float, grace: float,
                 pair_grace: float, limit: int, timeout: float) -> None:
        self.folder = folder
        self.processed = processed
        #: Where refused pairs go once quarantined.
        self.rejected = processed / "rejected"
        self.partners = [p for p in partners if p.enabled]
        self.disabled = [p for p in partners if not p.enabled]
        #: The name of what no partner claims: the inbox's first enabled partner.
        self.source = self.partners[0].name
        self.max_bytes = max_bytes
        self.max_kept = max_kept
        self.pair_grace = pair_grace
        self.limit = limit
        #: bytes of payloads gathered before they are stored
        self.batch_bytes = BATCH_BYTES
        #: seconds one call reads pairs before it leaves the rest to the next call: a share
        #: that is slow but answers is not given up on for the size of a batch
        self.read_for = timeout / 2
        self.taker = FileTaker(folder, ("envl_*.xml", "data_*"), settle, grace)
        #: Calls into the inbox and ``processed``, each in a thread, bounded.
        self.calls = BoundedCalls(timeout)

    def _meta(self, **extra: str) -> dict[str, str]:
        return {"transport": "sedex", **extra}

    def attribute(self, env: Envelope) -> tuple[str, str | None, str | None]:
        """Whose pair ``env`` announces: the source to store it under, why it is refused
        (quarantined) and why it is no partner's (``None`` for both: it is the source's)."""
        sender, to = env.sender_id, ", ".join(env.recipient_ids)
        ours = sorted({p.our_id for p in self.partners})
        senders = [p.name for p in self.partners if p.sedex_id == sender]
        if set(ours).isdisjoint(env.recipient_ids):
            return (senders[0] if len(senders) == 1 else self.source,
                    f"sedex pair from senderId {sender} addressed to recipientId {to}, none of"
                    f" our participant ids ({', '.join(ours)})", None)
        claims = [p.name for p in self.partners
                  if p.sedex_id == sender and p.our_id in env.recipient_ids]
        if len(claims) == 1:
            return claims[0], None, None
        if claims:
            return self.source, (f"sedex pair from senderId {sender} to recipientId {to} could"
                                 f" be partner {' or '.join(map(repr, claims))}'s"), None
        off = [p.name for p in self.disabled if p.sedex_id == sender]
        if senders:
            why = (f"sedex senderId {sender} is partner {senders[0]!r}'s, but it wrote to"
                   f" recipientId {to}, not to that partner's sender_id")
        elif off:
            why = f"sedex senderId {sender} is partner {off[0]!r}'s, which is disabled"
        elif sender in ours:
            why = f"sedex senderId {sender} is our own participant id (an echo message)"
        else:
            known = ", ".join(f"{p.name} {p.sedex_id}" for p in self.partners)
            why = (f"sedex senderId {sender} is the recipient_id of no partner reading this"
                   f" inbox ({known})")
        return self.source, None, why

    def _envelope(self, envl: Ready) -> tuple[Envelope | str, Stored] | None:
        """The parsed envelope or why it is bad, and its file; ``None`` to wait for it."""
        got = self.taker.read(envl, self.max_bytes)
        if got is None:
            return None
        if isinstance(got, TooLarge):
            kept = self.taker.evidence(envl, 0)
            return None if kept is None else (
                f"bad sedex envelope: larger than {DOCUMENT_LIMIT} ({self.max_bytes} bytes)",
                kept[1])
        if isinstance(got, Unfinished):
            return f"bad sedex envelope: {got.reason}", got.stored
        try:
            return parse_envelope(got.data, max_bytes=self.max_bytes), got.stored
        except InputRejected as exc:
            return f"bad sedex envelope: {exc}", got.stored

    def _read_pair(self, key: str, envl: Ready, data: Ready) -> _Taken | None:
        """The input of a settled pair and why it is refused, or ``None`` to wait."""
        env = self._envelope(envl)
        if env is None:
            return None
        parsed, env_stored = env
        got = self.taker.read(data, self.max_bytes)
        meta = self._meta(payload_name=data.shown, envelope_name=envl.shown)
        ref = display_name(key)
        if got is None:
            return None
        source, refused, unclaimed = ((self.source, parsed, f"{_UNKNOWN}: {parsed}")
                                      if isinstance(parsed, str) else self.attribute(parsed))
        not_theirs = unclaimed or refused
        if not_theirs:  # nor is it when replayed: the way back takes the partner's word only
            meta[NOT_FROM_PARTNER] = not_theirs
        if isinstance(got, TooLarge):
            kept = self.taker.evidence(data, self.max_kept)
            if kept is None:
                return None
            evidence, stored = kept
            reason = (f"payload of {evidence.size} bytes is larger than {self.max_bytes} bytes"
                      f" ([limits] max_document_bytes){evidence.note()}")
            return _Taken(RawInput(source, ref, evidence.data, {**meta, **evidence.meta()}),
                          [stored, env_stored], reason, self.rejected)
        stored_pair = [got.stored, env_stored]
        if isinstance(parsed, str):
            return _Taken(RawInput(source, ref, got.data, meta), stored_pair, parsed,
                          self.rejected)
        if isinstance(got, Unfinished):
            return _Taken(RawInput(source, ref, got.data, meta), stored_pair,
                          f"sedex payload: {got.reason}", self.rejected)
        meta.update(
            sedex_message_id=parsed.message_id,
            sender_id=parsed.sender_id,
            message_type=str(parsed.message_type),
            message_class=str(parsed.message_class),
            content_type="application/zip" if got.data.startswith(_ZIP_MAGIC) else "application/xml",
        )
        if parsed.reference_message_id is not None:
            meta[ANSWERED_ATTEMPT] = parsed.reference_message_id
        return _Taken(RawInput(source, ref, got.data, meta), stored_pair, refused,
                      self.processed if refused is None else self.rejected)

    def _read_lone(self, key: str, lone: Ready, reason: str) -> _Taken | None:
        """A lone half to quarantine (too large: evidence only); ``None`` if it is not ready."""
        got = self.taker.read(lone, self.max_bytes)
        meta = self._meta(file_name=lone.shown)
        if not lone.name.startswith("envl_"):  # a payload: nor the partner's when replayed
            meta[NOT_FROM_PARTNER] = f"{_UNKNOWN}: {reason}"
        if got is None:
            return None
        if isinstance(got, TooLarge):
            kept = self.taker.evidence(lone, self.max_kept)
            if kept is None:
                return None
            evidence, stored = kept
            data, reason = evidence.data, f"{reason} (too large){evidence.note()}"
            meta.update(evidence.meta())
        else:
            data, stored = got.data, got.stored
        return _Taken(RawInput(self.source, display_name(key), data, meta), [stored], reason,
                      self.processed)

    async def _io(self, doing: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread, for up to ``timeout`` seconds
        (:meth:`~gateway.api.BoundedCalls.or_transient`)."""
        return await self.calls.or_transient(fn, *args, doing=doing)

    async def _finish(self, groups: list[tuple[list[Stored], Path]]) -> None:
        """Move stored files away; ones whose move was given up on are not taken again."""
        if not groups:
            return
        files = [os.path.basename(s.path) for stored, _ in groups for s in stored]
        folders = " and ".join(sorted({str(dest) for _, dest in groups}))
        try:
            lefts = await self._io(f"moving {counted(len(files), 'file')} into {folders}",
                                   finish, groups)
        except TransientError:
            self.taker.skip.update(files)  # stored: they may be moved yet, or not at all
            raise
        for message in self.taker.left(lefts):
            log.warning("sedex inbox: %s", message)

    def _due(self, listing: Listing) -> list[tuple[str, _Pair]]:
        """The pairs to read, in name order: complete ones, and lone halves whose other half
        did not come within ``pair_grace`` (and is not on its way)."""
        pairs = _pairs(listing)
        due = []
        for key in sorted(pairs):
            pair = pairs[key]
            if pair.envelope is not None and pair.data is not None:
                due.append((key, pair))
            elif not pair.pending:
                lone = pair.envelope or pair.data
                if lone is not None and lone.stable >= self.pair_grace:
                    due.append((key, pair))
        return due

    def _read_one(self, key: str, pair: _Pair) -> _Taken | None:
        """A complete pair (:meth:`_read_pair`) or a lone half (:meth:`_read_lone`)."""
        if pair.envelope is not None and pair.data is not None:
            return self._read_pair(key, pair.envelope, pair.data)
        if pair.envelope is not None:
            return self._read_lone(key, pair.envelope, "envelope without payload")
        assert pair.data is not None
        return self._read_lone(key, pair.data, "payload without envelope")

    def _read_some(self, due: list[tuple[str, _Pair]], start: int, room: int
                   ) -> tuple[list[tuple[str, _Read]], int]:
        """Read ``due`` from ``start`` on until ``room`` are taken, :attr:`batch_bytes` are
        gathered or :attr:`read_for` seconds have passed (at least one is read); what each
        read gave, and where to go on.

        Runs in a thread: one per batch, not per pair."""
        reads: list[tuple[str, _Read]] = []
        taken = gathered = 0
        until = time.monotonic() + self.read_for
        index = start
        while (index < len(due) and taken < room and gathered < self.batch_bytes
               and (index == start or time.monotonic() < until)):
            key, pair = due[index]
            index += 1
            try:
                got: _Read = self._read_one(key, pair)
            except OSError as exc:  # this pair is left where it is; the others go on
                got = exc
            if isinstance(got, _Taken):
                taken += 1
                gathered += len(got.raw.data)
            reads.append((key, got))
        return reads, index

    async def scan(self, intake: Intake) -> int:
        """Handle up to ``limit`` pairs or lone files; return how many.

        They are read in one call into the inbox per :attr:`batch_bytes` gathered
        (:meth:`_read_some`: a thread per call, not per pair), then stored (the good
        pairs together, the refused ones and lone halves quarantined), then moved
        in one call.

        :raises TransientError: the inbox or ``processed`` did not answer within ``timeout``.
        """
        listing = await self._io(f"listing {self.folder}", self.taker.scan)
        for note in listing.notes:
            log.warning("sedex inbox: %s", note)
        due = self._due(listing)
        handled = start = 0
        while start < len(due) and handled < self.limit:
            reads, start = await self._io(
                f"reading {counted(len(due) - start, 'pair or lone file', 'pairs or lone files')}"
                f" in {self.folder}", self._read_some, due, start, self.limit - handled)
            handled += await self._take(intake, reads)
        return handled

    async def _take(self, intake: Intake, reads: list[tuple[str, _Read]]) -> int:
        """Store what ``reads`` gave, then move it away; how many pairs or lone files it was.

        The good pairs are stored first, in one call, then the refused ones
        quarantined: a stop while the good ones wait for room in the processing
        queue leaves no quarantined pair behind in the inbox, to be quarantined
        again."""
        good: list[_Taken] = []
        refused: list[_Taken] = []
        for key, got in reads:
            if isinstance(got, OSError):
                log.warning("cannot read sedex inbox file(s) %s: %s",
                            display_name(str(self.folder / key)), got)
            elif got is not None:
                (good if got.reason is None else refused).append(got)
        async def store_then_move() -> None:
            if good:
                await intake.submit([taken.input for taken in good])
                log.debug("sedex inbox %s: stored %d message(s)", self.folder, len(good))
            for taken in refused:
                assert taken.reason is not None
                await intake.quarantine(taken.input, taken.reason)
            await self._finish([(taken.stored, taken.dest) for taken in good + refused])

        # to the end even if the source is stopped meanwhile (the drain): pairs stored but
        # left in the inbox would be taken again at the next start, as duplicates
        await to_the_end(store_then_move())
        return len(good) + len(refused)
