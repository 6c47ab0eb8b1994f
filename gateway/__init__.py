"""ech-gateway: a durable gateway for eCH-0223 messages.

The public API for plugin authors is :mod:`gateway.hookspecs` and
:mod:`gateway.contracts`; :mod:`gateway.errors` holds the exceptions.
"""

__version__ = "0.1.0"
