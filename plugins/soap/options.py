"""The options of the ``soap`` transport (``[partners.<name>.soap]``) and source (``[sources.<name>]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.api import Duration, PluginOptions
from plugins.soap.arguments import ITEM_FIELDS, SOURCE_FIELDS, check_spec

_ARGUMENTS = (
    "argument name -> value: the name of a field ({fields}) or 'const:TEXT'; a dotted name"
    " ('header.messageId') fills a nested element (see README, SOAP)"
)


class SoapConnection(PluginOptions):
    """How to reach a SOAP service: its WSDL (a local file), TLS, authentication and timeouts."""

    wsdl: Path = Field(description="the service's WSDL, a local file; it and what it imports are"
                       " read at start, never fetched from the network")
    service: str | None = Field(None, description="the wsdl:service to use; default: the first")
    port: str | None = Field(None, description="the wsdl:port of that service; default: the first")
    address: str | None = Field(
        None, description="the endpoint URL, instead of the port's soap:address")
    operation: str = Field(description="the operation to call")
    ca_file: Path | None = Field(
        None, description="CA certificates (PEM) that the server's certificate must chain to;"
        " default: the system's")
    client_cert: Path | None = Field(None, description="our client certificate (PEM), for TLS")
    client_key: Path | None = Field(
        None, description="the unencrypted private key (PEM) of client_cert, if not in that file")
    auth: Literal["none", "basic", "wsse"] = Field(
        "none", description="'basic': HTTP basic authentication; 'wsse': a WS-Security"
        " UsernameToken in the SOAP header; both with username and password")
    username: str | None = Field(None, description="user name for auth")
    password: SecretStr | None = Field(None, description="password for auth (or password_file)")
    wsse_digest: bool = Field(
        False, description="send the UsernameToken password as a digest (PasswordDigest)"
        " instead of in clear text (PasswordText)")
    connect_timeout: Duration = Field(10.0, gt=0, description="how long connecting may take")
    read_timeout: Duration = Field(
        60.0, gt=0, description="how long the service may stay silent while answering")
    call_timeout: Duration = Field(
        300.0, gt=0, description="how long one call may take in all, until the whole answer is"
        " in (a service that trickles its answer never stays silent for read_timeout)")
    concurrency: int = Field(
        4, ge=1, le=64, description="calls in flight at once (each takes a thread)")

    @field_validator("wsdl", "ca_file", "client_cert", "client_key")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file {value}")
        return value.resolve() if value is not None else None

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https")
                                  or not urlsplit(value).hostname):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> SoapConnection:
        if self.auth != "none" and (not self.username or self.password is None):
            raise ValueError(f"auth = {self.auth!r} needs username and password")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        return self


class SoapOptions(SoapConnection):
    """The keys of ``[partners.<name>.soap]``: one operation call per delivery."""

    operation: str = Field("SubmitMessage", description="the operation that takes a message")
    arguments: dict[str, str] = Field(
        default_factory=lambda: {"message": "payload"},
        description=_ARGUMENTS.format(fields=", ".join(ITEM_FIELDS)) + "; 'payload' goes as"
        " base64, text or XML, as the WSDL types the argument")
    permanent_faults: list[str] = Field(
        default_factory=list, description="SOAP fault codes (e.g. 'tns:Duplicate') or words of"
        " fault strings that make a delivery a dead letter, whatever the code says")
    transient_faults: list[str] = Field(
        default_factory=list, description="SOAP fault codes or words of fault strings that are"
        " retried, whatever the code says (checked after permanent_faults)")

    @field_validator("arguments")
    @classmethod
    def _check_arguments(cls, value: dict[str, str]) -> dict[str, str]:
        for spec in value.values():
            check_spec(spec, ITEM_FIELDS)
        return value


class SoapSourceOptions(SoapConnection):
    """The keys of a ``type = "soap"`` source: a fetch operation polled with a cursor."""

    operation: str = Field("FetchMessages", description="the operation that returns messages")
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description=_ARGUMENTS.format(fields="cursor: the last cursor the service returned,"
                                      " empty at first"))
    messages: str = Field(
        "message", description="dotted path in the answer to the list of messages")
    payload: str = Field(
        "payload", description="dotted path in a message to the eCH-0223 XML (text, base64 or"
        " an element); '.' for the message itself")
    message_id: str | None = Field(
        "messageId", description="dotted path in a message to its id, for the reference and"
        " acknowledge")
    cursor: str | None = Field(
        "cursor", description="dotted path in the answer to the next cursor; unset: no cursor")
    acknowledge: str | None = Field(
        None, description="an operation called with the ids of the messages once they are stored")
    acknowledge_arguments: dict[str, str] = Field(
        default_factory=dict,
        description="its arguments, as in 'arguments', with the fields 'ids' (the message ids)"
        " and 'cursor'")
    poll_interval: Duration = Field(30.0, gt=0, description="time between fetches when idle")

    @field_validator("arguments", "acknowledge_arguments")
    @classmethod
    def _check_arguments(cls, value: dict[str, str]) -> dict[str, str]:
        for spec in value.values():
            check_spec(spec, SOURCE_FIELDS)
        return value
