"""The REST polling source: fetches messages from a server's outbox, page by page, with a cursor.

The protocol (README, *REST polling source*): ``GET url`` with the cursor as
query parameter (none on the very first poll) answers ``200`` with JSON::

    {"messages": [{"id": "m-1", "content_type": "application/xml", "body": "<...>"},
                  {"id": "m-2", "content_type": "application/zip",
                   "body": "UEsDB...", "encoding": "base64"}],
     "cursor": "c-2", "more": false}

``cursor`` is the position after these messages, sent back on the next poll
(``null`` or absent: unchanged); ``more`` asks for the next poll at once.
Each message is submitted, and only once the gateway committed them is the
cursor written (atomically, durably) in the gateway's data folder. A stop
between the two repeats the page at the next start: the same bytes from the
same source are stored as duplicates, not processed twice.

Reading and writing the cursor are calls into a folder that may hang (a
share): each is given up on after a minute (:class:`~gateway.api.CursorFile`),
said in the log, and the poll tried again after ``interval`` (repeating the
page, as after a stop); nothing else waits for it, the stop neither.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from pydantic import Field
from yarl import URL

from gateway.api import (
    CursorFile,
    Duration,
    GatewayError,
    Intake,
    PluginContext,
    RawInput,
    RepeatedProblem,
    Size,
    read_at_most,
)
from plugins.rest._client import ClientOptions, body_start, open_session, where

log = logging.getLogger(__name__)

#: Content type of a message that names none.
DEFAULT_CONTENT_TYPE = "application/xml"
#: The longest message id kept in a stored input's reference.
MAX_ID = 200


class RestSourceOptions(ClientOptions):
    """The keys of a ``type = "rest"`` source."""

    interval: Duration = Field(
        30.0, gt=0, description="time between polls once a poll brought nothing more (or failed)")
    cursor_param: str = Field(
        "cursor", min_length=1, description="query parameter that carries the cursor")
    max_response: Size = Field(
        64 << 20, gt=0, description="largest answer taken, in bytes; a larger one is an error"
        " (ask the server for smaller pages)")


class BadAnswer(GatewayError):
    """The server's answer is not a page of the protocol; the poll is repeated as it was."""


@dataclass(frozen=True, slots=True)
class Page:
    """One answer: the messages (as the server sent them), the cursor after them, more to come."""

    messages: list[Any]
    cursor: str | None
    more: bool


