"""Normalise → route → validate: pure work on stored inputs, in or out of process.

:class:`Processor` does no I/O, so the pipeline can run it in the event
loop or in worker processes (``[gateway] workers``), where lxml parsing
and schema validation use another core instead of contending for this
process's GIL.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pluggy

from gateway.contracts import NormaliseContext, Normalised, RawInput, Route
from gateway.errors import InputRejected
from gateway.store import MessageState, Processed
from gateway.xml.safe import parse_untrusted

log = logging.getLogger(__name__)

#: Validates a normalised message for an eCH-0223 version; returns problems.
Validator = Callable[[Normalised, str], list[str]]


class Processor:
    """Decides what becomes of one stored input."""

    def __init__(self, pm: pluggy.PluginManager, settings: Any, context: NormaliseContext,
                 validate: Validator, partner_versions: dict[str, str]) -> None:
        self._pm = pm
        self._settings = settings
        self._context = context
        self._validate = validate
        self._partner_versions = partner_versions

    def process_batch(self, batch: Sequence[tuple[int, RawInput]]) -> list[Processed]:
        """Process each input; results are made light to travel between processes.

        The parsed tree is dropped, and so is the canonical XML where it is the
        raw input itself (``raw_is_canonical``): the store keeps the raw bytes.
        """
        results = [self.process_one(mid, raw) for mid, raw in batch]
        for p in results:
            if p.normalised is not None:
                # the tree stays here; the XML travels back only when it differs from the raw
                xml = b"" if p.raw_is_canonical else p.normalised.xml
                p.normalised = dataclasses.replace(p.normalised, tree=None, xml=xml)
        return results

    def process_one(self, mid: int, raw: RawInput) -> Processed:
        """Normalise, route and validate one stored input."""
        try:
            normalised = self._pm.hook.gateway_normalise(raw=raw, context=self._context)
        except InputRejected as exc:
            return Processed(mid, MessageState.QUARANTINED, str(exc))
        except Exception as exc:  # a plugin bug quarantines the input, never loses it
            log.exception("normaliser failed on message %d", mid)
            return Processed(mid, MessageState.QUARANTINED, f"normaliser error: {exc!r}")
        if normalised is None:
            return Processed(mid, MessageState.QUARANTINED, self._unrecognised(raw))
        base = {"normalised": normalised, "raw_is_canonical": normalised.xml == raw.data}
        routes, ignored = self._route(normalised, raw)
        for version in sorted({self._partner_versions[r.partner] for r in routes}):
            problems = self._validate(normalised, version)
            if problems:
                reason = f"invalid eCH-0223 {version}: " + "; ".join(problems[:3])
                return Processed(mid, MessageState.QUARANTINED, reason, **base)
        if not routes:
            why = self._no_route(raw) + (f" ({'; '.join(ignored)})" if ignored else "")
            return Processed(mid, MessageState.NOT_RELEVANT, why, **base)
        detail = {"ignored_routes": ignored} if ignored else {}
        return Processed(mid, MessageState.ROUTED, None, routes=routes, detail=detail, **base)

    def _route(self, message: Normalised, raw: RawInput) -> tuple[list[Route], list[str]]:
        facts = {"kind": message.kind, "source": raw.source, **message.facts}
        decision = self._pm.hook.gateway_decide(message=message, raw=raw, facts=facts,
                                                settings=self._settings)
        if decision is None:
            return [], []
        routes: list[Route] = []
        ignored: list[str] = []
        for partner in dict.fromkeys(decision.partners):
            if partner not in self._partner_versions:
                ignored.append(f"{partner}: no such enabled partner")
            else:
                routes.append(Route(partner, decision.reason))
        return routes, ignored

    def _no_route(self, raw: RawInput) -> str:
        if raw.source in self._settings.partners:
            return (f"inbound from partner {raw.source!r}: no route takes messages from partners"
                    " yet (delivery to the registry comes with a registry plugin)")
        return "no rule routes it to a partner"

    def _unrecognised(self, raw: RawInput) -> str:
        reason = "no normaliser recognised this input"
        try:
            root = parse_untrusted(raw.data, max_bytes=self._context.max_bytes).getroot()
        except InputRejected:
            return reason
        return f"{reason} (root element {root.tag})"


def normalise_context(settings: Any) -> NormaliseContext:
    """The input limits from ``[limits]``."""
    lim = settings.limits
    return NormaliseContext(lim.max_document_bytes, lim.max_zip_entries, lim.max_zip_bytes,
                            lim.max_zip_ratio, lim.max_kept_bytes)


# -- worker processes -------------------------------------------------------------

_worker: Processor | None = None


def init_worker(settings: Any, partner_versions: dict[str, str]) -> None:
    """Build this worker process's processor from the daemon's settings."""
    from gateway.assembly import make_validator, schema_set
    from gateway.plugins import get_plugin_manager
    from gateway.workers import settle_gc

    global _worker
    _worker = Processor(get_plugin_manager(), settings, normalise_context(settings),
                        make_validator(schema_set(settings)), partner_versions)
    settle_gc()


def work(batch: Sequence[tuple[int, RawInput]]) -> list[Processed]:
    """Process a batch in a worker process."""
    assert _worker is not None, "init_worker was not called"
    return _worker.process_batch(batch)
