"""What a plugin's sources and transports are, what they are given, and what plugins declare.

The running side of the plugin API: the :class:`Source` and :class:`Transport`
protocols, the :class:`PluginContext` the core creates them with, the HTTP
routes they may serve, the option protocols ``check-config`` and the commands
ask for, and the types plugins declare (:class:`SourceType`,
:class:`TransportType`, :class:`Command`) or hear (:class:`GatewayEvent`).
The records that flow through them are in :mod:`gateway.contracts`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from gateway.contracts import Intake, NormaliseContext
from gateway.outbound import OutboundItem, ReceiptSink, SendResult

if TYPE_CHECKING:
    from aiohttp import web


class Source(Protocol):
    """A running source: obtains inputs and submits them until cancelled."""

    async def run(self, intake: Intake) -> None:
        """Obtain inputs and submit them to ``intake``; return when cancelled."""
        ...


class Transport(Protocol):
    """A running transport for one partner.

    Optional capabilities are protocols of their own: :class:`BatchTransport`
    (``send_many``), :class:`Flushable` (``flush``) and :class:`Probeable`
    (``probe``). The dispatcher uses them where a transport implements them.
    """

    async def send(self, item: OutboundItem) -> SendResult:
        """Deliver one attempt or raise TransientError (UnsureError: it may have arrived)
        / PermanentError."""
        ...

    async def run(self, receipts: ReceiptSink, intake: Intake) -> None:
        """Background work until cancelled: poll receipts, take inbound messages.

        Inbound messages from the partner are submitted to ``intake`` with the
        partner's name as source.
        """
        ...


@runtime_checkable
class BatchTransport(Protocol):
    """A transport that handles a batch better than one item at a time (a thread, one request)."""

    async def send_many(self, items: Sequence[OutboundItem]) -> list[SendResult | Exception]:
        """One element per item: the result, or the TransientError / PermanentError
        that ``send`` would have raised. Used by the dispatcher instead of ``send``."""
        ...


@runtime_checkable
class Flushable(Protocol):
    """A transport that buffers (e.g. writes files without syncing each one)."""

    async def flush(self) -> None:
        """Make the batch sent since the last flush durable.

        Called once after a batch of sends and before they are recorded as
        sent; if it raises, the attempts of the batch are repeated as the same
        attempts after their retry delay (they may have reached the partner).
        """
        ...


@runtime_checkable
class Probeable(Protocol):
    """A transport that can tell, without sending, whether the fault on this machine that
    paused its partner (:class:`~gateway.errors.LocalFault`, :class:`~gateway.errors.LocalHang`)
    is over."""

    async def probe(self) -> None:
        """Return if a send could go through now; raise :class:`~gateway.errors.LocalFault`
        if not. Cheap, bounded in time, and away from the event loop (a folder that hangs).

        Called when a paused partner's probe is due, before its one waiting attempt is
        sent: a probe that fails sends nothing, so that no send waits on the fault.
        """
        ...


#: Answers one HTTP request (an ``aiohttp.web`` handler).
HttpHandler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One route of the gateway's HTTP server (``[http] listen``).

    :param method: ``"GET"``, ``"POST"``...
    :param path: an ``aiohttp`` path, e.g. ``"/sources/{name}/messages"``.
    :param handler: ``async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response``.
    """

    method: str
    path: str
    handler: HttpHandler


class HttpRoutes:
    """Where a source or transport registers the HTTP routes it serves (its :class:`PluginContext`).

    The daemon serves them once it runs the plugin; without ``[http] listen``
    a plugin that registers routes stops the start with a configuration error.
    """

    def __init__(self) -> None:
        self.routes: list[HttpRoute] = []

    def add(self, method: str, path: str, handler: HttpHandler) -> None:
        """Serve ``method path`` with ``handler``."""
        self.routes.append(HttpRoute(method, path, handler))


#: Runs ``fn(*args)`` away from the event loop and returns its result (see PluginContext).
Offload = Callable[..., Awaitable[Any]]