class RestSource:
    """Polls one server for messages (``[sources.<name>] type = "rest"``)."""

    def __init__(self, options: RestSourceOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        self.cursor_file = CursorFile(context.data_dir / "rest" / f"{context.name}.cursor")
        self.cursor: str | None = None
        self._where = where(options.url)

    async def run(self, intake: Intake) -> None:
        """Poll until cancelled: at once while the server has more, else every ``interval``."""
        problem = RepeatedProblem(log, f"rest source {self.name}: polling {self._where}")
        session = open_session(self.options, 1)
        loaded = False
        try:
            while True:
                try:
                    if not loaded:
                        self.cursor = await self._load_cursor()
                        loaded = True
                    more = await self.poll(session, intake)
                    problem.ok()
                except (aiohttp.ClientError, TimeoutError, OSError, GatewayError) as exc:
                    problem.failed(str(exc) or type(exc).__name__)
                    more = False
                if not more:
                    await asyncio.sleep(self.options.interval)
        finally:
            await session.close()

    async def poll(self, session: aiohttp.ClientSession, intake: Intake) -> bool:
        """Fetch one page, submit it, then move the cursor; whether to poll again at once."""
        url = URL(self.options.url)
        if self.cursor is not None:
            url = url.update_query({self.options.cursor_param: self.cursor})
        async with session.get(url, headers={"Accept": "application/json"},
                               allow_redirects=False) as response:
            if response.status != 200:
                raise BadAnswer(f"HTTP {response.status}: {await body_start(response)}")
            data = await read_at_most(response, self.options.max_response)
        if data is None:
            raise BadAnswer(f"the answer is larger than [sources.{self.name}] max_response"
                            f" ({self.options.max_response} bytes)")
        page = read_page(data)
        raws, bad = [], []
        for n, entry in enumerate(page.messages):
            try:
                raws.append(self._raw(entry))
            except ValueError as exc:
                bad.append((self._evidence(n, entry), str(exc)))
        if raws:
            await intake.submit(raws)
        for raw, reason in bad:
            await intake.quarantine(raw, reason)
        moved = page.cursor is not None and page.cursor != self.cursor
        if page.cursor is not None and moved:
            await self.save_cursor(page.cursor)
        if raws or bad:
            log.info("rest source %s: %d messages taken, %d set aside", self.name, len(raws),
                     len(bad))
        return page.more and (moved or bool(page.messages))

    def _raw(self, entry: Any) -> RawInput:
        """The input a message of the page makes.

        :raises ValueError: it is not a message of the protocol.
        """
        if not isinstance(entry, dict):
            raise ValueError("a message must be a JSON object")
        ident, body = entry.get("id"), entry.get("body")
        if not isinstance(ident, str) or not ident:
            raise ValueError("a message needs an \"id\" (a string)")
        if not isinstance(body, str):
            raise ValueError(f"message {ident[:MAX_ID]}: \"body\" must be a string")
        content_type = entry.get("content_type", DEFAULT_CONTENT_TYPE)
        if not isinstance(content_type, str):
            raise ValueError(f"message {ident[:MAX_ID]}: \"content_type\" must be a string")
        encoding = entry.get("encoding")
        if encoding == "base64":
            try:
                data = base64.b64decode(body, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"message {ident[:MAX_ID]}: body is not base64 ({exc})") from exc
        elif encoding is None:
            data = body.encode("utf-8")
        else:
            raise ValueError(f"message {ident[:MAX_ID]}: unknown encoding {str(encoding)[:40]!r}"
                             " (base64 or none)")
        return RawInput(self.name, ident[:MAX_ID], data,
                        {"content_type": content_type, "rest_id": ident[:MAX_ID]})

    def _evidence(self, n: int, entry: Any) -> RawInput:
        """What is stored of a message that is not one: its JSON, as the server sent it."""
        return RawInput(self.name, f"message {n} of a page from {self._where}",
                        json.dumps(entry, ensure_ascii=False).encode("utf-8"),
                        {"content_type": "application/json"})

    async def save_cursor(self, cursor: str) -> None:
        """Write the cursor durably; until it is, the next poll repeats the page.

        :raises ~gateway.api.TransientError: it was not written in time
            (:meth:`~gateway.api.CursorFile.write`).
        """
        await self.cursor_file.write(json.dumps({"cursor": cursor}).encode("utf-8"))
        self.cursor = cursor

    async def _load_cursor(self) -> str | None:
        """The cursor a previous run wrote; none on a first start (or an unreadable file).

        :raises ~gateway.api.TransientError: it was not read in time
            (:meth:`~gateway.api.CursorFile.read`).
        """
        try:
            data = await self.cursor_file.read()
            found = None if data is None else json.loads(data)["cursor"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("rest source %s: cannot read its cursor %s (%s); polling from the start"
                      " (what was taken already is stored as duplicates)", self.name,
                      self.cursor_file.path, exc)
            return None
        return found if isinstance(found, str) else None


def read_page(data: bytes) -> Page:
    """The page in an answer's body.

    :raises BadAnswer: it is not JSON of the protocol's shape.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadAnswer(f"the answer is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("messages", []), list):
        raise BadAnswer('the answer is not an object with a list "messages"')
    cursor, more = doc.get("cursor"), doc.get("more", False)
    if cursor is not None and not isinstance(cursor, str):
        raise BadAnswer('"cursor" must be a string or null')
    if not isinstance(more, bool):
        raise BadAnswer('"more" must be true or false')
    return Page(doc.get("messages", []), cursor, more)
