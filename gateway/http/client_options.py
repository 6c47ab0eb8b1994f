"""How a plugin reaches an HTTP server: its URL and TLS, declared once for every HTTP plugin."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.tls_files import ca_problem, load_pair


class HttpsClientOptions(BaseModel):
    """Options of a plugin that calls an HTTP server: ``url``, and TLS for an https one.

    A plugin's options model subclasses it (with :class:`~gateway.api.PluginOptions`'
    refusal of unknown keys) and adds its own keys: authentication, timeouts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the server's URL (http:// or https://)")
    ca_file: Path | None = Field(
        None, description="CA certificates (PEM) the server's certificate must chain to;"
        " default: the system's")
    client_cert: Path | None = Field(
        None, description="our client certificate (PEM), for servers that ask for one")
    client_key: Path | None = Field(
        None, description="the private key (PEM, unencrypted) of client_cert; default: inside"
        " client_cert")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file {value}")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> HttpsClientOptions:
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        tls = [k for k in ("ca_file", "client_cert") if getattr(self, k) is not None]
        if tls and urlsplit(self.url).scheme != "https":
            raise ValueError(f"{' and '.join(tls)} need an https:// url")
        self.ssl_context()  # a file that is not PEM, an encrypted key: said by check-config
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS of an https URL with ``ca_file`` or ``client_cert``; ``None``: the defaults
        (plain http, or the system's CAs without a client certificate).

        :raises ValueError: a certificate or key cannot be used, naming it and why (the
            options' validation calls it: a model that passed does not raise).
        """
        if self.ca_file is None and self.client_cert is None:
            return None
        try:  # (ca_file alone, not the system's CAs too)
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(ca_problem(self.ca_file or Path(), "ca_file", exc)) from exc
        if self.client_cert is not None:
            load_pair(context, self.client_cert, self.client_key, ("client_cert", "client_key"))
        return context
