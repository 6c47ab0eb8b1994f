"""The daemon's HTTP server: one ``aiohttp.web`` application for every route.

Sources and transports register routes through their
:class:`~gateway.plugin_types.PluginContext` (``context.routes``), plugins through
the ``gateway_http_routes`` hook. The server runs only when ``[http] listen``
is set (:mod:`gateway.config._http`).
"""

from gateway.http.server import HttpServer, collect_routes

__all__ = ["HttpServer", "collect_routes"]
