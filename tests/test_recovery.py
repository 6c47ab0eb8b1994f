"""Recover without a restart, and a local fault is not the partner's fault (issue 7, items 6-7).

Faults are real: the sedex outbox deleted and created again, read-only
through a bind mount, the database on a small tmpfs filled up, the database
file deleted under the running daemon. Mounts happen in a private mount
namespace (:mod:`tests.mounts`); those scenarios run in a child process.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.api import GatewayEvent, hookimpl
from gateway.daemon import Gateway
from gateway.plugins import get_plugin_manager
from tests.flow import drop, message, running, states, until
from tests.mounts import read_only, run_isolated, writable
from tests.test_sedex_e2e import gateway_dir

MESSAGES = 20


class Events:
    """A ``gateway_event`` listener keeping every event."""

    def __init__(self) -> None:
        self.seen: list[GatewayEvent] = []

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        self.seen.append(event)

    def kinds(self, prefix: str) -> list[str]:
        return [e.kind for e in self.seen if e.kind.startswith(prefix)]


class Alerts(logging.Handler):
    """The WARNING-and-above lines of the ``gateway`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def alerts() -> Iterator[Alerts]:
    handler = Alerts()
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def fast_probes(gateway: Gateway) -> None:
    """Probe a paused partner every 0.1-0.4 s instead of 2-60 s (the test's time)."""
    gateway.dispatcher.pauses.first, gateway.dispatcher.pauses.longest = 0.1, 0.4


def deliveries(db: Path) -> list[tuple[str, int]]:
    return states(db, "SELECT state, attempts FROM deliveries ORDER BY id")


def journal_count(db: Path, event: str) -> int:
    return int(states(db, "SELECT count(*) FROM journal WHERE event = ?", (event,))[0][0])


async def _outage_then_recovery(root: Path, break_outbox: object, mend_outbox: object) -> None:
    """Send while the outbox is broken, mend it: no attempt burned, one alert, all sent."""
    config = gateway_dir(root)
    db, outbox = root / "gateway.db", root / "sedex" / "outbox"
    events = Events()
    pm = get_plugin_manager()
    pm.register(events)
    with alerts() as log:
        async with running(config, pm) as gateway:
            fast_probes(gateway)
            break_outbox()  # type: ignore[operator]
            for n in range(MESSAGES):
                drop(root / "registry" / "outbox", f"m{n}.xml", message())
            await until(lambda: len(deliveries(db)) == MESSAGES
                        and journal_count(db, "partner.paused") == 1)
            await asyncio.sleep(1.5)  # several probes meet the fault
            assert {d for d in deliveries(db)} <= {("sending", 1), ("queued", 0)}
            assert journal_count(db, "partner.resumed") == 0
            mend_outbox()  # type: ignore[operator]
            await until(lambda: deliveries(db) == [("sent", 1)] * MESSAGES)
    # every delivery went out on its first attempt, as one sedex message each
    assert len(list(outbox.glob("envl_*.xml"))) == MESSAGES
    assert states(db, "SELECT count(*) FROM attempts")[0][0] == MESSAGES
    assert journal_count(db, "delivery.retry_wait") == journal_count(db, "delivery.dead") == 0
    assert (journal_count(db, "partner.paused"), journal_count(db, "partner.resumed")) == (1, 1)
    assert events.kinds("partner.") == ["partner.paused", "partner.resumed"]
    assert not events.kinds("delivery.transient_failure")
    paused = [line for line in log.lines if "paused" in line]
    assert len(paused) == 1, log.lines
    assert "partner canton paused" in paused[0]
    assert len(log.lines) == 2, log.lines  # the pause and the resumption, nothing per delivery


async def test_sedex_outbox_deleted_and_created_again_resumes(tmp_path: Path) -> None:
    outbox = tmp_path / "sedex" / "outbox"
    await _outage_then_recovery(tmp_path, lambda: shutil.rmtree(outbox), outbox.mkdir)


async def outbox_read_only(root: str) -> None:
    """(In a private mount namespace.) The outbox is read-only for a while."""
    outbox = Path(root) / "sedex" / "outbox"
    await _outage_then_recovery(Path(root), lambda: read_only(outbox), lambda: writable(outbox))


def test_sedex_outbox_read_only_for_a_while_burns_no_attempt(tmp_path: Path) -> None:
    run_isolated("tests.test_recovery:outbox_read_only", str(tmp_path))