async def in_thread(fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """``fn(*args)`` in a thread; the :data:`Offload` used where the gateway has no worker
    processes.

    A thread of its own, which nothing waits for at exit: a call that never
    returns (a file system that hangs) holds up no stop once its caller gave up.

    :raises TimeoutError: ``fn`` did not return within ``timeout`` seconds (its
        thread is left behind).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result, error = context.run(fn, *args), None
        except BaseException as exc:  # the caller's, whatever it is
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, done, result, error)

    threading.Thread(target=run, daemon=True).start()
    async with asyncio.timeout(timeout):
        return await done


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Hand a thread's outcome to the future its caller awaits, unless the caller gave up."""
    if done.cancelled():
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What the core tells a source or transport when creating it.

    :param name: the configured name (``[sources.<name>]``/``[partners.<name>]``).
    :param data_dir: a directory the plugin may use for its own files.
    :param normalise: the limits for untrusted input.
    :param settings: the whole validated configuration, read-only.
    :param offload: ``await offload(fn, *args)`` runs ``fn(*args)`` in one of the
        gateway's worker processes (``[gateway] workers``; a thread when there
        are none, or while they cannot start) and returns its result. For
        CPU-bound work such as parsing and checking files: the event-loop
        process is the one every message passes through. ``fn`` must be a
        module-level function, its arguments and result picklable, and it must
        not rely on state of this process.
        Raises :class:`~gateway.errors.WorkerLost` if the worker died meanwhile.
        ``offload(fn, *args, timeout=seconds)`` gives up on ``fn`` when it takes
        longer (``TimeoutError``): its worker is killed and replaced (or its
        thread left behind), and nothing waits for either.
    :param routes: where the plugin registers the HTTP routes it serves
        (``context.routes.add("POST", "/sources/<name>/messages", handler)``).
    """

    name: str
    data_dir: Path
    normalise: NormaliseContext
    settings: Any
    offload: Offload = in_thread
    routes: HttpRoutes = field(default_factory=HttpRoutes)


#: Builds a source from its parsed options (an instance of the type's ``options`` model).
SourceFactory = Callable[[Any, PluginContext], Source]
#: Builds a transport from its parsed options (an instance of the type's ``options`` model).
TransportFactory = Callable[[Any, PluginContext], Transport]


@dataclass(frozen=True, slots=True)
class WritablePath:
    """A folder a plugin's options name, where the gateway must be able to write.

    :param key: the option that names it (``"outbox"``), for ``check-config``'s report.
    :param path: the folder.
    :param created: the plugin creates it when it is missing; otherwise it must exist
        (a folder another program owns, such as the sedex client's).
    :param archive: the plugin keeps copies here of what the gateway took or recorded
        (files once stored, receipts once recorded): the store holds them too, so
        retention deletes each file ``[retention] keep_files`` after it was moved here.
    :param derived_from: the option this folder's place comes from while ``key`` is
        unset (the sedex staging folder: inside ``outbox``); ``check-config`` then
        names that option, the one the operator wrote, and says which folder it is.
    :param timeout: seconds one call into it may take before it is given up on (a
        network share that hangs): the plugin's own (``write_timeout``), which bounds
        retention's calls into an archive folder too; ``None``:
        :data:`~gateway.archives.CALL_TIMEOUT`.
    """

    key: str
    path: Path
    created: bool = False
    archive: bool = False
    derived_from: str | None = None
    timeout: float | None = None


@runtime_checkable
class WritablePaths(Protocol):
    """Options that name folders the gateway writes in; ``check-config`` checks them."""

    def writable_paths(self) -> list[WritablePath]:
        """Every such folder."""
        ...


@runtime_checkable
class InputMetadata(Protocol):
    """Options of a source that tells the normalisers something of each file it takes.

    Commands that process a file as if that source had taken it (``rules explain
    --source``, ``map-test``) ask for the same metadata the source would give.
    """

    def input_meta(self, name: str) -> dict[str, str]:
        """The :attr:`RawInput.meta` of a file called ``name`` (``content_type``, ``mapping``...)."""
        ...


@runtime_checkable
class Participants(Protocol):
    """Options of a transport that know who talks on it (sedex: the participant ids).

    A message the gateway writes itself (a manual send) takes its header's
    ``senderId`` and ``recipientId`` from the options of the partner's transport.
    """

    def participants(self) -> tuple[str, tuple[str, ...]]:
        """Our participant id (``senderId``) and the partner's (``recipientId`` values)."""
        ...


@dataclass(frozen=True, slots=True)
class SourceType:
    """A kind of source a plugin provides (``type = "<name>"`` in config).

    :param options: the pydantic model of its ``[sources.<name>]`` keys. Keys it
        does not declare are refused, unless the model says otherwise
        (``model_config = ConfigDict(extra="allow")`` or ``"ignore"``).
    :param plugin: set by the core: the name of the plugin that declared it.
    """

    name: str
    options: type[BaseModel]
    factory: SourceFactory
    description: str = ""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class TransportType:
    """A kind of transport a plugin provides (``transport = "<name>"``).

    :param options: the pydantic model of its ``[partners.<name>.<type>]`` keys. Keys it
        does not declare are refused, unless the model says otherwise
        (``model_config = ConfigDict(extra="allow")`` or ``"ignore"``).
    :param plugin: set by the core: the name of the plugin that declared it.
    """

    name: str
    options: type[BaseModel]
    factory: TransportFactory
    description: str = ""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Command:
    """A command a plugin adds to the ``ech-gateway`` CLI.

    :param configure: adds the command's arguments to its argparse parser.
    :param run: runs it with the parsed arguments; returns the exit code.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A notification of something that happened, after it was committed.

    :param kind: one of :data:`gateway.events.KINDS`, e.g. ``message.quarantined``,
        ``delivery.delivered``, ``delivery.dead``, ``receipt.overdue``, or of
        :data:`gateway.events.DIRECT` (``store.lost``...), the few emitted
        directly because the store is what failed.
    :param message: the id of the message it is about (``None`` only for a
        receipt that matches no attempt, and for partner, intake and store events).
    :param delivery: the id of the delivery it is about (``None`` for message events).
    :param detail: the journal entry's detail, as :data:`gateway.events.KINDS` lists it.
    """

    kind: str
    message: int | None = None
    delivery: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

