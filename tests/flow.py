"""Helpers to run a real gateway in-process: a config folder, a stub transport, sample inputs.

Running the gateway, dropping files and reading the database back is
:mod:`gateway.testing`, the harness plugin authors use too.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import pluggy
from pydantic import BaseModel

from gateway import testing, worker_stages
from gateway.contracts import Intake, RawInput
from gateway.daemon import Gateway
from gateway.errors import PermanentError, TransientError
from gateway.hookspecs import hookimpl
from gateway.outbound import OutboundItem, ReceiptSink, SendResult
from gateway.person_state import PersonChange, StoredPerson
from gateway.plugin_types import PluginContext, TransportType
from gateway.plugins import get_plugin_manager
from gateway.testing import drop, states, until

__all__ = ["FIXTURES", "StubTransport", "drop", "message", "plugin_manager", "running",
           "sedex_partner", "states", "until", "write_config"]

FIXTURES = Path(__file__).parent / "fixtures" / "conformance"
_MESSAGE_ID = re.compile(rb"(<eCH-0039:messageId>)([^<]+)(</eCH-0039:messageId>)")
_DOCUMENT = re.compile(rb"\s*<eCH-0223:document[ >].*?</eCH-0223:document>", re.DOTALL)


def message(message_id: str | None = None, fixture: str = "valid-pem-minimal.xml",
            documents: bool = True) -> bytes:
    """A valid eCH-0223 1.5 message with a fresh (or the given) messageId.

    :param documents: keep the fixture's eCH-0039 documents; XML alone, without the files
        they name, is quarantined when it is to be sent.
    """
    data = (FIXTURES / fixture).read_bytes()
    if not documents:
        data = _DOCUMENT.sub(b"", data)
    new = (message_id or str(uuid.uuid4())).encode()
    out, n = _MESSAGE_ID.subn(lambda m: m.group(1) + new + m.group(3), data, count=1)
    assert n == 1, f"{fixture} has no eCH-0039:messageId"
    return out


def sedex_partner(sedex: Path, name: str, recipient_id: str, *, sender_id: str = "T1-2511-1",
                  inbox: str = "inbox", enabled: bool = True, settle: str = "50ms",
                  outbox: str = "outbox") -> str:
    """The TOML of another sedex partner on the sedex client's folders ``sedex``, beside the
    ``canton`` that ``init`` writes (its own inbox and outbox: ``inbox``, ``outbox`` there)."""
    folders = {"outbox": outbox, "inbox": inbox, "receipts": "receipts", "processed": "processed"}
    return (f'[partners.{name}]\ntransport = "sedex"\nenabled = {str(enabled).lower()}\n'
            f"[partners.{name}.sedex]\n"
            + "".join(f'{key} = "{sedex / folder}"\n' for key, folder in folders.items())
            + f'sender_id = "{sender_id}"\nrecipient_id = "{recipient_id}"\n'
            f'message_type = 1900223\npoll_interval = "50ms"\nsettle = "{settle}"\n')


class StubOptions(BaseModel):
    """Options of the in-memory ``stub`` transport."""

    fail_transient: int = 0
    fail_permanent: bool = False


class StubTransport:
    """An in-memory transport: records sends, fails as told, delivers at once."""

    sent: ClassVar[dict[str, list[OutboundItem]]] = {}

    def __init__(self, options: BaseModel, context: PluginContext) -> None:
        assert isinstance(options, StubOptions)
        self.options = options
        self.name = context.name
        self.sent[self.name] = []
        self.failures = 0

    async def send(self, item: OutboundItem) -> SendResult:
        if self.options.fail_permanent:
            raise PermanentError("partner refuses this message")
        if self.failures < self.options.fail_transient:
            self.failures += 1
            raise TransientError("partner unreachable")
        self.sent[self.name].append(item)
        return SendResult(awaits_receipt=False)

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        await asyncio.Event().wait()


class StubPlugin:
    """Registers the ``stub`` transport type."""

    @staticmethod
    @hookimpl
    def gateway_transport_types() -> list[TransportType]:
        return [TransportType("stub", StubOptions, StubTransport, "in-memory, for tests")]


def plugin_manager() -> pluggy.PluginManager:
    """The real plugins plus the stub transport."""
    pm = get_plugin_manager()
    pm.register(StubPlugin(), name="stub")
    return pm


def write_config(directory: Path, partner: str = "", extra: str = "") -> Path:
    """A gateway folder with a folder source routing to partner ``canton``."""
    (directory / "in").mkdir(parents=True, exist_ok=True)
    partner = partner or '[partners.canton]\ntransport = "stub"\n[partners.canton.stub]\n'
    config = directory / "gateway.toml"
    config.write_text(
        '[gateway]\nnode_id = "test"\n[store]\npath = "gateway.db"\n'
        '[dispatcher]\nidle_poll = "50ms"\n'
        '[sources.registry]\ntype = "folder"\npath = "in"\ndone_dir = "done"\n'
        'poll_interval = "50ms"\nsettle = "50ms"\ngrace = "300ms"\nroute_to = ["canton"]\n'
        f"{partner}\n{extra}\n"
    )
    return config


@asynccontextmanager
async def running(config: Path, pm: pluggy.PluginManager | None = None
                  ) -> AsyncIterator[Gateway]:
    """A gateway running in this event loop (the real plugins and the stub); stopped on exit."""
    async with testing.running(config, pm or plugin_manager()) as gateway:
        yield gateway


def seeded_states(base: RawInput, mid: int = 0) -> dict[str, StoredPerson]:
    """The persons base delivery ``base`` states, as enrichment finds them once it is
    recorded, by key: normalised and finished in this process as a worker (after
    ``worker_stages.init_worker``), as message ``mid``."""
    worker_stages.normalise_work([(mid, base)])
    [seeded] = worker_stages.finish_kept([mid], {}) or []
    known: dict[str, StoredPerson] = {}
    for change in seeded.persons:
        assert isinstance(change, PersonChange)
        known.update(dict.fromkeys(change.keys, StoredPerson(mid, change.merged)))
    return known
