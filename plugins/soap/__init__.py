"""The ``soap`` transport and source: a partner's SOAP service, called with zeep.

The WSDL is read from local files once, at start (and by ``check-config``);
nothing is ever fetched from the network but the calls themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api import ConfigError, PluginContext, TransportType, hookimpl
from plugins.soap.client import SoapClient
from plugins.soap.options import SoapOptions
from plugins.soap.transport import SoapTransport, checked_plan

__all__ = ["SoapOptions", "SoapTransport", "gateway_check_config", "gateway_transport_types"]


def create_transport(options: BaseModel, context: PluginContext) -> SoapTransport:
    """The transport factory: ``options`` is the validated :class:`SoapOptions`."""
    if not isinstance(options, SoapOptions):
        raise TypeError(f"soap transport needs SoapOptions, got {type(options).__name__}")
    return SoapTransport(options, context)


@hookimpl
def gateway_transport_types() -> list[TransportType]:
    """The ``soap`` transport."""
    return [TransportType(
        "soap", SoapOptions, create_transport,
        "a SOAP service (WSDL from a local file): one operation call per delivery",
    )]


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """Load each SOAP partner's WSDL and check its operation and arguments against it."""
    problems: list[tuple[str, str, str]] = []
    for name, partner in settings.partners.items():
        options = partner.parsed
        if not isinstance(options, SoapOptions):
            continue
        key = f"partners.{name}.soap"
        try:
            client = SoapClient.start(options, name, key)
            try:
                checked_plan(client, options, key)
            finally:
                client.close()
        except ConfigError as exc:
            problems += exc.problems
    return problems
