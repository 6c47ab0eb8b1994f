"""The daemon's HTTP server: off by default, listen parsing, TLS with client certificates, errors."""

from __future__ import annotations

import io
import logging
import ssl
from contextlib import redirect_stdout
from pathlib import Path

import aiohttp
import pytest
import trustme

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.config._http import HttpSettings, parse_listen
from gateway.errors import ConfigError
from gateway.http.server import HttpServer
from tests.flow import message, running, states
from tests.pushing import TOKEN, push_gateway, url


def _cli(config: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--config", str(config), *argv])
    return code, out.getvalue()


@pytest.mark.parametrize(("text", "address"), [
    ("8443", ("127.0.0.1", 8443)),
    (":8443", ("127.0.0.1", 8443)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("gateway.example:8443", ("gateway.example", 8443)),
    ("[::1]:8443", ("::1", 8443)),
])
def test_listen_binds_127_0_0_1_unless_a_host_is_given(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize(("listen", "warned"), [
    ("0.0.0.0:0", True), ("[::]:0", True), (":0", False), ("localhost:0", False),
    ("[::1]:0", False)])
async def test_plain_http_beyond_this_machine_is_warned_of(
        listen: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
    server = HttpServer(HttpSettings(listen=listen), [], shutdown_timeout=1.0)
    with caplog.at_level(logging.INFO, logger="gateway.http.server"):
        await server.start()
        await server.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) is warned, warnings
    if warned:
        assert warnings[0].startswith(f"HTTP server on {server.host}:{server.port} without TLS:")


async def test_no_http_server_unless_listen_is_set(tmp_path: Path) -> None:
    async with running(write_initial_config(tmp_path)) as gw:
        assert gw.http is None


def test_check_config_reports_a_bad_listen_and_unreadable_cert_files(tmp_path: Path) -> None:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-x.toml").write_text(
        '[http]\nlisten = "127.0.0.1:99999"\n[http.tls]\ncert = "missing.pem"\nkey = "key.pem"\n')
    (tmp_path / "conf.d" / "key.pem").write_text("not a key")
    code, out = _cli(config, "check-config")
    assert code == 2
    assert 'http.listen: not HOST:PORT, :PORT or PORT: \'127.0.0.1:99999\'' in out
    assert f"http.tls.cert: no such file: {tmp_path}/conf.d/missing.pem" in out


def test_check_config_reports_a_key_that_does_not_fit_the_cert(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    other.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-x.toml").write_text(
        '[http]\nlisten = ":0"\n[http.tls]\ncert = "../cert.pem"\nkey = "../key.pem"\n')
    code, out = _cli(config, "check-config")
    assert code == 2
    assert out.splitlines() == [f"{tmp_path}/conf.d/10-x.toml: http.tls: key {tmp_path}/key.pem"
                                f" is not the private key of cert {tmp_path}/cert.pem"]


def test_check_config_names_the_tls_file_that_is_wrong_and_asks_for_no_pass_phrase(
        tmp_path: Path) -> None:
    """``ssl`` said ``cannot use A, B or None: [SSL] PEM lib`` whichever file was wrong, and
    OpenSSL asked for an encrypted key's pass phrase on the terminal (``run`` without one:
    ``Invalid argument``)."""
    from cryptography.hazmat.primitives import serialization

    issued = trustme.CA().issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    issued.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    (tmp_path / "locked.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    config = write_initial_config(tmp_path / "gw")
    tls = tmp_path / "gw" / "conf.d" / "10-x.toml"
    for cert, key_file, reason in [
        ("key.pem", "cert.pem", f"cert {tmp_path}/key.pem: holds no PEM certificate"
         " ('-----BEGIN CERTIFICATE-----') but a private key (are cert and key swapped?)"),
        ("cert.pem", "locked.pem", f"key {tmp_path}/locked.pem is encrypted: the gateway asks"
         " for no pass phrase; give it the key unencrypted (openssl pkey -in KEY -out"
         " NEW.key), readable by the gateway alone")]:
        tls.write_text(f'[http]\nlisten = ":0"\n[http.tls]\ncert = "{tmp_path / cert}"\n'
                       f'key = "{tmp_path / key_file}"\n')
        code, out = _cli(config, "check-config")
        assert (code, out.splitlines()) == (2, [f"{tls}: http.tls: {reason}"])


def test_check_config_reports_a_push_source_without_the_server(tmp_path: Path) -> None:
    config = push_gateway(tmp_path)
    (tmp_path / "conf.d" / "20-off.toml").write_text("")
    text = (tmp_path / "conf.d" / "10-http.toml").read_text().replace('listen = "127.0.0.1:0"', "")
    (tmp_path / "conf.d" / "10-http.toml").write_text(text)
    code, out = _cli(config, "check-config")
    assert code == 2
    assert ('sources.push.type: a source of type "http" needs the HTTP server: set [http] listen'
            in out)


async def test_a_port_in_use_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    first = push_gateway(tmp_path / "a")
    async with running(first) as gw:
        assert gw.http is not None
        second = push_gateway(tmp_path / "b")
        text = (tmp_path / "b" / "conf.d" / "10-http.toml").read_text()
        (tmp_path / "b" / "conf.d" / "10-http.toml").write_text(
            text.replace("127.0.0.1:0", f"127.0.0.1:{gw.http.port}"))
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            async with running(second):
                pass


@pytest.fixture
def tls(tmp_path: Path) -> trustme.CA:
    """A CA whose certificates the server presents and requires: files in ``tmp_path/tls``."""
    ca = trustme.CA()
    folder = tmp_path / "tls"
    folder.mkdir()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return ca


def _client(ca: trustme.CA, cert_from: trustme.CA | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if cert_from is not None:
        cert_from.issue_cert("registry.example").configure_cert(ctx)
    return ctx


TLS = '[http.tls]\ncert = "../tls/server.pem"\nkey = "../tls/server.key"\nclient_ca = "../tls/ca.pem"\n'


async def test_tls_with_client_certificates_refuses_clients_without_one(
        tmp_path: Path, tls: trustme.CA) -> None:
    config = push_gateway(tmp_path, extra=TLS)
    db = tmp_path / "gateway.db"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with running(config) as gw, aiohttp.ClientSession() as session:
        target = url(gw)
        assert target.startswith("https://")
        async with session.post(target, data=message("over-tls"), headers=headers,
                                ssl=_client(tls, tls)) as response:
            assert response.status == 202
            stored = (await response.json())["id"]
        for refused in (_client(tls, None), _client(tls, trustme.CA())):
            with pytest.raises(aiohttp.ClientError):
                async with session.post(target, data=message(), headers=headers, ssl=refused):
                    pass
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            async with session.post(target.replace("https:", "http:"), data=message(),
                                    headers=headers):
                pass
    assert states(db, "SELECT id FROM messages") == [(stored,)]
