"""Loading a certificate and its private key, with a reason an operator can act on.

``ssl`` says ``[SSL] PEM lib`` for a file that is not what it should be, whichever
file that is, and OpenSSL asks for the pass phrase of an encrypted key on the
terminal (``check-config`` waited for it; ``run``, without one, failed with
``Invalid argument``). Here each is said of the key that names the file.
"""

from __future__ import annotations

import ssl
from pathlib import Path

#: Of a file, how much is looked at for what it holds.
_HEAD = 1 << 20
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"


class _PassPhraseAsked(Exception):
    """The key is encrypted: OpenSSL asked for its pass phrase."""


def _ask() -> str:
    raise _PassPhraseAsked


def load_pair(context: ssl.SSLContext, cert: Path, key: Path | None,
              names: tuple[str, str] = ("cert", "key")) -> None:
    """Load ``cert`` (PEM, chain after it) and its private ``key`` (``None``: inside
    ``cert``) into ``context``.

    :param names: the configuration keys of the two files, for the reason.
    :raises ValueError: naming the file and what is wrong with it: not PEM, a key where
        the certificate belongs, an encrypted key, a key that is not the certificate's.
    """
    try:
        context.load_cert_chain(cert, key, password=_ask)
    except _PassPhraseAsked:
        raise ValueError(
            f"{names[1]} {key or cert} is encrypted: the gateway asks for no pass phrase; give"
            " it the key unencrypted (openssl pkey -in KEY -out NEW.key), readable by the"
            " gateway alone") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(_why(cert, key, names, exc)) from exc


def load_ca(context: ssl.SSLContext, path: Path, name: str) -> None:
    """Load the CA certificates of ``path`` (PEM) into ``context``.

    :raises ValueError: naming ``name`` and the file, when it holds no PEM certificate.
    """
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(ca_problem(path, name, exc)) from exc


def ca_problem(path: Path, name: str, exc: Exception) -> str:
    """Why the CA certificates of ``path`` (the key ``name``) could not be loaded (``exc``)."""
    return f"{name} {path}: {_holds_no_certificate(path) or exc}"


def _why(cert: Path, key: Path | None, names: tuple[str, str], exc: Exception) -> str:
    cert_key, key_key = names
    problem = _holds_no_certificate(cert, " (are cert and key swapped?)")
    if problem is not None:
        return f"{cert_key} {cert}: {problem}"
    key_file = key if key is not None else cert
    head = _head(key_file)
    if isinstance(head, str):
        return f"{key_key} {key_file}: {head}"
    if _PRIVATE_KEY not in head:
        where = "" if key is not None else f" (unset: looked for in {cert_key})"
        return (f"{key_key}{where} {key_file} holds no PEM private key"
                " ('-----BEGIN ... PRIVATE KEY-----')")
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return f"{key_key} {key_file} is not the private key of {cert_key} {cert}"
    return f"cannot use {cert_key} {cert} with {key_key} {key_file}: {exc}"


def _holds_no_certificate(path: Path, swapped: str = "") -> str | None:
    """Why ``path`` holds no PEM certificate (``swapped``: what to add when it holds a
    private key), or ``None``."""
    head = _head(path)
    if isinstance(head, str):
        return head
    if _CERTIFICATE in head:
        return None
    key = f" but a private key{swapped}" if _PRIVATE_KEY in head else ""
    return f"holds no PEM certificate ('{_CERTIFICATE.decode()}'){key}"


def _head(path: Path) -> bytes | str:
    """The start of ``path``, or why it cannot be read."""
    try:
        with path.open("rb") as stream:
            return stream.read(_HEAD)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
