"""Who shares a sedex inbox: the partners whose pairs arrive in it.

Partners of one sedex client share its inbox. A pair is the partner's whose
``recipient_id`` is the envelope's ``senderId`` and whose ``sender_id`` is
among its ``recipientId`` values (:class:`~plugins.sedex._inbound.InboxScanner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.api import same_folder
from plugins.sedex.options import SedexOptions


@dataclass(frozen=True, slots=True)
class InboxPartner:
    """A partner whose pairs arrive in an inbox: sent by ``sedex_id`` (its ``recipient_id``)
    to ``our_id`` (its ``sender_id``)."""

    name: str
    sedex_id: str
    our_id: str
    enabled: bool = True


def sedex_partners(settings: Any) -> list[tuple[str, bool, SedexOptions]]:
    """The configured sedex partners in configuration order: name, enabled, options."""
    partners = getattr(settings, "partners", None) or {}
    return [(name, p.enabled, p.parsed) for name, p in partners.items()
            if isinstance(getattr(p, "parsed", None), SedexOptions)]


def inbox_partners(settings: Any, name: str, options: SedexOptions) -> list[InboxPartner]:
    """The sedex partners whose inbox is partner ``name``'s (``options.inbox``), disabled
    ones too, in configuration order; ``name`` first if ``settings`` does not name it."""
    found = []
    for other, enabled, opts in sedex_partners(settings):
        if other == name:
            opts, enabled = options, True
        elif not same_folder(opts.inbox, options.inbox):
            continue
        found.append(InboxPartner(other, opts.recipient_id, opts.sender_id, enabled))
    if all(p.name != name for p in found):
        found.insert(0, InboxPartner(name, options.recipient_id, options.sender_id))
    return found
