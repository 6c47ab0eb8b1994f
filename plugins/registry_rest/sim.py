"""A commune registry's REST API, simulated: a real aiohttp server (docs/registry-rest.md).

It holds residents (as :class:`~gateway.api.PersonState`), an outbox of
events (eCH-0020 or eCH-0223 messages the gateway polls) and an inbox that
keeps the canton messages the gateway delivers, once per ``Idempotency-Key``.
For tests (run it with :func:`gateway.testing.serve`). ``down`` makes every
endpoint answer 503, as a registry in maintenance does.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api import PersonState, person_keys

#: The largest body the inbox takes.
MAX_BODY = 32 << 20


@dataclass(frozen=True, slots=True)
class Received:
    """A message in the inbox: its bytes, type and the key it was delivered under."""

    id: int
    key: str
    content_type: str
    body: bytes


class RegistrySimulator:
    """The registry; :meth:`app` is its aiohttp application.

    :param token: the bearer token every request must carry (``None``: none needed).
    """

    def __init__(self, persons: Iterable[PersonState] = (), token: str | None = None) -> None:
        self.persons: list[PersonState] = list(persons)
        self.token = token
        #: (id, content type, body) of each event, oldest first.
        self.outbox: list[tuple[int, str, bytes]] = []
        self.inbox: list[Received] = []
        #: ``True``: every request is answered 503 (and nothing stored).
        self.down = False
        #: seconds every request waits before it is answered (a slow registry).
        self.delay = 0.0
        #: how many of the next deliveries are stored, then their connection dropped unanswered.
        self.drop_after_storing = 0
        #: a status every delivery is refused with (a registry that will not take the message).
        self.refuse: int | None = None
        #: every request, as "METHOD /path?query", in order.
        self.requests: list[str] = []
        #: the body of every person search (``POST /persons/search``), in order.
        self.searches: list[dict[str, str]] = []
        #: the most deliveries (``POST /inbox``) that were being answered at one time.
        self.most_delivering = 0
        #: the most person searches (``POST /persons/search``) being answered at one time.
        self.most_searching = 0
        self._at_once = {"/inbox": 0, "/persons/search": 0}

    def add_event(self, body: bytes, content_type: str = "application/xml") -> int:
        """Put an event in the outbox; returns its id (its position, from 1)."""
        self.outbox.append((len(self.outbox) + 1, content_type, body))
        return len(self.outbox)

    def app(self) -> web.Application:
        """The registry's routes."""
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self._gate(request, handler)

        app = web.Application(middlewares=[gate], client_max_size=MAX_BODY)
        app.add_routes([web.post("/persons/search", self.find_persons), web.get("/events", self.events),
                        web.post("/inbox", self.receive), web.get("/inbox", self.list_inbox)])
        return app

    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request is noted, then refused while ``down`` or without the token."""
        self.requests.append(f"{request.method} {request.path_qs}")
        counted = request.path if request.method == "POST" and request.path in self._at_once else None
        if counted is not None:
            self._at_once[counted] += 1
            self.most_delivering = max(self.most_delivering, self._at_once["/inbox"])
            self.most_searching = max(self.most_searching, self._at_once["/persons/search"])
        try:
            return await self._answer(request, handler)
        finally:
            if counted is not None:
                self._at_once[counted] -= 1

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return web.json_response({"error": "in maintenance"}, status=503,
                                     headers={"Retry-After": "1"})
        if self.token is not None and not hmac.compare_digest(
                request.headers.get("Authorization", ""), f"Bearer {self.token}"):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    async def find_persons(self, request: web.Request) -> web.Response:
        """``POST /persons/search``: by ``vn``, by ``local_id``, or by names and date of birth."""
        try:
            query = await request.json()
        except ValueError:
            query = None
        if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
            return web.json_response({"error": "the body is not a JSON object of strings"},
                                     status=400)
        self.searches.append(query)
        if "vn" in query:
            found = [p for p in self.persons if f"vn:{query['vn']}" in person_keys(p.identification)]
        elif "local_id" in query:
            found = [p for p in self.persons if _has_local_id(p, query["local_id"])]
        elif {"official_name", "first_name", "date_of_birth"} <= query.keys():
            found = [p for p in self.persons if _named(p, query["official_name"],
                                                       query["first_name"], query["date_of_birth"])]
        else:
            return web.json_response({"error": "give vn, local_id, or official_name, first_name"
                                               " and date_of_birth"}, status=400)
        return web.json_response({"persons": [p.model_dump(mode="json", exclude_none=True)
                                              for p in found]})

    async def events(self, request: web.Request) -> web.Response:
        """``GET /events?after=CURSOR&limit=N``: the outbox after the cursor, oldest first."""
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return web.json_response({"error": "after and limit are numbers"}, status=400)
        page = [e for e in self.outbox if e[0] > after][:max(1, limit)]
        cursor = str(page[-1][0]) if page else (str(after) if after else None)
        return web.json_response({"events": [_event(*e) for e in page], "cursor": cursor})

    async def receive(self, request: web.Request) -> web.Response:
        """``POST /inbox``: keep the message once per ``Idempotency-Key``; 201, a repeat 200."""
        key = request.headers.get("Idempotency-Key", "")
        if self.refuse is not None:
            return web.json_response({"error": "refused by the simulator"}, status=self.refuse)
        if not key:
            return web.json_response({"error": "Idempotency-Key is required"}, status=400)
        for received in self.inbox:
            if received.key == key:
                return web.json_response({"id": received.id}, status=200)
        body = await request.read()
        if not body:
            return web.json_response({"error": "empty body"}, status=400)
        self.inbox.append(Received(len(self.inbox) + 1, key, request.content_type, body))
        if self.drop_after_storing > 0 and request.transport is not None:
            self.drop_after_storing -= 1
            request.transport.close()  # stored, but the gateway never hears so
        return web.json_response({"id": len(self.inbox)}, status=201)

    async def list_inbox(self, request: web.Request) -> web.Response:
        """``GET /inbox``: what the inbox holds (ids, keys, types, sizes)."""
        return web.json_response({"messages": [
            {"id": r.id, "key": r.key, "content_type": r.content_type, "bytes": len(r.body)}
            for r in self.inbox]})


def _event(event_id: int, content_type: str, body: bytes) -> dict[str, str]:
    if content_type.endswith("xml"):
        return {"id": str(event_id), "content_type": content_type, "body": body.decode("utf-8")}
    return {"id": str(event_id), "content_type": content_type,
            "body_base64": base64.b64encode(body).decode("ascii")}


def _has_local_id(person: PersonState, wanted: str) -> bool:
    local = person.identification.local_person_id
    if local is None:
        return False
    category, _, pid = wanted.rpartition(":")
    return local.person_id == pid and (not category or local.person_id_category == category)


def _named(person: PersonState, official: str, first: str, born: str) -> bool:
    ident = person.identification
    birth = ident.date_of_birth.year_month_day if ident.date_of_birth is not None else None
    try:
        wanted = date.fromisoformat(born)
    except ValueError:
        return False
    return (ident.official_name.casefold() == official.casefold()
            and ident.first_name.casefold() == first.casefold() and birth == wanted)
