"""A real SOAP service for the tests: the canton's message service of ``fixtures/soap/migration.wsdl``.

An aiohttp server on 127.0.0.1 over TLS that requires a client certificate
(certificates made with ``trustme``), parsing SOAP 1.1 envelopes with lxml.
It checks HTTP basic authentication or a WS-Security UsernameToken when told
to, answers ``SubmitMessage*`` with a receipt id, and follows a plan per
eCH-0223 message id for the tests of failures: ``client`` (a Client fault),
``server`` (a Server fault), ``hang`` (no answer until the test ends),
``trickle`` (an answer a byte at a time, each well within any read timeout,
until the test ends), ``http503``, ``http429`` (with ``Retry-After: 2``),
``slow`` (the receipt after :attr:`SoapService.slow` seconds;
:attr:`SoapService.most_in_flight` counts the calls answered at once).
``FetchMessages`` pages through :attr:`SoapService.outbox` with the index
of the last message returned as the cursor.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web
from lxml import etree

FIXTURES = Path(__file__).parent / "fixtures" / "soap"
WSDL = FIXTURES / "migration.wsdl"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:example:canton:migration-messages:1"
WSSE = ("http://docs.oasis-open.org/wss/2004/01/"
        "oasis-200401-wss-wssecurity-secext-1.0.xsd")
WSU = ("http://docs.oasis-open.org/wss/2004/01/"
       "oasis-200401-wss-wssecurity-utility-1.0.xsd")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class Certs:
    """PEM files of a test PKI: the CA, the server's certificate, and our client certificate."""

    ca: Path
    server: Path
    client: Path
    #: A client certificate from a CA the service does not trust.
    stranger: Path


def make_certs(directory: Path) -> Certs:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    paths = Certs(*(directory / f"{n}.pem" for n in ("ca", "server", "client", "stranger")))
    ca.cert_pem.write_to_path(str(paths.ca))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(paths.server))
    ca.issue_cert("gateway.commune.example").private_key_and_cert_chain_pem.write_to_path(
        str(paths.client))
    other.issue_cert("gateway.commune.example").private_key_and_cert_chain_pem.write_to_path(
        str(paths.stranger))
    return paths


