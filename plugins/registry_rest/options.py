"""How to reach a registry's REST API: the keys of ``[partners.<name>.registry-rest]``.

The registry is a partner with ``role = "registry"`` (README, "The way back");
its table is the one place the connection is configured. The transport
delivers the canton's messages there, the person look-ups ask the same API,
and a ``registry-rest`` source polls its events by naming the partner.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.api import Duration, PluginOptions


class RegistryOptions(PluginOptions):
    """The keys of ``[partners.<name>.registry-rest]``: the registry's API and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the registry API's base URL (http:// or https://); the gateway"
                                 " uses <url>/inbox, <url>/persons and <url>/events")
    token: SecretStr | None = Field(
        None, description="bearer token the registry expects ('Authorization: Bearer <token>');"
                          " token_file reads it from a file")
    timeout: Duration = Field(30.0, gt=0, description="longest time a delivery to the registry"
                                                     " may take, connecting included")
    lookup_timeout: Duration = Field(
        5.0, gt=0, description="longest time a person look-up may take: a registry that does not"
                               " answer in time counts as not knowing the person")
    ca_file: Path | None = Field(None, description="CA certificates (PEM) the registry's"
                                                   " certificate must chain to; default: the system's")
    client_cert: Path | None = Field(None, description="our client certificate (PEM), for a"
                                                       " registry that asks for one")
    client_key: Path | None = Field(None, description="the private key (PEM) of client_cert;"
                                                      " default: inside client_cert")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must be the API's base URL, without ?query or #fragment")
        return value.rstrip("/")

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file {value}")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> RegistryOptions:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        tls = [k for k in ("ca_file", "client_cert") if getattr(self, k) is not None]
        if tls and not self.url.startswith("https://"):
            raise ValueError(f"{' and '.join(tls)} need an https:// url")
        return self

    def endpoint(self, path: str) -> str:
        """The URL of one of the API's endpoints (``"inbox"``, ``"persons"``, ``"events"``)."""
        return f"{self.url}/{path}"

    def ssl_context(self) -> ssl.SSLContext | bool:
        """TLS for an https URL: the CA and client certificate configured (``True``: defaults)."""
        if self.ca_file is None and self.client_cert is None:
            return True
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None)
        if self.client_cert is not None:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def headers(self) -> dict[str, str]:
        """The headers every request carries (the bearer token, if any)."""
        if self.token is None:
            return {}
        return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
