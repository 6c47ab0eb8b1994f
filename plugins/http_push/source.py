"""``POST /sources/<name>/messages``: store the body, then answer with its id.

The answer comes only once the body is committed, and never waits for the
processing backlog (``submit(..., wait=False)``). A request repeated with the
same ``Idempotency-Key`` (and the same body) gets the first answer again, with
the first input's id: the store keeps the key with the input. A body that is not
well-formed XML (or a safe zip) is still stored, quarantined, and answered 400
with the reason. A body over the limit is answered 413; the refusal is kept
in quarantine as evidence, with the start of the body as far as it was read
(nothing when its declared length was over), marked as such
(:data:`~gateway.api.KEPT_BYTES`: neither it nor its header is read as a
document). A body that does not come in full in time (:meth:`PushSource.body_deadline`:
a sender that trickles it in holds a connection and its buffer) is answered 408 and
nothing of it is stored. Nothing is stored for a request without a valid token (401) or one
that reuses an ``Idempotency-Key`` for other bytes (422). While the store
cannot write (its disk is full; another program holds the database's write
lock) nothing can be stored: the answer is 503 with ``Retry-After`` at once
(for a lock, once ``[store] busy_timeout`` has passed), rather than a request
that waits until the disk has room again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.api import (
    DOCUMENT_LIMIT,
    KEPT_BYTES,
    InputRejected,
    Intake,
    KeyReuseRejected,
    NormaliseContext,
    PluginContext,
    RawInput,
    StoreUnavailable,
    check_untrusted,
    safe_unzip,
)
from plugins.http_push.options import HttpPushOptions

log = logging.getLogger(__name__)

_ZIP = b"PK\x03\x04"
#: Seconds a sender is asked to wait while the store cannot write.
STORE_RETRY_AFTER = 30
#: Bodies up to this size are checked in the event loop; larger ones in a worker.
CHECK_HERE = 256 << 10
_CHUNK = 64 << 10
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: The slowest a body may come, on average, beyond ``body_timeout``: bytes a second.
MIN_BODY_RATE = 16 << 10
#: Seconds between log lines about requests refused for their token.
REFUSALS_LOGGED_EVERY = 60.0


def check_body(data: bytes, context: NormaliseContext) -> str | None:
    """Why ``data`` is refused (not well-formed XML, a DTD, a bad zip or a zip bomb), or ``None``.

    The rules of files: :func:`gateway.api.parse_untrusted` (checked with
    :func:`gateway.api.check_untrusted`, which builds no tree) and
    :func:`gateway.api.safe_unzip`; each XML document at the root of a zip is checked.
    """
    try:
        if not data.startswith(_ZIP):
            check_untrusted(data, max_bytes=context.max_bytes, setting=DOCUMENT_LIMIT)
            return None
        files = safe_unzip(data, max_entries=context.max_zip_entries,
                           max_total_bytes=context.max_zip_bytes, max_ratio=context.max_zip_ratio)
        for name, content in files.items():
            if "/" not in name and name.lower().endswith(".xml"):
                try:
                    check_untrusted(content, max_bytes=context.max_bytes, setting=DOCUMENT_LIMIT)
                except InputRejected as exc:
                    raise InputRejected(exc.reason, f"{name}, {exc.where}" if exc.where else name
                                        ) from exc
    except InputRejected as exc:
        return str(exc)
    return None


class PushSource:
    """A :class:`~gateway.api.Source` whose sender POSTs; it serves its route while it runs."""

    def __init__(self, options: HttpPushOptions, context: PluginContext) -> None:
        self.name = context.name
        self.limits = context.normalise
        self.offload = context.offload
        self.max_bytes = min(options.max_bytes or self.limits.max_bytes, self.limits.max_bytes)
        #: The setting the body limit comes from, as the operator writes it.
        self.max_bytes_key = (f"[sources.{self.name}] max_bytes"
                              if self.max_bytes < self.limits.max_bytes else DOCUMENT_LIMIT)
        self.digests = options.digests()
        self.body_timeout = options.body_timeout
        self.path = f"/sources/{self.name}/messages"
        self.intake: Intake | None = None
        #: requests refused for their token since the last log line about it
        self.refusals = 0
        self._refusal_logged = -REFUSALS_LOGGED_EVERY
        context.routes.add("POST", self.path, self.handle)

    async def run(self, intake: Intake) -> None:
        """Take requests until cancelled (the route answers 503 before and after)."""
        self.intake = intake
        try:
            await asyncio.Event().wait()
        finally:
            self.intake = None

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one push (see the module docstring)."""
        intake = self.intake
        if intake is None:
            return _answer(503, {"error": f"source {self.name} is not running"},
                           {"Retry-After": "5"})
        if not self._authorised(request.headers.get("Authorization", "")):
            self._refused(request.remote)
            return _answer(401, {"error": "missing or wrong bearer token"},
                           {"WWW-Authenticate": 'Bearer realm="ech-gateway"'})
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            return _answer(400, {"error": "Idempotency-Key must be 1 to 255 visible ASCII"
                                          " characters"})
        deadline = self.body_deadline(request.content_length)
        try:
            async with asyncio.timeout(deadline):
                data, over = await self._body(request)
        except TimeoutError:
            answer = _answer(408, {"error": f"the body did not come in full within {deadline:g}"
                                            f" s (at least {MIN_BODY_RATE >> 10} KiB/s): nothing"
                                            " was stored; send it again"})
            answer.force_close()
            return answer
        except (RequestPayloadError, HttpProcessingError, ConnectionError) as exc:
            # the sender's body broke off or cannot be decoded: nothing was stored
            why = " ".join(str(exc).split()) or type(exc).__name__
            return _answer(400, {"error": f"the body could not be read ({why}): nothing was"
                                          " stored; send it again"})
        if over is not None:
            return await self._too_large(intake, request, data, over)
        meta = {"content_type": "application/zip" if data.startswith(_ZIP) else "application/xml"}
        if key is not None:
            meta["idempotency_key"] = key
        raw = RawInput(self.name, f"POST {self.path} from {request.remote}", data, meta)
        reason = await self._check(data)
        try:
            if reason is not None:
                mid = await intake.quarantine(raw, reason, wait=False)
                return _answer(400, {"id": mid, "error": reason})
            [mid] = await intake.submit([raw], wait=False)
        except KeyReuseRejected as exc:
            return _answer(422, {"error": exc.reason, "first": exc.first})
        except StoreUnavailable:
            return _answer(503, {"error": "the gateway cannot store input now (its disk is"
                                          " full); nothing was stored: send it again later"},
                           {"Retry-After": str(STORE_RETRY_AFTER)})
        return _answer(202, {"id": mid})

    def body_deadline(self, declared: int | None) -> float:
        """Seconds the body may take: ``body_timeout``, plus its ``declared`` length (else
        the largest body taken) at :data:`MIN_BODY_RATE`."""
        size = declared if declared is not None else self.max_bytes
        return self.body_timeout + min(size, self.max_bytes) / MIN_BODY_RATE

    def _refused(self, remote: str | None) -> None:
        """Log a refused request: the first, then at most one line a minute with the count."""
        self.refusals += 1
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSALS_LOGGED_EVERY:
            log.warning("source %s: refused a request from %s: missing or wrong bearer token"
                        " (%d refused since the last such line)", self.name, remote, self.refusals)
            self.refusals, self._refusal_logged = 0, now

    def _authorised(self, header: str) -> bool:
        """Whether ``header`` is ``Bearer <token>`` with a token whose digest is configured."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = False
        for known in self.digests:  # every one compared, in constant time
            found |= hmac.compare_digest(known, digest)
        return found

    async def _body(self, request: web.Request) -> tuple[bytes, str | None]:
        """The body, read in chunks, and ``None``; or, once it is over the limit, what was
        read of it (no more is read) and how large it is.

        :raises RequestPayloadError: the body cannot be decoded (its ``Content-Encoding``),
            or its chunks are broken.
        :raises ConnectionError: the sender went away before the end of the body."""
        if request.content_length is not None and request.content_length > self.max_bytes:
            return b"", f"{request.content_length} bytes declared"
        body = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                return bytes(body[:self.max_bytes]), "more sent, without a declared length"
        return bytes(body), None

    async def _too_large(self, intake: Intake, request: web.Request, start: bytes,
                         size: str) -> web.Response:
        """413, with the refusal kept in quarantine as evidence: the reason, and the start
        of the body as far as it was read (nothing when its length was declared)."""
        error = f"body over {self.max_bytes} bytes ({self.max_bytes_key})"
        reason = (f"{error}: {size}; answered 413, the first {len(start)} bytes kept here"
                  " (the sender keeps the whole body)")
        raw = RawInput(self.name, f"POST {self.path} from {request.remote}", start,  # evidence:
                       {"content_type": "application/octet-stream",  # never read as a document
                        KEPT_BYTES: str(len(start))})
        try:
            mid = await intake.quarantine(raw, reason, wait=False)
        except StoreUnavailable:
            return _answer(413, {"error": error})
        return _answer(413, {"id": mid, "error": error})

    async def _check(self, data: bytes) -> str | None:
        if len(data) <= CHECK_HERE and not data.startswith(_ZIP):
            return check_body(data, self.limits)
        reason: str | None = await self.offload(check_body, data, self.limits)
        return reason


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
