"""HttpsClientOptions: the URL and TLS keys every HTTP plugin shares (REST, registry-rest)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from gateway.api import HttpsClientOptions
from plugins.registry_rest.options import RegistryOptions
from plugins.rest._client import ClientOptions


def _files(tmp_path: Path) -> tuple[Path, Path]:
    ca = trustme.CA()
    ca_file, cert_file = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    return ca_file, cert_file


@pytest.mark.parametrize("model", [ClientOptions, RegistryOptions])
def test_each_http_plugin_refuses_the_same_mistakes(model: type[HttpsClientOptions],
                                                    tmp_path: Path) -> None:
    ca_file, cert_file = _files(tmp_path)
    cases = {
        "must be an http:// or https:// URL": {"url": "ftp://host/x"},
        "no file": {"url": "https://h", "ca_file": str(tmp_path / "missing.pem")},
        "client_key needs client_cert": {"url": "https://h", "client_key": str(cert_file)},
        "ca_file need an https:// url": {"url": "http://h", "ca_file": str(ca_file)},
    }
    for reason, keys in cases.items():
        with pytest.raises(ValidationError, match=reason):
            model.model_validate(keys)


def test_a_tls_file_that_cannot_be_used_is_refused_naming_it(tmp_path: Path) -> None:
    """check-config said such options were valid, and ``run`` stopped with the traceback of
    ``ssl.SSLError: [SSL] PEM lib``."""
    issued = trustme.CA().issue_cert("client.example")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    cases = {
        f"client_cert {key}: holds no PEM certificate ('-----BEGIN CERTIFICATE-----') but a"
        " private key (are cert and key swapped?)": {"client_cert": key, "client_key": cert},
        f"ca_file {key}: holds no PEM certificate ('-----BEGIN CERTIFICATE-----') but a"
        " private key": {"ca_file": key},
        f"client_key (unset: looked for in client_cert) {cert} holds no PEM private key":
            {"client_cert": cert},
    }
    for reason, keys in cases.items():
        with pytest.raises(ValidationError) as caught:
            ClientOptions.model_validate({"url": "https://h", **keys})
        assert reason in str(caught.value)
    ClientOptions.model_validate({"url": "https://h", "client_cert": cert, "client_key": key})


def test_tls_context_only_where_configured(tmp_path: Path) -> None:
    ca_file, cert_file = _files(tmp_path)
    assert HttpsClientOptions(url="https://h").ssl_context() is None  # the system's defaults
    context = HttpsClientOptions(url="https://h", ca_file=ca_file,
                                 client_cert=cert_file).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1  # our CA, not the system's


def test_the_registry_adds_its_own_url_rule() -> None:
    assert RegistryOptions(url="https://registry.example/api/").url == "https://registry.example/api"
    with pytest.raises(ValidationError, match="base URL"):
        RegistryOptions(url="https://registry.example/api?x=1")
    with pytest.raises(ValidationError, match="must be an http"):
        RegistryOptions(url="registry.example")
