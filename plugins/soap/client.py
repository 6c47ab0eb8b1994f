"""zeep set up for the gateway: a WSDL read from local files only, TLS, auth, timeouts.

zeep and requests are synchronous. :class:`SoapClient` runs each call in a
thread of a pool of its own (``concurrency`` threads, each with its own
``requests`` session and zeep client over one parsed WSDL), so a service that
hangs holds that pool, never the event loop or the threads other parts of
the gateway use. The pool starts with the first call and again with the first
call after :meth:`SoapClient.close`, so a source the daemon restarts after a
failure can call again. The connect and read timeouts bound each wait for the
service, and ``call_timeout`` the whole call: a service that trickles its
answer, a few bytes before every read timeout, is cut off too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests
import zeep
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import ExternalReferenceForbidden
from zeep.proxy import OperationProxy
from zeep.wsdl import Document
from zeep.wsse.username import UsernameToken

from gateway.api import ConfigError, retry_after_seconds
from plugins.soap.faults import with_retry_after
from plugins.soap.options import SoapConnection

T = TypeVar("T")
#: The most bytes of an answer taken in one read.
_CHUNK = 1 << 16


class RemoteLoadRefused(ZeepError):
    """The WSDL or a schema it imports is not a local file."""


class LocalTransport(zeep.Transport):
    """A zeep transport that reads WSDL and schema files from disk and refuses the network.

    The HTTP calls of operations go through it too; their bodies are not
    logged (they carry personal data).

    :param verify: the CA file, passed with each call: requests lets the
        environment (``REQUESTS_CA_BUNDLE``) override a session's own ``verify``.
    """

    last_status: int | None = None
    #: The seconds the last answer's ``Retry-After`` asked for, if it had one.
    last_retry_after: float | None = None

    def __init__(self, verify: str | bool = True, call_timeout: float = 300.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verify = verify
        self.call_timeout = call_timeout

    def load(self, url: str) -> bytes:
        """The content of a local file (a path or a ``file:`` URL); anything else is refused."""
        parts = urlsplit(url)
        if parts.scheme == "file":
            path = Path(url2pathname(parts.path))
        elif parts.scheme and len(parts.scheme) > 1:  # a drive letter is no scheme
            raise RemoteLoadRefused(f"refused to fetch {url}: the WSDL and what it imports must"
                                    " be local files")
        else:
            path = Path(url).expanduser()
        return path.read_bytes()

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        """POST ``message`` to ``address``; the status and ``Retry-After`` are kept for
        classifying errors.

        The answer is read as it comes, each read bounded by the read timeout,
        all of them by ``call_timeout``.

        :raises requests.Timeout: the answer is not complete within ``call_timeout``.
        """
        deadline = time.monotonic() + self.call_timeout
        response = self.session.post(address, data=message, headers=headers, stream=True,
                                     timeout=self.operation_timeout, verify=self.verify)
        self.last_status = response.status_code
        self.last_retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        body = bytearray()
        with response:
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                body += chunk
                if time.monotonic() > deadline:
                    raise requests.Timeout(f"the answer was not complete within call_timeout"
                                           f" ({self.call_timeout:g} s)")
        # what requests keeps of a body it read itself; zeep reads ``content``
        response._content, response._content_consumed = bytes(body), True
        return response


def settings() -> zeep.Settings:
    """zeep's XML settings: no DTDs, no entities, nothing external, no huge trees."""
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)


def load_wsdl(path: Path) -> Document:
    """Parse the WSDL at ``path`` with :class:`LocalTransport`.

    :raises ValueError: the WSDL (or an import) is remote, missing or invalid; the text says which.
    """
    try:
        # zeep annotates ``transport`` as a class, but uses (and needs) an instance.
        return Document(str(path), LocalTransport(), settings=settings())  # type: ignore[arg-type]
    except RemoteLoadRefused as exc:
        raise ValueError(str(exc)) from None
    except ExternalReferenceForbidden as exc:  # zeep's own check, before it reaches the transport
        raise ValueError(f"refused to fetch {exc.url}: the WSDL and what it imports must be"
                         " local files") from None
    except (OSError, ZeepError, ValueError) as exc:
        raise ValueError(f"cannot read the WSDL {path}: {exc}") from None


