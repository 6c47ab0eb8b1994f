"""Test a plugin against a real gateway: a real store, pipeline and dispatcher, in one event loop.

For plugin authors (and the gateway's own tests). A transport under test
gets messages fed through the built-in folder source; a source under test
delivers to ``collect``, a transport that records what it is sent. Either
way the test reads back what was committed (messages, deliveries) and
every :class:`~gateway.plugin_types.GatewayEvent`::

    async def test_delivers(tmp_path):
        async with harness(tmp_path, plugins=[my_plugin], transport="filedrop",
                           transport_options={"folder": "out"}) as gw:
            gw.feed("a.xml", sample_message("msg-1"))
            [delivery] = await gw.settled(1)
        assert delivery.state == "delivered"

A plugin that talks HTTP is tested against a real server: :func:`serve`
runs an aiohttp application on 127.0.0.1 (a simulator of the other side)
and gives its URL for the configuration. What a partner sends back (the
canton's answers) is fed with :meth:`Harness.from_partner`, the way the
partner's transport hands it to the gateway.

Nothing here is patched or simulated: it is the daemon's own ``Gateway``,
configured by a ``gateway.toml`` in the given folder.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sqlite3
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
import tomli_w
from aiohttp import web

from gateway.api import PluginOptions
from gateway.assembly import load_config, make_validator, schema_set
from gateway.contracts import Intake, RawInput
from gateway.daemon import Gateway
from gateway.ech0223 import PersonIdentificationLight, sample_person_event, write_message
from gateway.hookspecs import hookimpl
from gateway.outbound import OutboundItem, ReceiptSink, SendResult
from gateway.plugin_types import GatewayEvent, PluginContext, TransportType
from gateway.plugins import get_plugin_manager

__all__ = [
    "PARTNER",
    "SOURCE",
    "Delivery",
    "Harness",
    "Message",
    "drop",
    "harness",
    "running",
    "sample_message",
    "serve",
    "states",
    "until",
    "write_config",
]

#: The partner every message is routed to.
PARTNER = "partner"
#: The source messages come from.
SOURCE = "drop"
#: Delivery states after which nothing more happens without a receipt or an operator.
SETTLED = frozenset({"sent", "delivered", "dead", "rejected", "needs_review"})


def sample_message(message_id: str | None = None, *, seed: int = 0,
                   person: PersonIdentificationLight | None = None,
                   reference_message_id: str | None = None) -> bytes:
    """A valid eCH-0223 1.5 ``personEventMessage`` (UTF-8 XML), the same for the same arguments.

    :param person: the person it names (``personIdentification``), e.g. a resident of
        the registry under test, for a canton's message on the way back.
    :param reference_message_id: the message it answers (header ``referenceMessageId``).
    """
    message = sample_person_event(random.Random(seed), message_id=message_id)
    message.content.document = []  # XML alone carries no document files: it names none
    if person is not None:
        message = message.model_copy(update={"content": message.content.model_copy(
            update={"person_identification": person})})
    if reference_message_id is not None:
        message = message.model_copy(update={"header": message.header.model_copy(
            update={"reference_message_id": reference_message_id})})
    return write_message(message)


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Put a file into ``folder`` as a registry should: a hidden temporary name, then rename."""
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    return folder / name


