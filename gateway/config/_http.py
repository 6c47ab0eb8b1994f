"""``[http]``: the daemon's one HTTP server (off unless ``listen`` is set)."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.tls_files import load_ca, load_pair

#: Where ``listen = "PORT"`` or ``":PORT"`` binds: this machine only.
DEFAULT_HOST = "127.0.0.1"
_LISTEN = re.compile(r"(?:(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]*)):)?(?P<port>\d{1,5})")


def parse_listen(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` as (host, port); ``"PORT"`` and ``":PORT"`` bind to 127.0.0.1.

    ``"[::1]:8443"`` is an IPv6 address. Port 0 takes any free port.

    >>> parse_listen(":8080")
    ('127.0.0.1', 8080)
    """
    match = _LISTEN.fullmatch(text.strip())
    if match is None or int(match["port"]) > 65535:
        raise ValueError(f"not HOST:PORT, :PORT or PORT: {text!r} (e.g. \"127.0.0.1:8443\")")
    return match["v6"] or match["host"] or DEFAULT_HOST, int(match["port"])


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"cannot read {path}")
    return path


class HttpTlsSettings(BaseModel):
    """``[http.tls]``: HTTPS, and client certificates when ``client_ca`` is set."""

    model_config = ConfigDict(extra="forbid")

    cert: Path | None = Field(
        default=None, description="The server's certificate (PEM, chain after it); sets HTTPS on.")
    key: Path | None = Field(default=None, description="The private key of `cert` (PEM, unencrypted: the"
                             " gateway asks for no pass phrase).")
    client_ca: Path | None = Field(
        default=None,
        description="CA certificates (PEM) that issue client certificates: when set, every"
        " client must present a certificate they issued, else the TLS handshake fails.")

    @field_validator("cert", "key", "client_ca")
    @classmethod
    def _check_readable(cls, value: Path | None) -> Path | None:
        return None if value is None else _readable(value)

    @model_validator(mode="after")
    def _check_pair(self) -> HttpTlsSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together")
        if self.client_ca is not None and self.cert is None:
            raise ValueError("client_ca needs cert and key (client certificates need TLS)")
        if self.cert is not None:
            self.context()  # a key that does not match, a file that is not PEM: said now
        return self

    def context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or ``None`` without ``cert`` (plain HTTP).

        :raises ValueError: a file that cannot be used, naming it and why."""
        if self.cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        load_pair(ctx, self.cert, self.key)
        if self.client_ca is not None:
            load_ca(ctx, self.client_ca, "client_ca")
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


class HttpSettings(BaseModel):
    """``[http]``: the HTTP server of the daemon (REST push sources, plugins' routes)."""

    model_config = ConfigDict(extra="forbid")

    listen: str | None = Field(
        default=None,
        description='Address to serve on: "HOST:PORT", or "PORT" / ":PORT" / a bare port number'
        ' (8443) for 127.0.0.1 only ("[::1]:PORT" for IPv6); unset: no HTTP server.')
    tls: HttpTlsSettings = Field(
        default_factory=HttpTlsSettings,
        description="HTTPS and client certificates (unset: plain HTTP, for 127.0.0.1 or"
        " behind a proxy that terminates TLS).")

    @field_validator("listen", mode="before")
    @classmethod
    def _port_number(cls, value: object) -> object:
        """``listen = 8443`` (a TOML number) is the port, as ``"8443"`` is."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or ``None`` when the server is off."""
        return None if self.listen is None else parse_listen(self.listen)
