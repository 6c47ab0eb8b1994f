"""Helpers for the HTTP tests: a gateway folder with a push source, and a client for it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import write_initial_config
from gateway.daemon import Gateway

TOKEN = "s3cret-token-for-tests"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
FAST = """\
[gateway]
log_level = "WARNING"
drain_timeout = "{drain}"
workers = {workers}
[http]
listen = "127.0.0.1:0"
[dispatcher]
idle_poll = "50ms"
[sources.registry]
poll_interval = "50ms"
settle = "50ms"
[sources.push]
type = "http"
tokens_sha256 = ["{digest}"]
{push}
[partners.canton.sedex]
poll_interval = "50ms"
pair_grace = "3s"
settle = "50ms"
"""


def push_gateway(root: Path, push: str = "", extra: str = "", drain: str = "5s",
                 workers: int = 1) -> Path:
    """``init`` into ``root``, plus the HTTP server on a free port and source ``push``."""
    config = write_initial_config(root)
    (root / "conf.d" / "10-http.toml").write_text(
        FAST.format(digest=TOKEN_SHA256, push=push, drain=drain, workers=workers) + extra)
    return config


def url(gateway: Gateway, path: str = "/sources/push/messages") -> str:
    """The URL of ``path`` on the running gateway's HTTP server."""
    assert gateway.http is not None
    return f"{gateway.http.scheme}://127.0.0.1:{gateway.http.port}{path}"


async def post(session: aiohttp.ClientSession, gateway: Gateway, data: Any, *,
               token: str | None = TOKEN, key: str | None = None,
               path: str = "/sources/push/messages") -> tuple[int, dict[str, Any]]:
    """POST ``data``; the status and the JSON answer."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    async with session.post(url(gateway, path), data=data, headers=headers) as response:
        return response.status, await response.json()
