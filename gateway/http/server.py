"""Serving the routes of sources, transports and plugins on ``[http] listen``."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pluggy
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.config import CONFIGURATION
from gateway.config._http import HttpSettings
from gateway.errors import ConfigError
from gateway.plugin_types import HttpRoute

log = logging.getLogger(__name__)

#: The most connections open at once, TLS connections whose handshake is under way among
#: them; one more is answered 503 and closed at once, so that clients that hold connections
#: open cannot take the file descriptors the sources, the store and the transports need.
MAX_CONNECTIONS = 256
#: Seconds a connection may stay open without a request under way: a request's headers
#: must have come in full by then (counted from the connection's start, or from the
#: previous answer), and an idle kept-alive connection is closed; also the most a TLS
#: handshake may take.
IDLE_TIMEOUT = 30.0
#: Seconds between log lines about requests the client broke (:class:`_ClientFaults`).
CLIENT_FAULTS_LOGGED_EVERY = 60.0
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json"
         b"\r\nContent-Length: 52\r\nConnection: close\r\n\r\n"
         b'{"error": "too many connections open, try again"}\r\n')


def collect_routes(settings: Any, pm: pluggy.PluginManager,
                   registered: Iterable[tuple[str, Sequence[HttpRoute]]]) -> list[HttpRoute]:
    """The routes to serve: those ``registered`` (by whom) and those of ``gateway_http_routes``.

    :raises ConfigError: routes are registered but ``[http] listen`` is unset,
        or two routes share method and path.
    """
    owners: dict[tuple[str, str], str] = {}
    routes: list[HttpRoute] = []
    problems: list[tuple[str, str, str]] = []
    registered = [(who, list(rs)) for who, rs in registered if rs]
    if settings.http.listen is None:
        if registered:
            raise ConfigError([(CONFIGURATION, "http.listen", f"{who} serves HTTP"
                                f" ({rs[0].method} {rs[0].path}): set [http] listen")
                               for who, rs in registered])
        return []
    plugins = [("a plugin (gateway_http_routes)", list(rs))
               for rs in pm.hook.gateway_http_routes(settings=settings)]
    for who, rs in [*registered, *plugins]:
        for route in rs:
            key = (route.method.upper(), route.path)
            if key in owners:
                problems.append((CONFIGURATION, "http", f"{who} and {owners[key]} both serve"
                                 f" {key[0]} {key[1]}"))
                continue
            owners[key] = who
            routes.append(route)
    if problems:
        raise ConfigError(problems)
    return routes


def loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


class HttpServer:
    """The ``aiohttp`` server of the daemon: started after the sources, stopped first on drain."""

    def __init__(self, settings: HttpSettings, routes: Sequence[HttpRoute], *,
                 shutdown_timeout: float, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        """:param shutdown_timeout: how long requests in progress may take to finish on stop.
        :param max_connections: see :data:`MAX_CONNECTIONS`.
        :param idle_timeout: see :data:`IDLE_TIMEOUT`."""
        address = settings.address
        assert address is not None
        self.host, self.port = address
        self._tls = settings.tls.context()
        app = web.Application()
        for route in routes:
            app.router.add_route(route.method, route.path, route.handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=shutdown_timeout,
                                     keepalive_timeout=idle_timeout, logger=_ClientFaults(log))
        self.max_connections, self.idle_timeout = max_connections, idle_timeout
        #: Connections answered 503 (closed, with TLS) since the last log line about it.
        self.turned_away = 0
        #: TLS connections whose handshake is under way (not yet the server's connections).
        self.handshakes: set[_Handshake] = set()

    @property
    def scheme(self) -> str:
        """``https`` with ``[http.tls]``, else ``http``."""
        return "https" if self._tls is not None else "http"

    async def start(self) -> None:
        """Listen; :attr:`port` is then the port bound (``listen`` may say 0).

        :raises ConfigError: the address cannot be bound (in use, not this machine's).
        """
        await self._runner.setup()
        site = _CappedSite(self._runner, self.host, self.port, self._tls, self)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError([(CONFIGURATION, "http.listen", f"cannot listen on"
                                f" {self.host}:{self.port}: {exc.strerror or exc}")]) from exc
        self.port = self._runner.addresses[0][1]
        log.info("HTTP server on %s://%s:%d", self.scheme, self.host, self.port)
        if self._tls is None and not loopback(self.host):
            log.warning("HTTP server on %s:%d without TLS: tokens and personal data cross the"
                        " network in the clear unless a proxy in front terminates TLS; set"
                        " [http.tls], or listen on 127.0.0.1 behind the proxy",
                        self.host, self.port)

    async def stop(self) -> None:
        """Stop taking connections, let requests in progress finish, close (handshakes
        under way at once)."""
        for handshake in list(self.handshakes):
            handshake.abort()
        await self._runner.cleanup()

    def protocol(self) -> asyncio.BaseProtocol:
        """The protocol of a new connection: the server's (with TLS, once its handshake is
        done: :class:`_Handshake`), or, with ``max_connections`` open, one that answers 503
        and closes (with TLS, closes without an answer: one would need the handshake the
        limit is there to bound)."""
        server = self._runner.server
        assert server is not None
        refused = "answered 503" if self._tls is None else "closed at once"
        if len(server.connections) + len(self.handshakes) < self.max_connections:
            if self.turned_away:
                log.warning("HTTP server on %s:%d takes connections again (%d %s)",
                            self.host, self.port, self.turned_away, refused)
                self.turned_away = 0
            return server() if self._tls is None else _Handshake(self, self._tls, server())
        if self.turned_away == 0:
            log.warning("HTTP server on %s:%d: %d connections open, the most it keeps; more are"
                        " %s until some close", self.host, self.port, self.max_connections,
                        refused)
        self.turned_away += 1
        return _Busy(answer=self._tls is None)


class _ClientFaults(logging.LoggerAdapter[logging.Logger]):
    """``aiohttp``'s server logger: a request its client broke (headers too long or too many,
    broken chunks, a body that cannot be decoded, a client gone mid-way) is a warning
    without a traceback, at most one line a minute with the count; anyone who reaches the
    port can send such requests. Other errors are logged as ``aiohttp`` logs them."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self.count = 0
        self._logged = -CLIENT_FAULTS_LOGGED_EVERY

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        """Log ``msg`` with its traceback, unless the client caused it (see the class)."""
        if not isinstance(exc_info, BaseException):
            self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)
            return
        if not isinstance(exc_info, HttpProcessingError | RequestPayloadError | ConnectionError):
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)
            return
        self.count += 1
        now = time.monotonic()
        if now - self._logged >= CLIENT_FAULTS_LOGGED_EVERY:
            why = " ".join(str(exc_info).split()) or type(exc_info).__name__
            self.logger.warning("HTTP server: a request its client broke was refused: %s (%d"
                                " such since the last such line)", why, self.count)
            self.count, self._logged = 0, now


