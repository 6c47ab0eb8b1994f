"""Events: what ``gateway_event`` listeners are told, made from what was committed.

The store's writer hands the journal entries of every committed batch to
:class:`Publisher` (``Store.on_commit``). The publisher is the one place
events are made: nothing is announced before it is durable, and nothing
committed of the kinds below goes unannounced. An event carries the ids of
the message and the delivery the entry is about, and the entry's detail.

:data:`KINDS` is the documented list of event kinds, with their details;
:data:`DIRECT` lists the few emitted directly instead, when the store
itself is what failed (so they cannot be journaled).
Journal entries of other kinds (``message.received``, ``message.normalised``,
``delivery.queued``, ``delivery.sending``) stay in the journal only: they
are steps every message takes, not news.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pluggy

from gateway.logs import redact
from gateway.plugin_types import GatewayEvent
from gateway.plugins import notify
from gateway.store.journal import Entry

log = logging.getLogger(__name__)

#: Every event kind, what it means and its detail keys. Delivery events name
#: their ``partner``; the message and delivery ids are the event's own fields.
KINDS: dict[str, str] = {
    "message.quarantined": "an input was set aside for a person to look at; reason, source",
    "message.duplicate": "an input is a copy of message duplicate_of (the same bytes from the"
                         " same source, or an eCH messageId already routed); duplicate_of,"
                         " reason, and problem when it also came with one (a bad envelope)",
    "message.not_relevant": "no partner takes the message; reason",
    "message.replayed": "an operator sent a quarantined message through processing again",
    "message.needs_review": "a partner's message waits for an operator: nobody, or more than"
                            " one resident, matches its person; reason, partner, candidates"
                            " (how many)",
    "message.answer": "a partner's eventReport was applied; answers (the eCH messageId),"
                      " partner, positive, deliveries (the ids it settled, maybe none),"
                      " reason (when it names no message, or several, sent to the partner)",
    "delivery.sent": "the transport took the attempt, a receipt is awaited; partner, ref",
    "delivery.delivered": "the partner has it (receipt or transport); partner, ref; was:"
                          " dead, when an unsure attempt left it dead at max_age and a later"
                          " receipt proves delivery",
    "delivery.acknowledged": "the partner acknowledged it (positive eventReport); partner, answer",
    "delivery.rejected": "the partner rejected it (negative eventReport); partner, answer,"
                         " reason",
    "delivery.needs_review": "a receipt needs a person's look; partner, ref, code, info",
    "delivery.retry": "an attempt failed and another follows; partner, attempt, error,"
                      " next_attempt_at",
    "delivery.unsure": "an attempt may have reached the partner; it is repeated as the same"
                       " attempt; partner, attempt, ref, error, resume_at",
    "delivery.dead": "no attempt follows (the last one failed, or the failure is permanent);"
                     " partner, attempt, error, why",
    "delivery.replayed": "an operator replaced the delivery by new_delivery; partner",
    "partner.paused": "a fault on a node's machine (the transport's outbox missing, read-only,"
                      " full or not answering) paused the partner on that node: its attempts there wait,"
                      " uncounted (kept across a restart; `status` reports it); partner, node,"
                      " error",
    "partner.resumed": "the fault on the node's machine cleared and the partner's deliveries"
                       " flow again from it, the pause not counted toward the max_age of any"
                       " of the partner's deliveries; partner, node, paused_for (seconds),"
                       " error, deliveries (how many were waiting)",
    "receipt.overdue": "no receipt within the partner's receipt_timeout; partner, ref",
    "receipt.wait": "the transport reports the attempt still on its way; ref, code, info,"
                    " alert (the transport asks to tell the operator)",
    "receipt.failed": "the transport reports the attempt failed (a delivery.retry or"
                      " delivery.dead follows); ref, code, info, outcome",
    "receipt.late": "a receipt for an attempt already settled or superseded; ref, code, info",
    "receipt.unmatched": "a receipt that answers no attempt of ours, kept and changing no"
                         " delivery: no attempt has its ref, or the attempt with its ref was"
                         " addressed to another recipient (then the event names that attempt's"
                         " message and delivery, with partner, recipient: the receipt's,"
                         " addressed: the attempt's); ref, code, info, outcome, reason",
    "store.pruned": "retention deleted the input and payloads of settled messages unchanged"
                    " since unchanged_since ([retention] keep); messages (how many), first, last"
                    " (their ids)",
    "store.persons_pruned": "retention deleted the states of persons who left the register"
                            " (moveOut, death, deletedinRegister) before departed_before"
                            " ([retention] keep), none of whose messages still had its body;"
                            " persons (how many), ids",
    "store.receipts_pruned": "retention deleted the bytes of receipts that matched no delivery"
                             " (receipt.unmatched) recorded before recorded_before ([retention]"
                             " keep); their records stay; receipts (how many)",
    "store.space_low": "the disk of the database has less free space than [retention]"
                       " warn_free_below; folder, free_bytes, threshold_bytes",
    "store.space_ok": "the disk of the database has enough free space again; folder,"
                      " free_bytes, threshold_bytes",
}
#: Kinds emitted directly, not from the journal: the store is what cannot be written.
DIRECT: dict[str, str] = {
    "intake.paused": "the store cannot write (its disk is full, or another program holds"
                     " the database's write lock): intake waits and tries its writes again;"
                     " error",
    "intake.resumed": "the store writes again and intake goes on; paused_for (seconds)",
    "store.lost": "the database was deleted or replaced while running: nothing more is"
                  " written and the daemon stops; path, error",
}
#: Kinds also logged at INFO when committed (names ids, never personal data).
_LOGGED = {
    "message.duplicate": "message {message} is a duplicate of message {duplicate_of}: {reason}",
}


class Publisher:
    """The after-commit step: committed journal entries → ``gateway_event`` calls."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def __call__(self, entries: Sequence[Entry]) -> None:
        """Announce the entries of a committed batch, in journal order."""
        for entry in entries:
            if entry.event not in KINDS:
                continue
            detail = dict(entry.detail or {})
            template = _LOGGED.get(entry.event)
            if template is not None:  # reasons may quote values: redact them, not the ids
                log.info(template.format(message=entry.message, delivery=entry.delivery,
                                         **{**detail, "reason": redact(str(detail["reason"]))}))
            notify(self._pm, GatewayEvent(entry.event, entry.message, entry.delivery, detail))
