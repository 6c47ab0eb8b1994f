"""ech-gateway-filedrop: an example plugin that delivers messages into a folder.

The plugin itself is :mod:`ech_gateway_filedrop.plugin` (the ``ech_gateway``
entry point); the transport is in :mod:`ech_gateway_filedrop.transport`.
"""
