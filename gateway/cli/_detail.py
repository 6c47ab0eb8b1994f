"""The text of ``messages show``: a message with its deliveries, attempts, receipts and history.

A delivery that failed for a long time (a partner down for a day) has one attempt per
retry, and two or more history lines each: unless ``--all`` is asked for, only the first
:data:`FIRST` and the last :data:`LAST` attempts of a delivery are shown, and their
receipts and routine history lines (:data:`ROUTINE`); a line says how many more there are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from gateway.cli._render import (
    candidates_text,
    export_lines,
    iso,
    read_as,
    receipt_overdue,
    warnings,
    with_times,
)
from gateway.contracts import FILE_KEYS, MOVED_TO, NOT_FROM_PARTNER
from gateway.wording import counted

#: Of a delivery's attempts, how many of the first and of the last are shown without
#: ``--all``; the ones between are summed up in one line (two or more of them: a line for
#: one attempt would be as long as the attempt's own).
FIRST, LAST = 2, 3
#: History events that each attempt brings, the same for every retry: summed up with the
#: attempts not shown. Others (a late receipt, the delivery's end) are always shown.
ROUTINE = frozenset({"delivery.sending", "delivery.sent", "delivery.retry", "delivery.unsure",
                     "delivery.paused", "receipt.failed", "receipt.wait", "receipt.overdue"})
#: What the line summing up hidden lines ends with.
_ALL = "(--all to show them)"

#: An attempt of a delivery: (delivery id, attempt number).
Attempt = tuple[int, int]


def message_detail(msg: dict[str, Any], *, every: bool = False) -> list[str]:
    """A message with its deliveries, attempts, receipts and history; ``every``: all of a
    delivery's attempts, receipts and history lines, else the first and last few attempts."""
    hidden = set() if every else hidden_attempts(msg["deliveries"])
    out = [f"message {msg['id']}  {msg['state']}",
           f"  eCH-0223:  {read_as(msg)}",
           f"  input:     {msg['source']} / {msg['ref']}, "
           + (f"pruned {iso(msg['pruned_at'])} ([retention]: input and payloads deleted),"
              if msg["pruned_at"] is not None else f"{counted(msg['raw_bytes'], 'byte')},")
           + f" received {iso(msg['received_at'])}"]
    out += files_lines(msg["meta"])
    if msg["reason"]:
        out.append(f"  reason:    {msg['reason']}")
    out += sender_lines(msg)
    out += [f"  warning:   {warning}" for warning in warnings(msg)]
    if "requested_by" in msg["meta"]:
        out.append(f"  requested: by {msg['meta']['requested_by']} (manual send to"
                   f" {msg['meta'].get('partner', '?')})")
    if "correction_of" in msg["meta"]:
        out.append(f"  corrects:  message {msg['meta']['correction_of']}")
    out += export_lines(msg)
    out += _review_lines(msg)
    if msg["handled"]:
        h = msg["handled"]
        out.append(f"  handled:   {iso(h['at'])}: {h['note']}")
    for a in msg.get("attachments", ()):
        out.append(f"  file:      files/{a['name']}, {counted(a['bytes'], 'byte')},"
                   f" sha256 {a['sha256']}")
    for d in msg["deliveries"]:
        out += _delivery_lines(d, hidden)
    out.append("  history:")
    out += collapsed(_history(msg, hidden), _more_lines)
    return out


def hidden_attempts(deliveries: list[dict[str, Any]]) -> set[Attempt]:
    """The attempts ``messages show`` leaves out without ``--all``: of each delivery, those
    between the first :data:`FIRST` and the last :data:`LAST`, when two or more."""
    hidden: set[Attempt] = set()
    for d in deliveries:
        numbers = [a["number"] for a in d["attempt_log"]]
        middle = numbers[FIRST:max(FIRST, len(numbers) - LAST)]
        if len(middle) >= 2:
            hidden.update((d["id"], n) for n in middle)
    return hidden


def collapsed(lines: Iterable[tuple[str, Any]], summary: Callable[[list[Any]], str]
              ) -> list[str]:
    """``lines`` (text, and the key of what hides it, or ``None``) with each run of hidden
    lines in a row said by one line: ``summary(keys of the run)``."""
    out: list[str] = []
    run: list[Any] = []
    for text, key in lines:
        if key is None:
            if run:
                out.append(summary(run))
                run = []
            out.append(text)
        else:
            run.append(key)
    if run:
        out.append(summary(run))
    return out


def _spans(attempts: Iterable[Attempt]) -> str:
    """Which attempts, per delivery: ``attempts 3 to 45`` (of delivery 4, where the message
    has others)."""
    numbers: dict[int, list[int]] = {}
    for delivery, number in attempts:
        numbers.setdefault(delivery, []).append(number)
    spans = [f"{min(n)} to {max(n)}" + ("" if len(numbers) == 1 else f" of delivery {d}")
             for d, n in numbers.items()]
    return "attempts " + ", ".join(spans)


def _more_lines(keys: list[Any]) -> str:
    return f"    ... {counted(len(keys), 'more line')} of {_spans(keys)} {_ALL}"