def operation_of(document: Document, options: SoapConnection, name: str) -> Any:
    """The bound operation ``name`` of the configured service and port.

    :raises ValueError: no such service, port or operation.
    """
    client = zeep.Client(document, transport=LocalTransport(), settings=settings(),
                         service_name=options.service, port_name=options.port)
    try:
        proxy = client.service
    except (ValueError, ZeepError, KeyError) as exc:
        raise ValueError(f"{exc}") from None
    binding = proxy._binding
    operations = binding._operations
    if name not in operations:
        known = ", ".join(sorted(operations)) or "none"
        raise ValueError(f"the WSDL has no operation {name!r} (it has: {known})")
    return operations[name]


class SoapClient:
    """Calls operations of one service, in a thread pool of its own."""

    def __init__(self, options: SoapConnection, document: Document, label: str) -> None:
        self.options = options
        self.document = document
        self.label = label
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def start(cls, options: SoapConnection, label: str, key: str) -> SoapClient:
        """Load the WSDL and check that the operation is there.

        :raises ConfigError: it is not (the key names the option at fault).
        """
        try:
            document = load_wsdl(options.wsdl)
            operation_of(document, options, options.operation)
        except ValueError as exc:
            raise ConfigError([(str(options.wsdl), key, str(exc))]) from None
        return cls(options, document, label)

    def _session(self) -> requests.Session:
        o = self.options
        session = requests.Session()
        if o.client_cert is not None:
            session.cert = (str(o.client_cert), str(o.client_key)) if o.client_key else str(
                o.client_cert)
        if o.auth == "basic" and o.password is not None:
            session.auth = (o.username or "", o.password.get_secret_value())
        return session

    def _service(self) -> tuple[Any, LocalTransport]:
        """This thread's service proxy and transport."""
        found: tuple[Any, LocalTransport] | None = getattr(self._local, "service", None)
        if found is None:
            o = self.options
            transport = LocalTransport(str(o.ca_file) if o.ca_file else True,
                                       call_timeout=o.call_timeout, session=self._session(),
                                       operation_timeout=(o.connect_timeout, o.read_timeout))
            wsse = None
            if o.auth == "wsse" and o.password is not None:
                wsse = UsernameToken(o.username, o.password.get_secret_value(),
                                     use_digest=o.wsse_digest)
            client = zeep.Client(self.document, transport=transport, wsse=wsse,
                                 settings=settings(), service_name=o.service, port_name=o.port)
            proxy = client.service
            if o.address:
                proxy = client.create_service(proxy._binding.name, o.address)
            found = self._local.service = (proxy, transport)
        return found

    def _call(self, operation: str, kwargs: dict[str, Any],
              classify: Callable[[BaseException, int | None], Exception]) -> Any:
        proxy, transport = self._service()
        transport.last_status = transport.last_retry_after = None
        try:
            return OperationProxy(proxy, operation)(**kwargs)
        except (ZeepError, requests.RequestException, OSError, ValueError) as exc:
            verdict = classify(exc, transport.last_status)
            raise with_retry_after(verdict, transport.last_retry_after) from exc

    async def call(self, operation: str, kwargs: dict[str, Any],
                   classify: Callable[[BaseException, int | None], Exception]) -> Any:
        """Call ``operation`` with ``kwargs`` in the pool; errors become ``classify``'s verdict.

        :param classify: turns the exception and the HTTP status (if an answer
            came) into the exception to raise; a transient one waits at least as long
            as the answer's ``Retry-After`` asks.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.options.concurrency,
                                            thread_name_prefix=f"soap-{self.label}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, operation, kwargs, classify)

    def close(self) -> None:
        """Stop the pool without waiting for calls in flight (their timeouts end them);
        the next call starts a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
