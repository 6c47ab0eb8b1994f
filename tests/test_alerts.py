"""Operator alerts name what happened, without the personal data a reason may quote."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

import plugins.alerts
from gateway.dispatcher import Dispatcher, ReceiptRecorder
from gateway.events import Publisher
from gateway.intake_pause import IntakePause
from gateway.logs import redact
from gateway.plugin_types import GatewayEvent
from gateway.plugins import get_plugin_manager
from gateway.retry import RetryPolicy
from gateway.store import SQLiteStore
from plugins.alerts import gateway_event
from plugins.alerts._incidents import Incidents
from tests.stubs import StubIntake
from tests.test_sedex_transport import make_transport, write_receipt

SCHEMA_ERROR = (
    "invalid eCH-0223 1.5: line 31: Element '{http://www.ech.ch/xmlns/eCH-0044/4}vn':"
    " '7561234567897' is not a valid value of the atomic type 'vnType'; line 40: Element"
    " '{http://www.ech.ch/xmlns/eCH-0044/4}officialName': [facet 'maxLength'] The value"
    " 'Müller-Lüdenscheidt' has a length of 120"
)


def test_redact_removes_quoted_values_and_long_numbers() -> None:
    out = redact(SCHEMA_ERROR + " born 19800101")
    assert "7561234567897" not in out and "Müller" not in out and "19800101" not in out
    assert "{http://www.ech.ch/xmlns/eCH-0044/4}vn" in out, "element names stay"
    assert "line 31" in out


@pytest.mark.parametrize("text", [
    "document /docs/756.1234.5678.97_permit.pdf is empty", "scan_756.1234.5678.97.pdf",
    "vn756.1234.5678.97", "VN 7561234567897 bytes", "file 756 1234 5678 97-b.pdf"])
def test_redact_removes_a_vn_inside_a_file_name(text: str) -> None:
    """A documents pattern such as ``{vn_dotted}_permit.pdf`` puts the VN in a path."""
    assert "5678" not in redact(text) and "567897" not in redact(text)


def test_redact_keeps_references_and_removes_vn_numbers_with_dots() -> None:
    ref = "466ef20c-e33a-44dc-8e15-209874561eb1"  # an attempt reference with a digit run
    sha = "3e6b92b9764b3786091e5bb67e8ffb8c3271be4c977101da9fa14afa12fea171"
    out = redact(f"receipt 401 for attempt {ref}: VN 756.1234.5678.97 unknown;"
                 f" 1572864000 bytes, SHA-256 {sha}; born 19800101")
    assert ref in out and sha in out, "references must stay greppable"
    assert "1572864000 bytes" in out, "byte counts are not personal"
    assert "756.1234.5678.97" not in out and "5678" not in out and "19800101" not in out


def test_quarantine_alert_is_logged_without_personal_data(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("message.quarantined", 7, None, {"reason": SCHEMA_ERROR}))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "message 7 quarantined" in record.getMessage()
    assert "7561234567897" not in record.getMessage()
    assert "Müller" not in record.getMessage()


def test_uninteresting_events_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("delivery.delivered", 1, 2, {}))
    assert caplog.records == []


def test_a_waiting_receipt_is_logged_only_when_flagged(caplog: pytest.LogCaptureFixture) -> None:
    info = "701 not yet collected, expires soon (recipient T1-CH-1)"
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("receipt.wait", None, None,
                                   {"ref": "r-601", "code": "601", "alert": False, "info": "x"}))
        gateway_event(GatewayEvent("receipt.wait", None, None,
                                   {"ref": "r-701", "code": "701", "alert": True, "info": info}))
    [record] = caplog.records
    assert record.getMessage() == f"receipt for attempt r-701: {info}"


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def retry(delivery: int, partner: str = "canton", error: str = "cannot write to the outbox"
          ) -> GatewayEvent:
    return GatewayEvent("delivery.retry", delivery, delivery,
                        {"partner": partner, "attempt": 1, "error": error})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The alerts plugin's incidents on a hand-moved clock, one window = 60 s."""
    c = Clock()
    monkeypatch.setattr(plugins.alerts, "INCIDENTS",
                        Incidents(plugins.alerts.log, window=60.0, burst=2, clock=c))
    return c


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_failing_attempts_are_one_incident_with_summaries_and_an_end(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for n in range(1, 101):  # 100 failed attempts over 100 s
            gateway_event(retry(n, error=f"cannot write /out/{n}.xml: [Errno 30] read-only"))
            clock.now += 1.0
        gateway_event(GatewayEvent("delivery.sent", 7, 101, {"partner": "canton", "ref": "r"}))
        assert len(said(caplog)) == 3, "it ends once the partner has worked for a window"
        clock.now += 60.0
        plugins.alerts.INCIDENTS.sweep()  # (the daemon's timer)
    lines = said(caplog)
    assert lines[0].startswith("delivery 1 of message 1 to canton failed (attempt 1)")
    assert lines[1].endswith("(more like this are summarised)")
    assert lines[2] == ("delivery.retry for canton: 59 more in the last 60s (deliveries 3, 4, 5,"
                        " 6, 7, 8, 9, 10, 11, 12, …): the last: cannot write /out/61.xml:"
                        " [Errno 30] read-only")
    assert lines[3].startswith("delivery.retry for canton: 39 more in the last 40s (deliveries 62,")
    assert lines[4] == ("delivery.retry for canton: works again after 100s, 100 in all"
                        " (the last: cannot write /out/100.xml: [Errno 30] read-only)")
    assert len(lines) == 5


def test_a_single_failure_ends_without_a_second_warning(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        gateway_event(retry(1, error="receipt 400: network error"))
        clock.now += 2.0
        gateway_event(GatewayEvent("delivery.sent", 1, 2, {"partner": "canton", "ref": "r"}))
        clock.now += 60.0
        plugins.alerts.INCIDENTS.sweep()
    [warning] = said(caplog)
    assert warning.startswith("delivery 1 of message 1 to canton failed (attempt 1)")
    [end] = [r for r in caplog.records if "works again" in r.getMessage()]
    assert (end.levelno, end.getMessage()) == (
        logging.INFO, "delivery.retry for canton: works again after 2s, 1 in all"
                      " (receipt 400: network error)")


def test_a_partner_that_fails_now_and_then_between_successes_is_one_incident(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """A flapping partner (a failure every few successes, as a busy canton's 503s or sedex's
    occasional 400 network error) is one incident, not one per failure."""
    with caplog.at_level(logging.INFO):
        for n in range(1, 302):  # ten minutes: a delivery every 2 s, every fifth fails
            if n % 5:
                gateway_event(GatewayEvent("delivery.sent", n, n, {"partner": "canton",
                                                                   "ref": f"r{n}"}))
            else:
                gateway_event(retry(n, error="receipt 400: network error"))
            clock.now += 2.0
        clock.now += 60.0
        plugins.alerts.INCIDENTS.sweep()
    lines = said(caplog)
    assert lines[0].startswith("delivery 5 of message 5 to canton failed (attempt 1)")
    assert lines[1].endswith("(more like this are summarised)")
    summaries = lines[2:-1]
    assert 2 <= len(summaries) <= 5, summaries
    assert sum(int(s.split()[3]) for s in summaries) == 58, "all 60 failures are told"
    assert lines[-1] == ("delivery.retry for canton: works again after 10min, 60 in all"
                         " (receipt 400: network error)")


async def test_the_end_of_an_incident_is_said_a_window_after_the_partner_works_again(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(plugins.alerts, "INCIDENTS", Incidents(plugins.alerts.log, window=0.05))
    with caplog.at_level(logging.INFO):
        gateway_event(retry(1))
        gateway_event(GatewayEvent("delivery.sent", 2, 2, {"partner": "canton", "ref": "r"}))
        assert not [r for r in caplog.records if "works again" in r.getMessage()]
        await asyncio.sleep(0.2)
    [end] = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert end.startswith("delivery.retry for canton: works again after 0s, 1 in all")


def test_the_stop_says_what_the_open_incidents_hold(clock: Clock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A stop within the window loses nothing: the alerts counted are summarised, a partner
    that works again says so, an incident still failing says it is open; one over, and a
    quarantined input (each told already), say nothing more."""
    with caplog.at_level(logging.INFO):
        gateway_event(retry(1, "archive", "outbox missing"))  # over once an hour has passed
        clock.now += 3600.0
        for n in range(2, 12):  # canton fails 10 times, then takes a delivery
            gateway_event(retry(n, "canton", "outbox full"))
            clock.now += 1.0
        gateway_event(GatewayEvent("delivery.sent", 12, 12, {"partner": "canton", "ref": "r"}))
        for n in range(13, 18):  # sedex-b fails 5 times and still does at the stop
            gateway_event(retry(n, "sedex-b", "permission denied"))
            clock.now += 2.0
        gateway_event(GatewayEvent("message.quarantined", 18, None,
                                   {"reason": "not XML", "source": "registry"}))
        clock.now += 20.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    assert len(caplog.records) - before == 4, "nothing more of the quarantined input"
    assert said(caplog)[-4:] == [
        "delivery.retry for canton: 8 more in the last 10s (deliveries 4, 5, 6, 7, 8, 9, 10,"
        " 11): outbox full",
        "delivery.retry for canton: works again after 10s, 10 in all (outbox full)",
        "delivery.retry for sedex-b: 3 more in the last 30s (deliveries 15, 16, 17):"
        " permission denied",
        "delivery.retry for sedex-b: open at the stop, after 30s, 5 in all (permission denied)",
    ]
    assert not [r for r in caplog.records if "archive" in r.getMessage()
                and "open at the stop" in r.getMessage()]


def test_different_partners_and_faults_are_different_incidents(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for n in range(5):
            gateway_event(retry(n, "canton", "outbox full"))
            gateway_event(retry(n, "archive", "outbox full"))
            gateway_event(retry(n, "canton", "permission denied"))
    assert len(said(caplog)) == 6, "two lines of each of three incidents, the rest counted"


def test_a_quiet_window_ends_an_incident(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    dead = GatewayEvent("delivery.dead", 1, 1, {"partner": "canton", "attempt": 10,
                                                "error": "down", "why": "retries exhausted"})
    with caplog.at_level(logging.INFO):
        gateway_event(dead)
        clock.now += 61
        gateway_event(dead)
    assert len(said(caplog)) == 2, "a dead letter after a quiet minute is news again"


def test_a_flood_of_dead_letters_is_summarised(clock: Clock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for n in range(1, 201):
            gateway_event(GatewayEvent("delivery.dead", n, n, {
                "partner": "canton", "attempt": 10, "error": "down",
                "why": "retries exhausted after 10 attempts"}))
        clock.now += 60
        gateway_event(GatewayEvent("delivery.dead", 201, 201, {
            "partner": "canton", "attempt": 10, "error": "down",
            "why": "retries exhausted after 10 attempts"}))
    lines = said(caplog)
    assert len(lines) == 3
    assert lines[2].startswith("delivery.dead for canton: 199 more in the last 60s (deliveries 3,")
    assert lines[2].endswith("retries exhausted after 10 attempts")


async def test_a_summary_comes_on_time_without_further_alerts(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins.alerts, "INCIDENTS",
                        Incidents(plugins.alerts.log, window=0.05, burst=1))
    with caplog.at_level(logging.INFO):
        for n in range(10):
            gateway_event(retry(n))
        await asyncio.sleep(0.2)
    lines = said(caplog)
    assert len(lines) == 2 and lines[1].startswith("delivery.retry for canton: 9 more")


async def test_an_unmatched_receipt_is_told_once(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    transport = make_transport(tmp_path)
    write_receipt(tmp_path / "receipts", "Q.xml", "ref-unknown", 100)
    store = SQLiteStore(tmp_path / "g.db", group_commit_delay=0.001)
    store.on_commit(Publisher(get_plugin_manager()))
    store.start()
    try:
        dispatcher = Dispatcher(store, {}, {}, {}, node="t", lease=60, batch_size=10,
                                idle_poll=1.0)
        recorder = ReceiptRecorder(store, dispatcher, IntakePause(get_plugin_manager()))
        with caplog.at_level(logging.INFO):
            assert await transport.scan_receipts(recorder, StubIntake()) == 1
    finally:
        store.close()
    [line] = said(caplog)
    assert line.startswith("receipt 100 for attempt ref-unknown, which is none of ours")
    assert (tmp_path / "receipts-done" / "unmatched" / "Q.xml").exists()


def test_one_delivery_retried_for_days_is_one_incident(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """FIELD.md, Mirth #1288: one alert per incident, not per attempt. Under the default
    retry policy the attempts of a failing delivery soon come an hour apart, far more
    than a quiet window; they stay one incident, told in a few summaries."""
    c = Clock()
    monkeypatch.setattr(plugins.alerts, "INCIDENTS", Incidents(plugins.alerts.log, clock=c))
    policy = RetryPolicy()
    first = now = 1_000_000.0
    attempts = 0
    with caplog.at_level(logging.INFO):
        while True:
            attempts += 1
            at = policy.next_attempt_at(attempts, first, now)
            if at is None:
                gateway_event(GatewayEvent("delivery.dead", 7, 9, {
                    "partner": "canton", "attempt": attempts, "error": "HTTP 503",
                    "why": policy.why_not(attempts)}))
                break
            gateway_event(GatewayEvent("delivery.retry", 7, 9, {
                "partner": "canton", "attempt": attempts, "error": "HTTP 503",
                "next_attempt_at": time.time() + (at - now)}))
            c.now += at - now
            now = at
    lines = said(caplog)
    assert attempts > 50, "the default policy retries for two days"
    assert lines[0].startswith("delivery 9 of message 7 to canton failed (attempt 1)")
    assert lines[-1].startswith("delivery 9 of message 7 to canton is a dead letter")
    summaries = [line for line in lines if line.startswith("delivery.retry for canton: ")]
    told = 3 + sum(int(line.split()[3]) for line in summaries)
    assert told == attempts - 1, "every failed attempt is told, one by one or counted"
    assert len(lines) == 3 + len(summaries) + 1, "no attempt opened an incident of its own"
    assert len(summaries) <= 20, f"{len(summaries)} summaries for {attempts} attempts"
    assert summaries[0].startswith("delivery.retry for canton: 4 more in the last 6")
    assert all(line.endswith(" (deliveries 9): HTTP 503") for line in summaries), summaries
    assert summaries[-1].startswith("delivery.retry for canton: 4 more in the last 4.0h"
                                    " (deliveries 9)"), "summaries back off to hours apart"


def _rejected(n: int) -> GatewayEvent:
    return GatewayEvent("delivery.rejected", n, n, {
        "partner": "canton", "answer": 100 + n,
        "reason": f"negative eventReport from canton (message {100 + n}): 2001 Dokument fehlt"})


def test_verdicts_on_one_message_are_not_open_at_the_stop(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """A rejection, a dead letter, a message or delivery to review is not a partner's
    failure that goes on: at the stop what was held back of them is summarised, and none
    is said to be open; the partner's failing attempts still are."""
    with caplog.at_level(logging.INFO):
        for n in range(1, 5):
            gateway_event(_rejected(n))
            gateway_event(GatewayEvent("delivery.dead", n, n, {
                "partner": "canton", "attempt": 3, "error": "HTTP 400", "why": "permanent"}))
            gateway_event(GatewayEvent("delivery.needs_review", n, n, {
                "partner": "canton", "code": "999", "info": "unknown status"}))
            gateway_event(GatewayEvent("message.needs_review", 10 + n, None, {
                "partner": "canton", "candidates": 0, "reason": "no resident matches"}))
            clock.now += 1.0
        gateway_event(retry(9, "sedex-b", "permission denied"))
        clock.now += 5.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    lines = [r.getMessage() for r in caplog.records[before:]]
    assert [line for line in lines if "open at the stop" in line] == [
        "delivery.retry for sedex-b: open at the stop, after 5s, 1 in all (permission denied)"]
    assert sorted(line.split(":")[0] for line in lines if " more in the last " in line) == [
        "delivery.dead for canton", "delivery.needs_review for canton",
        "delivery.rejected for canton", "message.needs_review for canton"]


def test_a_partner_resumed_is_no_pause_open_at_the_stop(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    paused = GatewayEvent("partner.paused", None, None, {
        "partner": "canton", "node": "n1", "error": "outbox read-only"})
    with caplog.at_level(logging.INFO):
        gateway_event(paused)
        clock.now += 10.0
        gateway_event(GatewayEvent("partner.resumed", None, None, {
            "partner": "canton", "node": "n1", "paused_for": 10, "error": "outbox read-only",
            "deliveries": 3}))
        clock.now += 5.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    assert [r.getMessage() for r in caplog.records[before:]] == [
        "partner.paused for canton: works again after 10s, 1 in all"]
    with caplog.at_level(logging.INFO):  # still paused at the stop: open
        gateway_event(paused)
        clock.now += 5.0
        plugins.alerts.INCIDENTS.stop()
    assert caplog.records[-1].getMessage() == (
        "partner.paused for canton: open at the stop, after 5s, 1 in all")


def test_a_message_waiting_for_review_is_an_alert_without_personal_data(
        caplog: pytest.LogCaptureFixture) -> None:
    reason = ("2 residents match the person of this message (by names and date of birth):"
              " assign one with `ech-gateway messages assign 7 --person VN|LOCALID`")
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("message.needs_review", 7, None, {
            "partner": "canton", "candidates": 2, "reason": reason}))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "message 7 from canton waits for review (2 candidates): 2 residents match the person"
        " of this message (by names and date of birth): assign one with `ech-gateway"
        " messages assign 7 --person VN|LOCALID`")


def _space(kind: str, free: int) -> GatewayEvent:
    return GatewayEvent(kind, None, None, {"folder": "/var/lib/gateway", "free_bytes": free,
                                           "threshold_bytes": 1 << 30})


def test_a_disk_low_on_space_is_open_at_the_stop_until_it_has_room_again(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """``store.space_low`` is committed once per incident, not per attempt: hours after it
    was said, with nothing said since, it is still open at the stop; ``store.space_ok``
    ends it."""
    with caplog.at_level(logging.INFO):
        gateway_event(_space("store.space_low", 1 << 20))
        clock.now += 3 * 3600.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    assert [r.getMessage() for r in caplog.records[before:]] == [
        "store.space_low: open at the stop, after 3.0h, 1 in all"]
    with caplog.at_level(logging.INFO):  # the next run: low at its start, then room again
        gateway_event(_space("store.space_low", 1 << 20))
        clock.now += 600.0
        gateway_event(_space("store.space_ok", 2 << 30))
        clock.now += 5.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    assert [r.getMessage() for r in caplog.records[before:]] == [
        "store.space_low: has room again after 10min, 1 in all"]


def test_a_pause_not_resumed_is_open_at_the_stop_however_long_ago_it_began(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """``partner.paused`` is committed once per pause: a pause of an hour, still on, is
    open at the stop though nothing was said of it for an hour."""
    with caplog.at_level(logging.INFO):
        gateway_event(GatewayEvent("partner.paused", None, None, {
            "partner": "canton", "node": "n1", "error": "outbox read-only"}))
        clock.now += 3600.0
        before = len(caplog.records)
        plugins.alerts.INCIDENTS.stop()
    assert [r.getMessage() for r in caplog.records[before:]] == [
        "partner.paused for canton: open at the stop, after 1.0h, 1 in all"]