def _delivery_lines(d: dict[str, Any], hidden: set[Attempt]) -> list[str]:
    """A delivery, its attempts and the receipts for them (those of ``hidden`` attempts
    summed up)."""
    out = [f"  delivery {d['id']} to {d['partner']}: {d['state']},"
           f" {counted(d['attempts'], 'attempt')}"
           + (f", {d['reason']}" if d["reason"] else "")
           + (", RECEIPT OVERDUE" if receipt_overdue(d) else "")]
    if d.get("handled"):
        out.append(f"    handled:   {iso(d['handled']['at'])}: {d['handled']['note']}")
    attempts = []
    for a in d["attempt_log"]:
        to = f" to {a['recipient']}" if a["recipient"] else ""
        attempt = (d["id"], a["number"])
        attempts.append((f"    attempt {a['number']} {a['ref']}{to} {iso(a['started_at'])}"
                         f" {a['outcome'] or 'in flight'} {a['detail'] or ''}".rstrip(),
                         attempt if attempt in hidden else None))
    out += collapsed(attempts, lambda keys: f"    ... {counted(len(keys), 'more attempt')} {_ALL}")
    answers = {a["ref"]: (d["id"], a["number"]) for a in d["attempt_log"]}
    receipts = []
    for r in d["receipts"]:
        answered = answers.get(r["attempt_ref"])
        receipts.append((receipt_line(r), answered if answered in hidden else None))
    out += collapsed(receipts, lambda keys: f"    ... {counted(len(keys), 'more receipt')}"
                                            f" for {_spans(keys)} {_ALL}")
    return out


def receipt_line(r: dict[str, Any]) -> str:
    """A receipt: its code (``no code`` for an empty one), its time, its verdict, the attempt
    it answers and what it says."""
    return (f"    receipt {r['code'] or '(no code)'} {iso(r['at'])} {r['outcome']}"
            f" for {r['attempt_ref']}" + (f": {r['info']}" if r["info"] else ""))


def _history(msg: dict[str, Any], hidden: set[Attempt]) -> list[tuple[str, Attempt | None]]:
    """The journal of ``msg``, a line per entry; routine lines of ``hidden`` attempts keyed."""
    number = {(d["id"], a["ref"]): a["number"] for d in msg["deliveries"] for a in d["attempt_log"]}
    lines: list[tuple[str, Attempt | None]] = []
    for j in msg["journal"]:
        detail = j["detail"] if isinstance(j["detail"], dict) else {}
        text = json.dumps(with_times(j["detail"]), ensure_ascii=False) if j["detail"] else ""
        who = f" [delivery {j['delivery']}]" if j["delivery"] else ""
        key: Attempt | None = None
        if j["event"] in ROUTINE and j["delivery"]:
            n: int | None = detail.get("attempt", number.get((j["delivery"], detail.get("ref"))))
            if n is not None and (j["delivery"], n) in hidden:
                key = (j["delivery"], n)
        lines.append((f"    {iso(j['at'])}  {j['event']}{who} {text}".rstrip(), key))
    return lines


def files_lines(meta: dict[str, Any]) -> list[str]:
    """Where the files of the input are: their names and the folder the source moved them
    to (:data:`~gateway.contracts.MOVED_TO`; not known of input stored before it was kept)."""
    names = [meta[k] for k in FILE_KEYS if meta.get(k)]
    folder = meta.get(MOVED_TO)
    if not names and not folder:
        return []
    return ["  files:     " + (" and ".join(names) or "its files")
            + (f", moved to {folder}" if folder else "")]


def sender_lines(msg: dict[str, Any]) -> list[str]:
    """Why input on a partner's way is not the partner's (``meta[NOT_FROM_PARTNER]``), saying
    nothing the reason says already: none when the reason holds it all, its own part when it
    holds the reason (a refused sedex pair: ``its sender is not known: <reason>``)."""
    why = msg["meta"].get(NOT_FROM_PARTNER)
    if not why:
        return []
    reason = msg["reason"] or ""
    line = f"  sender:    not partner {msg['source']}"  # on its way: the partner's name is the way's
    own = _before(why, reason)
    if own is not None:
        return [line + (f": {own}" if own else "")]
    if reason and why in reason:
        return []
    return [f"{line}: {why}"]


def _before(why: str, reason: str) -> str | None:
    """What ``why`` says before the reason it ends with (``its sender is not known: <reason>``,
    the reason perhaps said longer), ``""`` if it is the reason; ``None`` if it does not."""
    if not reason:
        return None
    if why == reason:
        return ""
    at = why.find(": ")
    while at >= 0:
        if reason.startswith(why[at + 2:]):
            return why[:at]
        at = why.find(": ", at + 1)
    return None


def _review_lines(msg: dict[str, Any]) -> list[str]:
    """Whom a message waiting for review is assigned to, and its candidates."""
    review = msg.get("review")
    if not review:
        return []
    out = []
    if review["assigned"]:
        out.append(f"  assigned:  {', '.join(review['assigned'])} by {review['assigned_by']}")
    if msg["state"] == "needs_review":
        out.append(f"  candidates ({len(review['candidates'])}):"
                   + ("" if review["candidates"] else " none"))
        out += [f"    {line}" for line in candidates_text(review["candidates"])]
    return out