@dataclass
class SoapService:
    """The service's state: what it received, what it will answer."""

    certs: Certs
    basic: tuple[str, str] | None = None
    wsse: tuple[str, str] | None = None
    #: eCH-0223 message id -> outcomes of the next calls; the last one repeats ("ok" if none).
    plan: dict[str, list[str]] = field(default_factory=dict)
    #: (operation, messageId, message bytes) of every accepted submit.
    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    #: Every call: (operation, messageId or "", outcome).
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    #: Messages FetchMessages hands out: (messageId, payload).
    outbox: list[tuple[str, bytes]] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    page: int = 10
    #: The next this many FetchMessages calls get a Server fault.
    fetch_faults: int = 0
    #: What those faults say.
    fault_text: str = "message store unavailable"
    #: How long a ``slow`` call takes, in seconds.
    slow: float = 0.5
    #: The most submits being answered at once.
    most_in_flight: int = 0
    _in_flight: int = 0
    url: str = ""
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
            if request.headers.get("Authorization") != expected:
                self.calls.append(("?", "", "401"))
                return web.Response(status=401, text="authentication required",
                                    headers={"WWW-Authenticate": 'Basic realm="canton"'})
        envelope = etree.fromstring(await request.read(), _PARSER)
        if self.wsse is not None and not self._wsse_ok(envelope):
            self.calls.append(("?", "", "wsse"))
            return fault("wsse:FailedAuthentication", "The security token could not be"
                         " authenticated or authorized", {"wsse": WSSE})
        [call] = envelope.find(f"{{{ENV}}}Body")
        operation = etree.QName(call).localname
        if operation == "FetchMessages":
            return self._fetch(call)
        if operation == "AcknowledgeMessages":
            ids = [e.text or "" for e in call.iter(f"{{{TNS}}}messageId")]
            self.acknowledged += ids
            return answer("AcknowledgeMessagesResponse", f"<tns:count>{len(ids)}</tns:count>")
        return await self._submit(operation, call, request)

    async def _submit(self, operation: str, call: etree._Element,
                      request: web.Request) -> web.StreamResponse:
        message_id = call.findtext(f".//{{{TNS}}}messageId") or ""
        outcomes = self.plan.get(message_id) or ["ok"]
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]  # the last one stays
        self.calls.append((operation, message_id, outcome))
        if outcome == "client":
            return fault("soap:Client", f"message {message_id} refused: unknown municipality")
        if outcome == "server":
            return fault("soap:Server", "registry backend unavailable, try later")
        if outcome == "http503":
            return web.Response(status=503, text="maintenance")
        if outcome == "http429":
            return web.Response(status=429, text="too many requests",
                                headers={"Retry-After": "2"})
        if outcome == "hang":
            await self._stop.wait()
            return web.Response(status=503, text="too late")
        if outcome == "trickle":
            return await self._trickle(request)
        if outcome == "slow":
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            try:
                await asyncio.sleep(self.slow)
            finally:
                self._in_flight -= 1
        element = call.find(f"{{{TNS}}}message")
        assert element is not None
        if operation == "SubmitMessage":
            data = base64.b64decode(element.text or "")
        elif operation == "SubmitMessageText":
            data = (element.text or "").encode()
        else:
            data = etree.tostring(element[0])
        self.received.append((operation, message_id, data))
        return answer("SubmitMessageResponse",
                      f"<tns:receiptId>r-{len(self.received)}</tns:receiptId>")

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        """Start an answer, then send it a byte every 100 ms until the test ends."""
        response = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8"})
        await response.prepare(request)
        await response.write(b"<?xml version='1.0' encoding='utf-8'?>\n")
        while not self._stop.is_set():
            try:
                await response.write(b" ")
            except (ConnectionError, RuntimeError):  # the client gave up: as it should
                break
            await asyncio.sleep(0.1)
        return response

    def _fetch(self, call: etree._Element) -> web.StreamResponse:
        after = call.findtext(f"{{{TNS}}}after")
        if self.fetch_faults:
            self.fetch_faults -= 1
            self.calls.append(("FetchMessages", after or "", "server"))
            return fault("soap:Server", self.fault_text)
        start = int(after) + 1 if after else 0
        page = self.outbox[start:start + self.page]
        self.calls.append(("FetchMessages", after or "", str(len(page))))
        items = "".join(
            f"<tns:message><tns:messageId>{mid}</tns:messageId>"
            f"<tns:payload>{base64.b64encode(data).decode()}</tns:payload></tns:message>"
            for mid, data in page)
        cursor = f"<tns:cursor>{start + len(page) - 1}</tns:cursor>" if page else (
            f"<tns:cursor>{after}</tns:cursor>" if after else "")
        return answer("FetchMessagesResponse", cursor + items)

    def _wsse_ok(self, envelope: etree._Element) -> bool:
        assert self.wsse is not None
        token = envelope.find(f".//{{{WSSE}}}UsernameToken")
        if token is None or token.findtext(f"{{{WSSE}}}Username") != self.wsse[0]:
            return False
        password = token.find(f"{{{WSSE}}}Password")
        if password is None:
            return False
        if (password.get("Type") or "").endswith("#PasswordDigest"):
            nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
            created = (token.findtext(f"{{{WSU}}}Created") or "").encode()
            digest = hashlib.sha1(nonce + created + self.wsse[1].encode()).digest()
            return password.text == base64.b64encode(digest).decode()
        return password.text == self.wsse[1]

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.certs.ca))
        ctx.load_cert_chain(str(self.certs.server))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def answer(element: str, content: str) -> web.Response:
    """A SOAP 1.1 answer with the body element ``tns:<element>``."""
    body = (f'<soap:Envelope xmlns:soap="{ENV}" xmlns:tns="{TNS}"><soap:Body>'
            f"<tns:{element}>{content}</tns:{element}></soap:Body></soap:Envelope>")
    return web.Response(body=body.encode(), content_type="text/xml", charset="utf-8")


def fault(code: str, text: str, nsmap: dict[str, str] | None = None) -> web.Response:
    """A SOAP 1.1 fault, status 500."""
    extra = "".join(f' xmlns:{p}="{ns}"' for p, ns in (nsmap or {}).items())
    body = (f'<soap:Envelope xmlns:soap="{ENV}"{extra}><soap:Body><soap:Fault>'
            f"<faultcode>{code}</faultcode><faultstring>{text}</faultstring>"
            "</soap:Fault></soap:Body></soap:Envelope>")
    return web.Response(status=500, body=body.encode(), content_type="text/xml", charset="utf-8")


@asynccontextmanager
async def serving(service: SoapService) -> AsyncIterator[SoapService]:
    """Run ``service`` on 127.0.0.1 (a free port) over TLS with client certificates required."""
    app = web.Application()
    app.router.add_post("/migration-messages", service.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=service.ssl_context())
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    service.url = f"https://127.0.0.1:{port}/migration-messages"
    try:
        yield service
    finally:
        service._stop.set()
        await runner.cleanup()
