"""``ech-gateway demo``: the whole flow in a temporary folder, with simulated peers.

The demo composes the core with the built-in plugins (folder source, sedex
transport and its simulator), so it lives beside the core rather than
among the plugins, which import only :mod:`gateway.api`.
"""

from gateway.demo._command import configure, run

__all__ = ["configure", "run"]
