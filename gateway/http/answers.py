"""Reading an HTTP answer's body, up to a limit: a server (or a proxy before it) may send
one without end, and the gateway must not read it all into memory."""

from __future__ import annotations

import aiohttp

#: The most bytes of a body read at once.
_CHUNK = 1 << 16


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` if it is longer than ``limit`` bytes (read no further:
    a declared length says so before anything is read)."""
    if response.content_length is not None and response.content_length > limit:
        return None
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
