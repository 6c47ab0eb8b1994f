"""The keys of a ``type = "http"`` source: who may push, and how much."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from gateway.api import Duration, PluginOptions, Size

_HEX = re.compile(r"[0-9a-f]{64}")


class HttpPushOptions(PluginOptions):
    """The keys of a ``type = "http"`` source."""

    tokens_sha256: list[str] = Field(
        [], description="SHA-256 digests (hex) of the bearer tokens that may push here"
        " (`printf %s TOKEN | sha256sum`); the tokens themselves are not kept")
    token_files: list[Path] = Field(
        [], description="files that each hold one bearer token (read at start; a trailing"
        " newline is not part of the token)")
    max_bytes: Size | None = Field(
        None, gt=0, description="largest body taken, in bytes (\"1MiB\"); lowers [limits]"
        " max_document_bytes for this source; a larger body is answered 413")
    body_timeout: Duration = Field(
        30.0, gt=0, description="time a body may take to come in full, once the request's"
        " headers are in, plus a second for each 16 KiB of it (its Content-Length, else the"
        " largest body taken): at least 16 KiB/s; a body slower than that is answered 408"
        " and nothing of it is stored")

    @field_validator("tokens_sha256")
    @classmethod
    def _check_digests(cls, value: list[str]) -> list[str]:
        digests = [d.strip().lower() for d in value]
        bad = [d for d in digests if not _HEX.fullmatch(d)]
        if bad:
            raise ValueError(f"not a SHA-256 hex digest (64 hex digits): {bad[0][:70]!r}")
        return digests

    @field_validator("token_files")
    @classmethod
    def _check_files(cls, value: list[Path]) -> list[Path]:
        for path in value:
            read_token(path)
        return value

    @model_validator(mode="after")
    def _some_token(self) -> HttpPushOptions:
        if not self.tokens_sha256 and not self.token_files:
            raise ValueError("no token: set tokens_sha256 or token_files (else nobody may push)")
        return self

    def digests(self) -> list[bytes]:
        """The SHA-256 digests of every token that may push, token files read now."""
        return ([bytes.fromhex(d) for d in self.tokens_sha256]
                + [hashlib.sha256(read_token(p).encode()).digest() for p in self.token_files])


def read_token(path: Path) -> str:
    """The token a file holds (without a trailing newline).

    :raises ValueError: the file cannot be read, or holds no token.
    """
    try:
        token = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {path}: {exc}") from exc
    if not token or token != token.strip():
        raise ValueError(f"the token file {path} is empty or has spaces around the token")
    return token
