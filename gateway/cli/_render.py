"""Text rendering of what the inspect commands print."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from gateway.store import DeliveryState
from gateway.wording import counted, size_text


def receipt_overdue(delivery: dict[str, Any]) -> bool:
    """Whether ``delivery``'s receipt is overdue: flagged, and still awaited (the flag
    stays in the row once a late receipt comes)."""
    return bool(delivery["overdue"]) and delivery["state"] == DeliveryState.SENT


def iso(ts: float | None) -> str | None:
    """A timestamp as local ISO 8601 with its UTC offset (milliseconds), or None.

    The one format of every time the command line prints, as text or JSON.
    """
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).astimezone().isoformat(timespec="milliseconds")


def with_times(value: Any) -> Any:
    """``value`` with every ``at`` and ``*_at`` number in it (nested) as :func:`iso` text."""
    if isinstance(value, dict):
        return {k: iso(v) if _is_time(k, v) else with_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_times(v) for v in value]
    return value


def _is_time(key: str, value: Any) -> bool:
    return ((key == "at" or key.endswith("_at")) and isinstance(value, int | float)
            and not isinstance(value, bool))


def status(counts: dict[str, Any], reasons: list[dict[str, Any]],
           configured: Collection[str]) -> list[str]:
    """Counts per state as a few lines (the deliveries not finished per partner too, a
    partner not among ``configured`` marked so), then the verdict and its reasons."""
    lines = ["messages:   " + _pairs(counts["messages"]),
             "deliveries: " + _pairs(counts["deliveries"])]
    # the counts in the column of the lines above, or one space past the longest name
    width = max([9, *(len(p) + 1 for p in counts["unsettled"])])
    lines += [f"  {p + ':':<{width}} {_pairs(n)}"
              + ("" if p in configured else " (not configured)")
              for p, n in sorted(counts["unsettled"].items())]
    if counts["failing"]:
        lines.append("failing: " + _pairs(counts["failing"]))
    if counts["overdue"]:
        lines.append("receipts overdue: " + _pairs(counts["overdue"]))
    if counts["held"]:
        lines.append("held for disabled partners: " + _pairs(counts["held"])
                     + " (sent once enabled)")
    for p in counts["paused"]:
        if p["configured"] != "enabled":  # (an enabled one is a reason for attention)
            lines.append(f"paused: partner {p['partner']} on node {p['node']} since"
                         f" {p['since']} ({p['error']}); it is"
                         + (" disabled: probed once enabled" if p["configured"] == "disabled"
                            else " no longer configured: nothing is sent to it"))
    store = counts["store"]
    lines.append(f"store:      {size_text(store['bytes'])} ({store['path']} and its WAL),"
                 f" {size_text(store['free_bytes'])} free on its disk;"
                 f" {counted(counts['pruned'], 'message')} pruned by retention")
    persons = counts["persons"]
    lines.append(f"persons:    {persons['known']} known, {persons['departed']} of them left the"
                 " register (deleted [retention] keep later)")
    if not reasons:
        lines.append("OK: nothing needs attention")
    else:
        lines.append("ATTENTION:")
        lines += [f"  {_reason_count(r)} {r['what']}: {r['hint']}" for r in reasons]
    return lines


def _reason_count(reason: dict[str, Any]) -> str:
    """A reason's count as the text says it: the free space of ``disk`` to a tenth of a MiB
    (its JSON ``count`` is whole MiB: 0.9 MiB would read "0 MiB free")."""
    if reason["kind"] == "disk":
        return f"{reason['free_bytes'] / (1 << 20):.1f}"
    return str(reason["count"])


def _pairs(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"


def message_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per message (rows in the shape ``messages list --json`` prints): its
    deliveries, else why it has none (``reason``, else ``note``: why it waits for review,
    is a duplicate or not relevant)."""
    out = [f"{'ID':>6}  {'RECEIVED':<29}  {'STATE':<12} {'MESSAGE-ID':<36}  DELIVERIES / REASON"]
    for m in rows:
        deliveries = ", ".join(f"{d['partner']}:{d['state']}({d['attempts']})"
                               + (" [handled]" if d.get("handled") else "")
                               for d in m["deliveries"])
        handled = " [handled]" if m["handled"] else ""
        out.append(f"{m['id']:>6}  {m['received_at']:<29}  {m['state']:<12}"
                   f" {m['message_id'] or '-':<36}  {deliveries or m['reason'] or m['note'] or ''}{handled}")
    return out


def warnings(msg: dict[str, Any]) -> list[str]:
    """What processing warned of (an event the partner's version lacks, lines skipped
    before an export's header...), as journaled when the message was last normalised;
    of an export's rejected rows as a whole (what they all have wrong), only while each
    row is still rejected as the split made it (quarantined, for the same reason)."""
    found = [e["detail"] for e in msg["journal"]
             if e["event"] == "message.normalised" and isinstance(e["detail"], dict)]
    if not found:
        return []
    rows = msg.get("rows")
    as_split = rows is not None and rows["as_split"] == rows["total"]
    return [*found[-1].get("warnings", ()),
            *(found[-1].get("rejected_warnings", ()) if as_split else ())]


