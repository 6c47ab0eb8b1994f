"""The way back: a partner's eCH-0223 message goes to the resident's registry.

A message the canton sends (over its transport, or a source whose
``partner`` names it) is not decided by the rules, which only ever send to
partners. Instead, in the daemon's event loop, where the store and the
plugins' registry look-ups are at hand:

1. it must be the partner's (not marked ``meta[NOT_FROM_PARTNER]`` by its
   transport: a sedex pair from another sender) and valid eCH-0223 1.5 (older
   versions were upgraded when normalised), else it is quarantined with the reason;
2. its person is found, in this order: without a VN, the person of the message it
   answers (step 4), where its names and date of birth agree; by VN, by local
   person id, by official name + first name + date of birth in the gateway's
   person state (names compared as :mod:`gateway.names` says: case, marks such
   as ``ć``, ``ü`` written ``ue``, spaces and hyphens aside); then by
   the registry plugins (``gateway_person_resolve``). Nobody, or more than one,
   and it waits in ``needs_review`` with the candidates until an operator
   assigns it (``messages assign``), which sends it through this path again;
3. it is routed to the registry (a partner with ``role = "registry"``) as a
   delivery of its own, in the registry's eCH-0223 version, with the retries,
   dead letters and replay of any other;
4. when recorded, it joins its case (:mod:`gateway.store._inbound_ops`), and a
   negative ``eventReport`` rejects the delivery it answers, to that partner only.
   What it answers is its header's ``referenceMessageId``; where that names none,
   the message of our attempt its transport's envelope names (``ANSWERED_ATTEMPT``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import pluggy

from gateway import manual
from gateway.assembly import partner_of, registries
from gateway.contracts import ANSWERED_ATTEMPT, NOT_FROM_PARTNER, Decision, Normalised, RawInput, Route
from gateway.convert import CANONICAL
from gateway.ech0223 import EventReport, PersonIdentificationLight, read_message
from gateway.errors import ConversionRefused, InputRejected
from gateway.person_hooks import at_once, candidates, look_up
from gateway.person_state import PersonState, birth_text, person_keys
from gateway.store import Inbound, MessageState, Processed, Store
from gateway.vn import mask_vn
from gateway.xml.problem_text import SHOWN, problems_text

if TYPE_CHECKING:
    from gateway.processor import Processor

#: The rule the journal names for a message on its way back.
RULE = "the way back"
#: How a message was matched to the person of the message it answers (journaled as
#: ``matched``, and ``how`` in the reason).
ANSWERED = "the message it answers (names and date of birth)"

Item = tuple[int, RawInput, Normalised]


@dataclasses.dataclass(slots=True)
class Match:
    """Who a message is about: ``how`` they were found and the candidates (one: matched).

    :param new: the candidates came from the registry, not from the gateway's state.
    :param unsearched: the registry plugins that could not be asked (failed, or late).
    """

    how: str | None
    candidates: list[PersonState]
    ids: list[int | None]
    new: bool = False
    note: str = ""
    unsearched: list[str] = dataclasses.field(default_factory=list)


class WayBack:
    """Takes the partners' messages out of a batch and finishes them (the steps above)."""

    def __init__(self, store: Store, pm: pluggy.PluginManager, proc: Processor) -> None:
        self._store = store
        self._pm = pm
        self._proc = proc
        self.settings = proc.settings

    def take(self, items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
        """``items`` split in two: those the rules decide, and the partners' eCH-0223 messages."""
        rest: list[Item] = []
        back: list[Item] = []
        for item in items:
            _mid, raw, n = item
            ours = (n.facts.get("format") == "eCH-0223" and raw.source != manual.SOURCE
                    and not n.parts and partner_of(self.settings, raw.source) is not None)
            (back if ours else rest).append(item)
        return rest, back

    async def process(self, items: Sequence[Item]) -> list[Processed]:
        """The outcome of each partner's message, in their order. The messages are finished
        at once, ``[gateway] person_lookup_concurrency`` at a time (as stage *enrich* asks
        about its persons: :func:`~gateway.person_hooks.at_once`), so that those whose
        resident the registry is searched for do not wait for each other."""
        if not items:
            return []
        assigned = await self._store.assignments([mid for mid, _raw, _n in items])

        async def outcome(mid: int, raw: RawInput, n: Normalised) -> Processed:
            try:
                return await self._one(mid, raw, n, assigned.get(mid))
            except InputRejected as exc:
                return Processed(mid, MessageState.QUARANTINED, str(exc),
                                 message_id=n.message_id, sender_id=n.sender_id)

        return await at_once(self.settings, [partial(outcome, *item) for item in items])

    async def _one(self, mid: int, raw: RawInput, n: Normalised,
                   assigned: list[str] | None) -> Processed:
        partner = partner_of(self.settings, raw.source)
        assert partner is not None
        stranger = raw.meta.get(NOT_FROM_PARTNER)
        if stranger:  # on the partner's way, from someone else: not the partner's word
            return Processed(mid, MessageState.QUARANTINED,
                             f"eCH-0223 not from partner {partner!r}: {stranger}",
                             message_id=n.message_id, sender_id=n.sender_id)
        xml = n.xml or raw.data
        n = self._proc.parsed(dataclasses.replace(n, xml=xml))  # one parse, for both uses
        problems = self._proc.problems(n)
        n = dataclasses.replace(n, problems=problems)  # validated: not again for the registry
        # what the normaliser noticed (a file its documents name that the zip lacks): journaled
        noticed: dict[str, Any] = {"warnings": list(n.warnings)} if n.warnings else {}
        if problems:
            told = problems_text(problems, CANONICAL)
            if told != "; ".join(problems[:SHOWN]):  # the schema's own words: in the journal
                noticed["schema"] = list(problems[:SHOWN])
            return Processed(mid, MessageState.QUARANTINED,
                             f"invalid eCH-0223 from partner {partner!r}: {told}", detail=noticed,
                             message_id=n.message_id, sender_id=n.sender_id)
        assert n.tree is not None
        message = read_message(n.tree.getroot())
        ident = (message.response.person_identification if isinstance(message, EventReport)
                 else message.content.person_identification)
        if isinstance(message, EventReport):  # why the partner refuses: for the rejection
            noticed["reasons"] = [f"{r.reason_code_number} {r.reason_code_text}"
                                  for r in message.response.reason]
        header = message.header
        reference, noticed = await self._reference(partner, header.reference_message_id,
                                                   raw, noticed)
        n = dataclasses.replace(n, reference_message_id=reference)
        inbound = Inbound(partner, reference_message_id=reference,
                          business_process_id=header.business_process_id,
                          our_reference=header.your_business_reference_id,
                          their_reference=header.our_business_reference_id,
                          recipients=tuple(header.recipient_id))
        light = dataclasses.replace(n, tree=None, xml=b"" if xml == raw.data else xml)
        base: dict[str, Any] = {"normalised": light, "raw_is_canonical": xml == raw.data}
        if not registries(self.settings):
            return Processed(mid, MessageState.NOT_RELEVANT,
                             f"inbound from partner {partner!r}: no registry to deliver it to"
                             " (configure a partner with role = \"registry\")",
                             inbound=inbound, detail={"partner": partner, **noticed}, **base)
        senders = {header.sender_id, *header.recipient_id}
        match = await (self._assigned(assigned, mid) if assigned is not None
                       else self._resolve(ident, partner, reference, senders, mid))
        candidates = tuple(_candidate(s, pid) for s, pid in zip(match.candidates, match.ids,
                                                                 strict=True))
        if len(match.candidates) != 1:
            why = (match.note or "no resident matches the person of this message"
                   if not match.candidates else
                   f"{len(match.candidates)} residents match the person of this message"
                   f" (by {match.how})")
            again = (f"`ech-gateway messages replay {mid}` searches again once it answers,"
                     " or " if match.unsearched and not match.candidates else "")
            if match.unsearched:
                noticed["unsearched"] = match.unsearched
            return Processed(mid, MessageState.NEEDS_REVIEW,
                             f"{why}: {again}assign one with `ech-gateway messages assign {mid}"
                             " --person VN|LOCALID`",
                             inbound=dataclasses.replace(inbound, candidates=candidates),
                             detail={"partner": partner, **noticed}, **base)
        person = match.candidates[0]
        registry, why = await self._registry_for(partner, reference, senders, person)
        if registry is None:
            return Processed(mid, MessageState.NEEDS_REVIEW, why,
                             inbound=dataclasses.replace(inbound, candidates=candidates),
                             detail={"partner": partner, **noticed}, **base)
        reason = f"from partner {partner}, about a resident found by {match.how}: to {why}"
        decision = Decision(RULE, reason, (registry,))
        detail: dict[str, Any] = {"partner": partner, "matched": match.how, **noticed}
        try:  # in the registry's own eCH-0223 version
            payloads = self._proc.payloads(n, decision)
        except (InputRejected, ConversionRefused) as exc:
            return Processed(mid, MessageState.QUARANTINED, f"for registry {registry!r}: {exc}",
                             decision=decision, inbound=inbound, detail=detail, **base)
        if payloads.warnings:
            detail["warnings"] = [*noticed.get("warnings", ()), *payloads.warnings]
        base["normalised"] = dataclasses.replace(light, subject=tuple(person.keys()))
        return Processed(mid, MessageState.ROUTED, None, routes=[Route(registry, reason)],
                         decision=decision, payloads=payloads.by_partner,
                         persons=(person,) if match.new else (),
                         inbound=dataclasses.replace(inbound, matched=match.how),
                         detail=detail, **base)

    async def _reference(self, partner: str, header: str | None, raw: RawInput,
                         noticed: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """The messageId the message answers: its header's ``referenceMessageId``, else that
        of our message whose attempt its transport envelope names (:data:`ANSWERED_ATTEMPT`,
        then journaled as ``envelope_reference``)."""
        attempt = raw.meta.get(ANSWERED_ATTEMPT)
        if header is not None or not attempt:
            return header, noticed
        found = await self._store.attempted_message_id(partner, attempt)
        return found, ({**noticed, "envelope_reference": attempt} if found else noticed)

    # -- who the message is about -------------------------------------------------------
    async def _resolve(self, ident: PersonIdentificationLight, partner: str,
                       reference: str | None, senders: set[str], mid: int) -> Match:
        """Without a VN, the person of the message it answers first (:meth:`_answered`);
        then VN, local id, names and date of birth; then the registry plugins (asked
        about message ``mid``)."""
        if ident.vn is None and reference:
            answered = await self._answered(ident, partner, reference, senders)
            if answered is not None:
                return answered
        keys = person_keys(ident)
        note = ""
        for how, key in (("VN", [k for k in keys if k.startswith("vn:")]),
                         ("local person id", [k for k in keys if k.startswith("local:")])):
            found = await self._store.load_persons(key) if key else {}
            kept = [s for s in found.values() if not _other_vn(s, ident)]
            if kept:
                return Match(how, [kept[0]], [None])
            if found:  # a resident's local id, but another VN: two people
                note = ("no resident matches the person of this message (its local person id"
                        " is a resident's with another VN)")
        born = birth_text(ident.date_of_birth)
        if born is not None:
            same = [(pid, s) for pid, s in await self._store.persons_born(born)
                    if s.same_names(ident) and not _other_vn(s, ident)]
            if same:
                return Match("names and date of birth", [s for _pid, s in same],
                             [pid for pid, _s in same])
        there = await candidates(self._pm, self.settings, ident, mid)
        if there.failed and not there.persons:
            note = ("no resident found: the registry could not be searched (plugin "
                    + ", ".join(map(repr, there.failed)) + " failed or did not answer in time)")
        return Match("the registry", there.persons, [None] * len(there.persons), new=True,
                     note=note, unsearched=there.failed)

    async def _answered(self, ident: PersonIdentificationLight, partner: str, reference: str,
                        senders: set[str]) -> Match | None:
        """The person of our message ``reference`` that this one answers, if the two agree:
        the same date of birth, the same names (:meth:`PersonState.same_names`), no other
        local id of the same category. ``None`` otherwise (a wrong person is worse than a
        review): the other ways are tried."""
        born = birth_text(ident.date_of_birth)
        if born is None:
            return None
        agree = [(pid, s) for pid, s in await self._store.answered_persons(partner, reference,
                                                                          senders)
                 if s.birth() == born and s.same_names(ident) and not _other_local(s, ident)]
        if len(agree) != 1:
            return None
        [(pid, state)] = agree
        return Match(ANSWERED, [state], [pid])

    async def _assigned(self, keys: list[str], mid: int) -> Match:
        """The person an operator assigned to message ``mid``: known to the gateway, else to
        the registry."""
        found = await self._store.load_persons(keys)
        if found:
            return Match("operator", [next(iter(found.values()))], [None])
        state = await look_up(self._pm, self.settings, keys, mid)
        if state is not None:
            return Match("operator", [state], [None], new=True)
        shown = ", ".join(mask_vn(k[3:]) if k.startswith("vn:") else k for k in keys)
        return Match(None, [], [], note=f"the person assigned ({shown}) is known neither to the"
                                        " gateway nor to the registry")

    # -- which registry -----------------------------------------------------------------
    async def _registry_for(self, partner: str, reference: str | None, senders: set[str],
                            person: PersonState) -> tuple[str | None, str]:
        """The registry for this message and why; ``None`` with the reason when there is none.

        :param senders: the message's ``senderId`` and ``recipientId``s: which of several
            messages with the messageId it answers (:meth:`Store.original_source`).
        """
        names = registries(self.settings)
        if len(names) == 1:
            return names[0], f"the registry {names[0]!r}"
        if reference:
            source = await self._store.original_source(partner, reference, senders)
            if source in names:
                return source, f"the registry {source!r}, which sent the message it answers"
        place = person.municipality.municipality_id if person.municipality else None
        by_place = [r for r in names if place in self.settings.partners[r].municipalities]
        if len(by_place) == 1:
            return by_place[0], f"the registry {by_place[0]!r} of municipality {place}"
        return None, (f"several registries ({', '.join(names)}) and none is known for this"
                      " message (it answers none of theirs, and its person's municipality is"
                      " in no registry's municipalities): assign it, or set municipalities")


def _other_vn(state: PersonState, ident: PersonIdentificationLight) -> bool:
    """Whether both have a VN and they differ: two people, however alike their names."""
    mine = state.identification.vn
    return mine is not None and ident.vn is not None and mine != ident.vn


def _other_local(state: PersonState, ident: PersonIdentificationLight) -> bool:
    """Whether both have a local person id of one category and they differ: two people."""
    mine, theirs = state.identification.local_person_id, ident.local_person_id
    return (mine is not None and theirs is not None
            and mine.person_id_category == theirs.person_id_category
            and mine.person_id != theirs.person_id)


def _candidate(state: PersonState, pid: int | None) -> Mapping[str, Any]:
    ident = state.identification
    return {"person": pid, "keys": state.keys(), "name": f"{ident.first_name} {ident.official_name}",
            "born": state.birth()}

