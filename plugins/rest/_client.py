"""What the REST transport and the REST polling source share: how to reach a server.

The options name the URL, the timeouts, the authentication (a bearer token
or HTTP basic) and TLS (a CA file, a client certificate); :func:`open_session`
turns them into one aiohttp session that reuses its connections.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.api import Duration, HttpsClientOptions, PluginOptions, partner_text

#: Headers the gateway sets itself; ``headers`` may not set them.
OWN_HEADERS = frozenset({"authorization", "content-type", "idempotency-key", "host",
                         "content-length"})
#: How much of a refusing answer's body is read for its reason (which quotes the start).
BODY_READ = 800


class ClientOptions(HttpsClientOptions, PluginOptions):
    """How to reach one HTTP server: URL, timeouts, authentication, TLS, extra headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Duration = Field(
        30.0, gt=0, description="longest time one request may take, connecting included")
    connect_timeout: Duration = Field(
        10.0, gt=0, description="longest time to wait for a connection")
    token: SecretStr | None = Field(
        None, description="bearer token, sent as 'Authorization: Bearer <token>'; token_file"
        " reads it from a file")
    username: str | None = Field(None, description="user name for HTTP basic authentication")
    password: SecretStr | None = Field(
        None, description="password for HTTP basic authentication; password_file reads it from"
        " a file")
    headers: dict[str, str] = Field(
        default_factory=dict, description="more headers sent with every request"
        " (not Authorization, Content-Type or Idempotency-Key, which the gateway sets)")

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        own = sorted(name for name in value if name.lower() in OWN_HEADERS)
        if own:
            raise ValueError(f"the gateway sets {', '.join(own)} itself")
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> ClientOptions:
        if self.token is not None and self.username is not None:
            raise ValueError("set either token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    def auth_headers(self) -> dict[str, str]:
        """``headers`` and the ``Authorization`` header (bearer token or basic)."""
        headers = dict(self.headers)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        elif self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password.get_secret_value()}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        return headers


def open_session(options: ClientOptions, connections: int) -> aiohttp.ClientSession:
    """One session for ``options``: at most ``connections`` open at once, kept and reused.

    Redirects are not followed by the callers: a moved endpoint is a configuration
    matter, not something to follow with a message in hand.
    """
    context = options.ssl_context()
    connector = aiohttp.TCPConnector(limit=connections, ssl=context if context is not None else True)
    return aiohttp.ClientSession(
        connector=connector, headers=options.auth_headers(),
        timeout=aiohttp.ClientTimeout(total=options.timeout, connect=options.connect_timeout))


async def body_start(response: aiohttp.ClientResponse) -> str:
    """The first characters of an answer's body, quoted for a reason (:func:`partner_text`);
    of a JSON problem (RFC 9457), its title and detail."""
    data = await response.content.read(BODY_READ)
    if not data.strip():
        return ""
    text = data.decode("utf-8", "replace")
    return partner_text(problem_summary(text, response.content_type) or text)


def problem_summary(text: str, content_type: str) -> str | None:
    """``Person unknown: ZEMIS has no person ...``: the ``title`` and ``detail`` of a JSON
    problem (``application/problem+json``, or JSON that has them), else ``None``."""
    if not content_type.endswith(("/problem+json", "/json")):
        return None
    try:
        problem = json.loads(text)
    except ValueError:  # not JSON, or cut off at BODY_READ: the start of the text says it
        return None
    if not isinstance(problem, dict):
        return None
    said = [str(problem[k]).strip() for k in ("title", "detail")
            if isinstance(problem.get(k), str) and problem[k].strip()]
    return ": ".join(said) or None


def where(url: str) -> str:
    """The URL without credentials and query, for logs and reasons (a query may carry a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