def write_config(directory: Path, *, transport: str = "collect",
                 transport_options: Mapping[str, Any] | None = None, source: str = "folder",
                 source_options: Mapping[str, Any] | None = None,
                 settings: Mapping[str, Any] | None = None) -> Path:
    """Write ``directory/gateway.toml``: source :data:`SOURCE` routes to partner :data:`PARTNER`.

    :param transport: the partner's transport type, with ``transport_options``.
    :param source: the source type, with ``source_options``; the default folder
        source reads ``directory/in`` every 50 ms and moves taken files to ``done``.
        A folder source's folder is made here, as ``init`` makes it.
    :param settings: more tables, merged over the ones written (e.g. ``{"partners":
        {"partner": {"retry": {"max_attempts": 2}}}}``).
    :return: the configuration file.
    """
    if source_options is None and source == "folder":
        source_options = {"path": "in", "done_dir": "done", "poll_interval": "50ms", "settle": "0s"}
    if source == "folder" and source_options is not None:  # as init makes it: files may be fed
        # before the source has started
        (directory / source_options["path"]).mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "gateway": {"node_id": "test", "workers": 0, "drain_timeout": "5s"},
        "store": {"path": "gateway.db", "group_commit_delay": "1ms"},
        "dispatcher": {"idle_poll": "50ms"},
        "sources": {SOURCE: {"type": source, "route_to": [PARTNER], **(source_options or {})}},
        "partners": {PARTNER: {"transport": transport,
                               "retry": {"initial": "50ms", "jitter": 0},
                               transport: dict(transport_options or {})}},
    }
    _merge(config, settings or {})
    path = directory / "gateway.toml"
    path.write_bytes(tomli_w.dumps(config).encode("utf-8"))
    return path


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@asynccontextmanager
async def running(config: Path, pm: pluggy.PluginManager | None = None) -> AsyncIterator[Gateway]:
    """The gateway of ``config`` running in this event loop; drained and stopped on exit.

    :param pm: the plugins (default: the installed ones, as the daemon loads them).
    """
    pm = pm or get_plugin_manager()
    settings = load_config(config, pm)
    gateway = Gateway(settings, pm, make_validator(schema_set(settings)))
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    ready = asyncio.create_task(gateway.ready.wait())
    await asyncio.wait([task, ready], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if not gateway.ready.is_set():
        ready.cancel()
        if task.done():
            task.result()  # raises what stopped the start
        task.cancel()
        raise TimeoutError("the gateway did not get ready within 10 s")
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def serve(app: web.Application, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port while the block runs; yields its base URL.

    For the other side of a plugin that talks HTTP (a registry, a partner's
    API): ``http://127.0.0.1:<port>``, or ``https://`` with ``tls`` (a server
    context, e.g. made with ``trustme``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app, access_log=None)  # a plugin's URLs are its own business
    await runner.setup()
    try:
        await web.SockSite(runner, sock, ssl_context=tls).start()
        yield f"{'https' if tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
        sock.close()


def states(db: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of a read-only query on the gateway's database (it keeps running meanwhile)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true; :class:`AssertionError` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Message:
    """A stored input, as committed (``state``: routed, quarantined, duplicate, ...);
    ``sender_id``: its header senderId, as the normaliser gave it (``Normalised.sender_id``)."""

    id: int
    source: str
    ref: str
    state: str
    reason: str | None
    message_id: str | None
    sender_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery to a partner, as committed (``state``: pending, sent, delivered, dead, ...)."""

    id: int
    message: int
    partner: str
    state: str
    attempts: int
    reason: str | None
    message_id: str | None


class _Recorder:
    """The harness's own plugin: the ``collect`` transport and an event listener."""

    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []
        self.collected: list[OutboundItem] = []
        #: each running ``collect`` partner's intake, by partner name
        self.intakes: dict[str, Intake] = {}

    @hookimpl
    def gateway_transport_types(self) -> list[TransportType]:
        return [TransportType("collect", PluginOptions, self._collector,
                              "records every message it is sent (gateway.testing)")]

    @hookimpl
    def gateway_event(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def _collector(self, options: Any, context: PluginContext) -> _Collect:
        return _Collect(self.collected, self.intakes, context.name)


class _Collect:
    """A transport that keeps what it is sent; the send itself confirms delivery."""

    def __init__(self, collected: list[OutboundItem], intakes: dict[str, Intake],
                 name: str) -> None:
        self._collected = collected
        self._intakes = intakes
        self._name = name

    async def send(self, item: OutboundItem) -> SendResult:
        self._collected.append(item)
        return SendResult(awaits_receipt=False, detail="collected")

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        self._intakes[self._name] = intake
        try:
            await asyncio.Event().wait()
        finally:
            self._intakes.pop(self._name, None)


class Harness:
    """A running gateway around the plugin under test, and what it committed."""

    def __init__(self, directory: Path, gateway: Gateway, recorder: _Recorder) -> None:
        #: The gateway's folder (``gateway.toml``, ``gateway.db``, ``in``, ``done``).
        self.directory = directory
        self.gateway = gateway
        #: Every event, in the order the gateway announced them.
        self.events = recorder.events
        #: What the ``collect`` transport was sent (when the partner uses it).
        self.collected = recorder.collected
        self._intakes = recorder.intakes

    @property
    def inbox(self) -> Path:
        """The folder the default folder source reads."""
        return self.directory / "in"

    def feed(self, name: str, data: bytes) -> Path:
        """Drop ``data`` as file ``name`` into :attr:`inbox`."""
        return drop(self.inbox, name, data)

    async def from_partner(self, data: bytes, *, partner: str = PARTNER,
                           ref: str = "from-partner.xml") -> int:
        """Hand ``data`` to the gateway as a message ``partner`` sent (the canton's answer).

        As the partner's transport does: submitted with the partner's name as
        source, through the intake of its ``collect`` transport (the partner
        must use ``transport = "collect"``). Returns the stored input's id.
        """
        await until(lambda: partner in self._intakes, 5.0)
        [mid] = await self._intakes[partner].submit([RawInput(partner, ref, data)])
        return mid

    def messages(self) -> list[Message]:
        """Every stored input, oldest first."""
        rows = states(self._db, "SELECT id, source, ref, state, reason, message_id, sender_id"
                                " FROM messages ORDER BY id")
        return [Message(*row) for row in rows]

    def deliveries(self) -> list[Delivery]:
        """Every delivery, oldest first."""
        rows = states(self._db, "SELECT d.id, d.message, d.partner, d.state, d.attempts, d.reason,"
                                " m.message_id FROM deliveries d JOIN messages m ON m.id = d.message"
                                " ORDER BY d.id")
        return [Delivery(*row) for row in rows]

    def event_kinds(self) -> list[str]:
        """The kinds of :attr:`events`, in order."""
        return [e.kind for e in self.events]

    async def settled(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Wait until ``count`` deliveries are sent, delivered or given up; return all of them."""
        await until(lambda: sum(d.state in SETTLED for d in self.deliveries()) >= count, timeout)
        return self.deliveries()

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (see :func:`until`)."""
        await until(predicate, timeout)

    @property
    def _db(self) -> Path:
        return Path(self.gateway.settings.store.path)


@asynccontextmanager
async def harness(directory: Path, *, plugins: Iterable[object] = (), transport: str = "collect",
                  transport_options: Mapping[str, Any] | None = None, source: str = "folder",
                  source_options: Mapping[str, Any] | None = None,
                  settings: Mapping[str, Any] | None = None) -> AsyncIterator[Harness]:
    """Run a gateway in ``directory`` with ``plugins`` added to the installed ones.

    The arguments after ``plugins`` are those of :func:`write_config`. A plugin
    that is also installed (by its entry point) is used once.
    """
    pm = get_plugin_manager()
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    recorder = _Recorder()
    pm.register(recorder, name="gateway.testing")
    config = write_config(directory, transport=transport, transport_options=transport_options,
                          source=source, source_options=source_options, settings=settings)
    async with running(config, pm) as gateway:
        yield Harness(directory, gateway, recorder)