class _Busy(asyncio.Protocol):
    """A connection over ``max_connections``: answered 503 (if ``answer``) and closed."""

    def __init__(self, *, answer: bool) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        if self._answer:
            transport.write(_BUSY)
        transport.close()


class _Handshake(asyncio.Protocol):
    """A TLS connection while its handshake is under way, counted among the server's open
    connections (:attr:`HttpServer.handshakes`); once done, the server's ``handler``'s.

    asyncio's own TLS (``create_server(ssl=...)``) hands a connection to the server only once
    its handshake is done, so that clients that opened connections and never finished a
    handshake were not counted: this one accepts plain TCP and upgrades it with
    ``loop.start_tls``, whose end (done, failed, timed out) it sees.
    """

    def __init__(self, owner: HttpServer, tls: ssl.SSLContext, handler: asyncio.Protocol) -> None:
        self._owner, self._tls, self._handler = owner, tls, handler
        self._task: asyncio.Task[None] | None = None
        owner.handshakes.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the client's hello is for start_tls to read
        self._task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.handshakes.discard(self)  # (gone before start_tls took the connection)

    def abort(self) -> None:
        """Give up the handshake (the server stops): the connection is closed."""
        self._owner.handshakes.discard(self)
        if self._task is not None:
            self._task.cancel()

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        """The handshake, within the idle timeout; then the connection is the server's. A
        handshake the client failed or gave up is no error of the server's: not logged."""
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, self._handler, self._tls, server_side=True,
                                       ssl_handshake_timeout=self._owner.idle_timeout)
        except OSError:  # a bad or slow handshake (ssl.SSLError, a timeout), the client gone
            return
        finally:
            self._owner.handshakes.discard(self)
        if tls is not None:  # (None: the client closed the connection as the handshake ended)
            self._handler.connection_made(tls)


class _CappedSite(web.BaseSite):
    """``aiohttp``'s TCP site, its connections made by :meth:`HttpServer.protocol`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int,
                 tls: ssl.SSLContext | None, owner: HttpServer) -> None:
        super().__init__(runner, ssl_context=tls)
        self._host, self._port, self._owner = host, port, owner

    @property
    def name(self) -> str:
        """The site's URL."""
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen."""
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(  # TLS: see _Handshake
            self._owner.protocol, self._host, self._port, backlog=self._backlog,
            reuse_address=True)