def read_as(msg: dict[str, Any]) -> str:
    """What ``msg`` was read as: kind, messageId, sender and version (the version it came in
    too, where it was upgraded); a byte-identical duplicate (never read itself), what the
    message it duplicates was read as; ``-`` for nothing read."""
    original = msg.get("original")
    if msg["kind"] is None and msg["message_id"] is None and original is not None:
        told = _header(original)
        return f"duplicate of message {original['id']}" + (f": {told}" if told else "")
    return _header(msg, msg.get("received_version")) or "-"


def _header(m: dict[str, Any], received: str | None = None) -> str:
    version = m["version"] and (f"version {received} as received, upgraded to {m['version']}"
                                if received else f"version {m['version']}")
    return " ".join(part for part in (
        m["kind"], m["message_id"] and f"messageId {m['message_id']}",
        m["sender_id"] and f"from sender {m['sender_id']}", version) if part)


def export_lines(msg: dict[str, Any]) -> list[str]:
    """An export's row: which export it is of; an export: its rows per state, the
    quarantined ones not handled, and how to replay them."""
    out = []
    export, rows = msg.get("export"), msg.get("rows")
    if export is not None:
        # a row's ref is its export's and the row ("x.csv row 3"): the row said once
        part = msg["ref"].removeprefix(export["ref"]).strip() or msg["ref"]
        out.append(f"  export:    {part} of message {export['id']}"
                   f" ({export['source']} / {export['ref']})")
        if msg["state"] == "quarantined" and not msg["handled"]:
            out.append(f"  replay:    ech-gateway messages replay {msg['id']} (this row), or"
                       f" {export['id']} (every quarantined row of its export)")
    if rows is not None:
        out.append(f"  rows:      {rows['total']}: {_pairs(rows['states'])}")
        if rows["unhandled"]:
            ids = [str(i) for i in rows["unhandled_ids"]]
            more = rows["unhandled"] - len(ids)
            out.append(f"  unhandled: {rows['unhandled']} quarantined, not handled: {', '.join(ids)}"
                       + (f" and {more} more" if more else ""))
            out.append(f"  replay:    ech-gateway messages replay {msg['id']} processes them"
                       " again (once the mapping is fixed)")
    return out


def dead_letters(rows: list[tuple[int, str | None, dict[str, Any]]]) -> list[str]:
    """One line per dead delivery."""
    if not rows:
        return ["no dead letters"]
    out = [f"{'MSG':>6} {'DELIVERY':>8}  {'PARTNER':<10} {'ATTEMPTS':>8}  REASON"]
    for mid, _ref, d in rows:
        out.append(f"{mid:>6} {d['id']:>8}  {d['partner']:<10} {d['attempts']:>8}  {d['reason']}")
    return out


def candidates_text(candidates: list[dict[str, Any]]) -> list[str]:
    """One line per candidate of a message waiting for review."""
    return [f"{', '.join(c['keys']) or '(no keys)'}  {c['name']}  born {c['born'] or '?'}"
            + (f"  (person {c['person']})" if c.get("person") is not None else "")
            for c in candidates]


def case_detail(case: dict[str, Any]) -> list[str]:
    """A case and its messages in time order, both directions."""
    refs = [f"{label} {case[key]}" for key, label in (
        ("business_process_id", "businessProcessId"), ("our_reference", "our reference"),
        ("their_reference", "their reference")) if case[key]]
    out = [f"case {case['id']} with {case['partner']}, person {case['person'] or '-'}",
           f"  opened {iso(case['opened_at'])}, updated {iso(case['updated_at'])}"]
    if refs:
        out.append("  " + ", ".join(refs))
    out.append(f"  {'AT':<32} {'ID':>6} DIR {'KIND':<18} {'STATE':<12} DELIVERIES")
    for m in case["messages"]:
        deliveries = ", ".join(f"{d['partner']} {d['state']}" for d in m["deliveries"]) or "-"
        out.append(f"  {iso(m['at']):<32} {m['id']:>6} {m['direction']:<3} {m['kind'] or '?':<18}"
                   f" {m['state']:<12} {deliveries}")
    return out


def case_table(cases: list[dict[str, Any]]) -> list[str]:
    """One line per case."""
    out = [f"{'CASE':>6}  {'PARTNER':<10} {'PERSON':>6} {'MSGS':>4}  {'UPDATED':<32}"
           " BUSINESS PROCESS"]
    for c in cases:
        out.append(f"{c['id']:>6}  {c['partner']:<10} {c['person'] or '-':>6} {c['messages']:>4}"
                   f"  {iso(c['updated_at']):<32} {c['business_process_id'] or '-'}")
    return out
