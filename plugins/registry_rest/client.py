"""The registry's REST API, as the gateway calls it (docs/registry-rest.md).

Three endpoints under the configured base URL:

- ``POST inbox``: a canton message for the registry (the way back), with an
  ``Idempotency-Key`` that is the same for every attempt of one delivery;
- ``POST persons/search`` with ``{"vn": …}`` (or ``{"local_id": "CATEGORY:ID"}``,
  or ``official_name``, ``first_name`` and ``date_of_birth``): the residents
  that fit, as ``{"persons": [<person>, ...]}``, each person in the gateway's
  JSON form of :class:`~gateway.api.PersonState`. A POST, so that no VN or
  name is ever part of a URL (access logs, proxies, error messages);
- ``GET events?after=CURSOR&limit=N``: the registry's outbox, oldest first, as
  ``{"events": [{"id", "content_type", "body" | "body_base64"}], "cursor"}``.

A vendor whose registry speaks another dialect changes this module and
nothing else: the transport, source and hooks only call its methods.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import ValidationError

from gateway.api import (
    GatewayError,
    OutboundItem,
    PermanentError,
    PersonState,
    SendResult,
    TransientError,
    build_zip,
    partner_text,
    read_at_most,
    retry_after_seconds,
)
from plugins.registry_rest.options import TRANSPORT, RegistryOptions

log = logging.getLogger(__name__)

#: Answers to a delivery that may succeed later (besides every 5xx).
TRANSIENT_STATUS = frozenset({408, 429})
#: The longest event id kept in a reference.
MAX_ID = 200
#: The most bytes of a 2xx answer to a delivery read; a longer one is cut off (the
#: registry has the message) and its connection closed.
ANSWER_READ = 1 << 20
#: How much of a refusing answer's body is read for its reason (which quotes the start).
REASON_READ = 800


class AnswerTooLarge(GatewayError):
    """The registry's answer is larger than ``max_response``: it is not read further."""


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the registry's outbox: an eCH-0020 or eCH-0223 message."""

    id: str
    content_type: str
    body: bytes
    #: Why the entry is not a message of the API (its ``body`` is then the entry as JSON).
    problem: str | None = None


