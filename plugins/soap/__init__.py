"""The ``soap`` transport and source: a partner's SOAP service, called with zeep.

The WSDL is read from local files once, at start (and by ``check-config``);
nothing is ever fetched from the network but the calls themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api import ConfigError, PluginContext, SourceType, TransportType, hookimpl
from plugins.soap.client import SoapClient
from plugins.soap.options import SoapOptions, SoapSourceOptions
from plugins.soap.source import SoapSource, checked_plans
from plugins.soap.transport import SoapTransport, checked_plan

__all__ = ["SoapOptions", "SoapSource", "SoapSourceOptions", "SoapTransport",
           "gateway_check_config", "gateway_source_types", "gateway_transport_types"]


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


def create_source(options: BaseModel, context: PluginContext) -> SoapSource:
    """The source factory: ``options`` is the validated :class:`SoapSourceOptions`."""
    if not isinstance(options, SoapSourceOptions):
        raise TypeError(f"soap source needs SoapSourceOptions, got {type(options).__name__}")
    return SoapSource(options, context)


@hookimpl
def gateway_source_types() -> list[SourceType]:
    """The ``soap`` source."""
    return [SourceType(
        "soap", SoapSourceOptions, create_source,
        "a SOAP service polled for messages (WSDL from a local file), with a persisted cursor",
    )]


@hookimpl
def gateway_check_config(settings: Any) -> list[tuple[str, str, str]]:
    """Load each SOAP partner's and source's WSDL; check operations and arguments against it."""
    problems: list[tuple[str, str, str]] = []
    for name, partner in settings.partners.items():
        if isinstance(partner.parsed, SoapOptions):
            problems += _check(partner.parsed, name, f"partners.{name}.soap")
    for name, source in settings.sources.items():
        if isinstance(source.parsed, SoapSourceOptions):
            problems += _check(source.parsed, name, f"sources.{name}")
    return problems


def _check(options: SoapOptions | SoapSourceOptions, name: str, key: str
           ) -> list[tuple[str, str, str]]:
    try:
        client = SoapClient.start(options, name, key)
        try:
            if isinstance(options, SoapOptions):
                checked_plan(client, options, key)
            else:
                checked_plans(client, options, key)
        finally:
            client.close()
    except ConfigError as exc:
        return exc.problems
    return []
