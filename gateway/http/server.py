"""Serving the routes of sources, transports and plugins on ``[http] listen``."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pluggy
from aiohttp import web

from gateway.config import CONFIGURATION
from gateway.config._http import HttpSettings
from gateway.errors import ConfigError
from gateway.plugin_types import HttpRoute

log = logging.getLogger(__name__)


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
                 shutdown_timeout: float) -> None:
        """:param shutdown_timeout: how long requests in progress may take to finish on stop."""
        address = settings.address
        assert address is not None
        self.host, self.port = address
        self._tls = settings.tls.context()
        app = web.Application()
        for route in routes:
            app.router.add_route(route.method, route.path, route.handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=shutdown_timeout)

    @property
    def scheme(self) -> str:
        """``https`` with ``[http.tls]``, else ``http``."""
        return "https" if self._tls is not None else "http"

    async def start(self) -> None:
        """Listen; :attr:`port` is then the port bound (``listen`` may say 0).

        :raises ConfigError: the address cannot be bound (in use, not this machine's).
        """
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._tls)
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
        """Stop taking connections, let requests in progress finish, close."""
        await self._runner.cleanup()