class RegistryClient:
    """One registry's API over one aiohttp session; ``async with`` closes it.

    :param partner: the registry partner's name, for reasons that name its keys.
    :param connections: requests in flight at once (the rest wait for a connection).
    """

    def __init__(self, options: RegistryOptions, partner: str, connections: int = 4) -> None:
        self.options = options
        self.partner = partner
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections,
                                               ssl=self.options.ssl_context() or True),
                headers=self.options.headers(),
                timeout=aiohttp.ClientTimeout(total=self.options.timeout))
        return self._session

    async def close(self) -> None:
        """Close the session (its connections); the next call opens a new one."""
        if self._session is not None:
            await self._session.close()

    async def deliver(self, item: OutboundItem) -> SendResult:
        """POST one attempt of a delivery to ``inbox``; a 2xx answer means the registry has it.

        :raises TransientError: no answer in time, no connection, or 408, 429, 5xx.
        :raises PermanentError: any other answer (the registry refuses the message).
        """
        key = item.delivery_ref or item.attempt_ref  # the same for every attempt: dedupe by it
        body, content_type = item.payload, "application/xml"
        if item.attachments:
            body, content_type = build_zip("message.xml", item.payload, item.attachments), \
                "application/zip"
        headers = {"Content-Type": content_type, "Idempotency-Key": key}
        url = self.options.endpoint("inbox")
        try:
            async with self._open().post(url, data=body, headers=headers,
                                         allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    if await read_at_most(response, ANSWER_READ) is None:
                        response.close()
                    return SendResult(awaits_receipt=False,
                                      detail=f"HTTP {response.status} from the registry")
                text = (await response.content.read(REASON_READ)).decode("utf-8", "replace")
                said = f"the registry answered HTTP {response.status}: {_start(text)}"
                if response.status in TRANSIENT_STATUS or response.status >= 500:
                    raise TransientError(said, retry_after=retry_after_seconds(
                        response.headers.get("Retry-After")))
                raise PermanentError(said)
        except TimeoutError as exc:
            raise TransientError(f"no answer from {url} within {self.options.timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"cannot reach {url}: {exc or type(exc).__name__}") from exc

    async def persons(self, query: Mapping[str, str]) -> list[PersonState]:
        """The residents that fit ``query`` (within ``lookup_timeout``).

        :raises aiohttp.ClientError, TimeoutError: the registry cannot be asked.
        :raises ValueError: its answer is not the documented JSON.
        :raises AnswerTooLarge: its answer is larger than ``max_response``.
        """
        timeout = aiohttp.ClientTimeout(total=self.options.lookup_timeout)
        url = self.options.endpoint("persons/search")
        async with self._open().post(url, json=dict(query), timeout=timeout,
                                     allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"POST persons/search answered HTTP {response.status}")
            answer = await self._json(response, url)
        found = []
        for entry in _list(answer, "persons"):
            try:
                found.append(PersonState.model_validate(entry))
            except ValidationError as exc:  # the reason names fields, never their values
                log.warning("registry %s: a person in the answer is not valid (%d problems);"
                            " ignored", self.options.url, exc.error_count())
        return found

    async def events(self, after: str | None, limit: int) -> tuple[list[Event], str | None]:
        """Up to ``limit`` outbox entries after the cursor ``after``, and the new cursor.

        :raises aiohttp.ClientError, TimeoutError: the registry cannot be asked.
        :raises ValueError: its answer is not the documented JSON.
        :raises AnswerTooLarge: its answer is larger than ``max_response``.
        """
        params = {"limit": str(limit)} | ({"after": after} if after is not None else {})
        url = self.options.endpoint("events")
        async with self._open().get(url, params=params, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"GET events answered HTTP {response.status}")
            answer = await self._json(response, url)
        events = [_event(n, entry) for n, entry in enumerate(_list(answer, "events"))]
        cursor = answer.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ValueError("the cursor in the answer is not a string")
        return events, cursor if cursor is not None else after

    async def _json(self, response: aiohttp.ClientResponse, url: str) -> Any:
        """The JSON of the answer from ``url``, read up to ``max_response`` bytes.

        :raises AnswerTooLarge: it is longer (the rest is not read).
        :raises ValueError: it is not JSON.
        """
        body = await read_at_most(response, self.options.max_response)
        if body is None:
            raise AnswerTooLarge(f"the answer from {url} is larger than [partners.{self.partner}"
                                 f".{TRANSPORT}] max_response ({self.options.max_response}"
                                 " bytes)")
        return json.loads(body)


def _list(answer: Any, key: str) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get(key), list):
        raise ValueError(f"the answer is not an object with a list {key!r}")
    return answer[key]


def _event(n: int, entry: Any) -> Event:
    """The ``n``-th outbox entry of an answer; one that is not an event carries its problem."""
    try:
        return _read_event(entry)
    except ValueError as exc:
        ident = entry.get("id") if isinstance(entry, dict) else None
        name = str(ident)[:MAX_ID] if isinstance(ident, str | int) else f"#{n} of a page"
        return Event(name, "application/json",
                     json.dumps(entry, ensure_ascii=False).encode("utf-8"), str(exc))


def _read_event(entry: Any) -> Event:
    """An outbox entry; the body is text (XML) or base64 (``body_base64``, a zip)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str | int):
        raise ValueError("an event without an id")
    content_type = str(entry.get("content_type", "application/xml"))
    if isinstance(entry.get("body"), str):
        return Event(str(entry["id"]), content_type, entry["body"].encode("utf-8"))
    if isinstance(entry.get("body_base64"), str):
        try:
            return Event(str(entry["id"]), content_type,
                         base64.b64decode(entry["body_base64"], validate=True))
        except ValueError as exc:
            raise ValueError(f"event {entry['id']}: body_base64 is not base64") from exc
    raise ValueError(f"event {entry['id']}: neither body nor body_base64")


def _start(text: str) -> str:
    return partner_text(text) if text.strip() else "(no body)"
