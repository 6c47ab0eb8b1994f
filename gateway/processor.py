"""The stages of processing without I/O: normalise, then finish (complete → rules → convert → validate).

The pipeline (:mod:`gateway.pipeline`) runs them in order, around the one
stage that does I/O::

    normalise ─▶ enrich ─▶ complete ─▶ rules ─▶ convert per partner ─▶ validate ─▶ record
    (worker)     (daemon:   (worker: :meth:`Processor.finish_batch`)              (store, one
                 store,                                                         transaction)
                 plugins)

:class:`Processor` does no I/O, so both halves run in the event loop or in
worker processes (``[gateway] workers``), where lxml parsing and schema
validation use another core. Between them, *enrich* (:mod:`gateway.enrich`)
looks up the last known state of each message's person. A manual send
(:mod:`gateway.manual`) is normalised by the core itself and decided by its
request, not by the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import pluggy

from gateway import manual
from gateway.assembly import partner_ech0223, partner_of
from gateway.contracts import (
    DOCUMENT_LIMIT,
    Attachment,
    Decision,
    NormaliseContext,
    Normalised,
    PartnerVersion,
    RawInput,
    Route,
)
from gateway.convert import CANONICAL, RULE_COMMENT, Payloads, Validator, partner_payloads
from gateway.documents import folder_of, named_files
from gateway.errors import ConversionRefused, InputRejected
from gateway.facts import message_facts, rule_facts
from gateway.person_state import PersonChange, PersonState, StoredPerson
from gateway.store import MessageState, Processed
from gateway.wording import counted
from gateway.xml.safe import parse_untrusted

log = logging.getLogger(__name__)

#: The reason an input no normaliser takes is quarantined with (then its root element).
UNRECOGNISED = "no normaliser recognised this input"
S = TypeVar("S")
#: What stage one makes of an input: a message to finish, or already an outcome.
Step = Normalised | Processed


class Processor:
    """Decides what becomes of stored inputs."""

    def __init__(self, pm: pluggy.PluginManager, settings: Any, context: NormaliseContext,
                 validate: Validator, partners: Mapping[str, PartnerVersion]) -> None:
        self._pm = pm
        self.settings = settings
        self._context = context
        self._validate = validate
        self._partners = partners
        self._documents = folder_of(settings)

    @property
    def context(self) -> NormaliseContext:
        """The input limits in force (and the partners' eCH-0223 versions)."""
        return self._context

    # -- stage one: normalise ------------------------------------------------------
    def normalise_batch(self, batch: Sequence[tuple[int, RawInput]]) -> list[Step]:
        """Normalise each input; messages are made light to travel between processes."""
        return [_light(self.normalise(mid, raw), raw) for mid, raw in batch]

    def normalise(self, mid: int, raw: RawInput) -> Step:
        """The normalised message of one input, or its outcome when it cannot be normalised."""
        try:
            normalised = (manual.normalise(raw) if manual.is_request(raw)
                          else self._pm.hook.gateway_normalise(raw=raw, context=self._context))
        except InputRejected as exc:
            return Processed(mid, MessageState.QUARANTINED, str(exc), message_id=exc.message_id,
                             sender_id=exc.sender_id)
        except Exception as exc:  # a plugin bug quarantines the input, never loses it
            log.exception("normaliser failed on message %d", mid)
            return Processed(mid, MessageState.QUARANTINED, f"normaliser error: {exc!r}")
        if normalised is None:
            return Processed(mid, MessageState.QUARANTINED, self._unrecognised(raw))
        if not isinstance(normalised, Normalised):  # a plugin bug, said as one
            log.error("normaliser returned %s for message %d, not a Normalised",
                      type(normalised).__name__, mid)
            return Processed(mid, MessageState.QUARANTINED, "normaliser error: gateway_normalise"
                             f" returned {type(normalised).__name__}, not a Normalised")
        return self._checked(normalised)

    def _checked(self, n: Normalised) -> Normalised:
        """``n`` with what its parsed tree tells, while it is at hand: the facts rules use
        from the message itself, its validation as eCH-0223 1.5 and the files its
        documents name."""
        if n.tree is None or n.draft is not None or n.not_relevant is not None or n.parts:
            return n
        return n.replaced(facts={**message_facts(n.tree), **n.facts},
                                   problems=tuple(self._validate(n.tree, CANONICAL)),
                                   named_files=named_files(n.tree))

    # -- stage three: complete → rules → convert → validate ---------------------------
    def finish_batch(self, items: Sequence[tuple[int, RawInput, Normalised]],
                     known: Mapping[str, StoredPerson]) -> list[Processed]:
        """Finish each message in order, each seeing the person states the earlier ones left.

        Each result's person updates become :class:`PersonChange` objects, their
        merges worked out here, so recording stores them as they are.

        :param known: the person states enrichment found, by key.
        """
        states = dict(known)
        results = []
        for mid, raw, normalised in items:
            before = state_of(states, normalised.subject)
            result = self.finish(mid, raw, normalised, before.state if before is not None else None)
            result.persons = tuple(remember(states, u) if isinstance(u, PersonState) else u
                                   for u in result.persons)
            results.append(result)
        shared: dict[Any, Any] = {}  # equal decisions and routes as one object: pickled once
        for p in results:
            if p.normalised is not None:
                xml = b"" if p.raw_is_canonical else p.normalised.xml
                p.normalised = p.normalised.replaced(tree=None, xml=xml, draft=None,
                                                   persons=())
            if p.decision is not None:
                p.decision = _shared(shared, p.decision)
            p.routes = [_shared(shared, r) for r in p.routes]
        return results

    def finish(self, mid: int, raw: RawInput, n: Normalised,
               before: PersonState | None) -> Processed:
        """Complete, decide, convert and validate one normalised message."""
        if n.parts or n.rejected_parts:
            why = (f"split into {counted(len(n.parts) + len(n.rejected_parts), 'part')}"
                   f" ({len(n.rejected_parts)} rejected)")
            rejected = {"rejected_warnings": list(n.rejected_warnings)} if n.rejected_warnings else None
            return Processed(mid, MessageState.SPLIT, why, normalised=n, raw_is_canonical=True,
                             detail=_warned(list(n.warnings), rejected))
        try:
            n = self.complete(n, raw, before)
        except InputRejected as exc:
            return Processed(mid, MessageState.QUARANTINED, str(exc), message_id=n.message_id,
                             sender_id=n.sender_id)
        except Exception as exc:  # a plugin bug quarantines the input, never loses it
            log.exception("completing message %d failed", mid)
            return Processed(mid, MessageState.QUARANTINED, f"normaliser error: {exc!r}")
        base: dict[str, Any] = {"normalised": n, "raw_is_canonical": n.xml == raw.data,
                                "persons": n.persons}
        warnings = list(n.warnings)
        about = {k: n.facts[k] for k in ("source_event",) if n.facts.get(k)}
        if n.not_relevant is not None:
            why = n.not_relevant
            if raw.source == manual.SOURCE:  # sent by hand to send it: nothing went, nothing changes
                base["persons"] = ()
                why += "; sent by hand, it leaves the person state as it was"
            return Processed(mid, MessageState.NOT_RELEVANT, why, detail=_warned(warnings, about),
                             **base)
        if n.facts.get("format") == "eCH-0223" and partner_of(self.settings, raw.source):
            # what a partner says of a person is not the registry's word: no state from it
            return Processed(mid, MessageState.NOT_RELEVANT, _from_partner(raw),
                             detail=_warned(warnings), **{**base, "persons": ()})
        facts = rule_facts(n, raw, before)
        if facts["event"]:
            about["event"] = facts["event"]
        try:
            decision = self._decide(n, raw, facts)
        except Exception as exc:  # a code rule's bug quarantines this message, not the batch
            log.exception("deciding message %d failed", mid)
            return Processed(mid, MessageState.QUARANTINED, f"rule error: {exc!r}",
                             detail=_warned(warnings, about), **{**base, "persons": ()})
        if decision is None:
            why = (f"no rule decided about it (no [[rules]] entry matched, and source"
                   f" {raw.source!r} has no route_to)")
            return Processed(mid, MessageState.NOT_RELEVANT, why, detail=_warned(warnings, about),
                             **base)
        detail = {**about, "rule": decision.rule}
        unknown = [p for p in dict.fromkeys(decision.partners) if p not in self._partners]
        if unknown:  # a code rule's typo: the message waits for a fix and a replay
            return Processed(mid, MessageState.QUARANTINED,
                             f"rule {decision.rule!r} routes to {', '.join(map(repr, unknown))},"
                             " which is no configured partner", decision=decision,
                             detail=_warned(warnings, detail), **{**base, "persons": ()})
        routes = [Route(p, decision.reason) for p in dict.fromkeys(decision.partners)]
        warnings += [f"partner {r.partner!r} is disabled: its delivery waits until it is enabled"
                     for r in routes if not self.settings.partners[r.partner].enabled]
        if not routes:
            return Processed(mid, MessageState.NOT_RELEVANT, decision.reason, decision=decision,
                             detail=_warned(warnings, detail), **base)
        try:
            supplied = self._supplied(n, decision, facts)
            payloads = partner_payloads(n, decision, {r.partner: self._partners[r.partner]
                                                      for r in routes}, self._validate,
                                        self._documents, supplied, self.parsed,
                                        manual.COMMENT_FROM if raw.source == manual.SOURCE
                                        else RULE_COMMENT)
        except (InputRejected, ConversionRefused) as exc:
            # the person's state stays as it was: a replay must compare with the same state
            return Processed(mid, MessageState.QUARANTINED, str(exc), decision=decision,
                             detail=_warned(warnings, detail), **{**base, "persons": ()})
        if payloads.canonical is not None:
            n = n.replaced(xml=payloads.canonical, tree=None,
                                    attachments=n.attachments + tuple(payloads.attachments))
            base.update(normalised=n, raw_is_canonical=n.xml == raw.data)
        warnings += payloads.warnings
        return Processed(mid, MessageState.ROUTED, None, routes=routes, decision=decision,
                         payloads=payloads.by_partner, detail=_warned(warnings, detail), **base)

    def complete(self, n: Normalised, raw: RawInput, before: PersonState | None) -> Normalised:
        """The finished message: its draft completed; its XML set (the raw input's if the same).

        The tree is parsed again only where a later stage needs it
        (:meth:`parsed`): a message validated in stage one and sent unchanged
        to partners on 1.5 never is.
        """
        if n.draft is not None:
            done = n.draft.complete(before)
            n = done.replaced(subject=done.subject or n.subject, draft=None,
                              facts={**n.facts, **done.facts},
                              sender_id=done.sender_id or n.sender_id)
        if n.tree is None and not n.xml and n.not_relevant is None and not n.parts:
            n = n.replaced(xml=raw.data)
        return n

    def payloads(self, n: Normalised, decision: Decision) -> Payloads:
        """Each partner of ``decision`` its eCH-0223 version of ``n``, validated (no documents).

        :raises InputRejected: ``n``, or a partner's version of it, is invalid.
        :raises ConversionRefused: a partner's policy refuses an event its version lacks.
        """
        return partner_payloads(n, decision, {p: self._partners[p] for p in decision.partners},
                                self._validate, parsed=self.parsed)

    def problems(self, n: Normalised) -> tuple[str, ...]:
        """What validating ``n`` as eCH-0223 1.5 finds: stage one's finding where it had one."""
        if n.problems is not None:
            return n.problems
        return tuple(self._validate(self.parsed(n).tree, CANONICAL))

    def parsed(self, n: Normalised) -> Normalised:
        """``n`` with its tree, parsed in this process if it came without."""
        if n.tree is not None:
            return n
        return n.replaced(tree=parse_untrusted(n.xml, max_bytes=self._context.max_bytes,
                                               setting=DOCUMENT_LIMIT))

    def _supplied(self, n: Normalised, decision: Decision,
                  facts: Mapping[str, Any]) -> list[Attachment]:
        """The document files plugins supply (``gateway_documents``), in plugin order.

        :raises InputRejected: a plugin refused, or failed (a plugin bug quarantines the
            message rather than send it without its documents).
        """
        try:
            answers = self._pm.hook.gateway_documents(message=n, decision=decision, facts=facts,
                                                      settings=self.settings)
        except InputRejected:
            raise
        except Exception as exc:
            log.exception("a gateway_documents plugin failed")
            raise InputRejected(f"documents plugin error: {exc!r}") from exc
        files = [a for answer in reversed(answers) for a in answer]
        wrong = [type(a).__name__ for a in files if not isinstance(a, Attachment)]
        if wrong:
            raise InputRejected(f"a gateway_documents plugin returned {wrong[0]}, not Attachment")
        return files

    def _decide(self, n: Normalised, raw: RawInput, facts: Mapping[str, Any]) -> Decision | None:
        """The decision of the first rule that has one (a manual send's own, for a request)."""
        if raw.source == manual.SOURCE:
            return manual.decision(raw)
        decision = self._pm.hook.gateway_decide(message=n, raw=raw, facts=facts,
                                                settings=self.settings)
        if decision is not None and not isinstance(decision, Decision):
            raise TypeError(f"gateway_decide returned {type(decision).__name__}, not a Decision")
        return decision

    def _unrecognised(self, raw: RawInput) -> str:
        reason = UNRECOGNISED
        try:
            root = parse_untrusted(raw.data, max_bytes=self._context.max_bytes).getroot()
        except InputRejected:
            return reason
        return f"{reason} (root element {root.tag})"


def _light(step: Step, raw: RawInput) -> Step:
    """``step`` without what need not cross processes: the tree, and XML equal to the raw input."""
    if isinstance(step, Normalised):
        return step.replaced(tree=None, xml=b"" if step.xml == raw.data else step.xml)
    return step


def _shared(pool: dict[Any, Any], record: S) -> S:
    """The record equal to ``record`` in ``pool`` (adding it); ``record`` if it is not hashable."""
    try:
        return pool.setdefault(record, record)
    except TypeError:  # a plugin's decision with a list in it
        return record


def state_of(states: Mapping[str, S], keys: Sequence[str]) -> S | None:
    """The state of the first of ``keys`` that ``states`` has."""
    for key in keys:
        if key in states:
            return states[key]
    return None


def remember(states: dict[str, StoredPerson], update: PersonState) -> PersonChange:
    """Merge ``update`` into the state it belongs to, under all the keys of both; the change."""
    old = state_of(states, update.keys())
    merged = old.state.merged(update) if old is not None else update
    change = PersonChange.of(update, old, merged)
    states.update(dict.fromkeys(change.keys, StoredPerson(old.pid if old else None,
                                                          change.merged, merged)))
    return change


def _warned(warnings: list[str], detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {**(detail or {}), **({"warnings": warnings} if warnings else {})}


def _from_partner(raw: RawInput) -> str:
    """What becomes of eCH-0223 from a partner (the canton's messages): not the rules' business.

    The pipeline hands such messages to :mod:`gateway.inbound` before this
    stage; only ``rules explain`` asks here. What else arrives over a
    partner's transport (a registry's eCH-0020 events over sedex) is decided by
    the rules like the registry folder's input.
    """
    return (f"inbound from partner {raw.source!r}: no rule decides about it; it takes the way"
            " back to the registry (README, \"The way back\")")



def normalise_context(settings: Any) -> NormaliseContext:
    """The input limits from ``[limits]``, and the eCH-0223 version of what each source brings."""
    lim = settings.limits
    partners = partner_ech0223(settings)
    # a source bringing a partner's messages (``partner = "canton"``) reads them as that partner
    by_source = {name: partners[s.partner] for name, s in settings.sources.items()
                 if s.partner in partners and name not in partners}
    return NormaliseContext(lim.max_document_bytes, lim.max_zip_entries, lim.max_zip_bytes,
                            lim.max_zip_ratio, lim.max_kept_bytes, {**partners, **by_source})


def partner_targets(settings: Any) -> dict[str, PartnerVersion]:
    """The eCH-0223 version (and policy) of each partner: where messages may go.

    A disabled partner's deliveries are made as any other's and wait, queued,
    until it is enabled: disabling a partner holds its messages, it does not
    drop them.
    """
    return partner_ech0223(settings)
