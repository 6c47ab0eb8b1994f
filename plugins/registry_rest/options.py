"""How to reach a registry's REST API: the keys of ``[partners.<name>.registry-rest]``.

The registry is a partner with ``role = "registry"`` (README, "The way back");
its table is the one place the connection is configured. The transport
delivers the canton's messages there, the person look-ups ask the same API,
and a ``registry-rest`` source polls its events by naming the partner.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator

from gateway.api import Duration, HttpsClientOptions, PluginOptions, Size

#: The transport type (and the source type that polls a partner of it).
TRANSPORT = "registry-rest"


class RegistryOptions(HttpsClientOptions, PluginOptions):
    """The keys of ``[partners.<name>.registry-rest]``: the registry's API and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the registry API's base URL (http:// or https://); the gateway"
                                 " uses <url>/inbox, <url>/persons/search and <url>/events")
    token: SecretStr | None = Field(
        None, description="bearer token the registry expects ('Authorization: Bearer <token>');"
                          " token_file reads it from a file")
    timeout: Duration = Field(30.0, gt=0, description="longest time a delivery to the registry"
                                                     " may take, connecting included")
    lookup_timeout: Duration = Field(
        5.0, gt=0, description="longest time a person look-up may take: a registry that does not"
                               " answer in time counts as not knowing the person")
    max_response: Size = Field(
        64 << 20, gt=0, description="largest answer to an events poll or a person search taken,"
                                    " in bytes; a larger one is an error (a smaller batch of the"
                                    " registry-rest source asks for smaller pages)")

    @field_validator("url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            raise ValueError("must be the API's base URL, without ?query or #fragment")
        return value.rstrip("/")

    def endpoint(self, path: str) -> str:
        """The URL of one of the API's endpoints (``"inbox"``, ``"persons"``, ``"events"``)."""
        return f"{self.url}/{path}"

    def headers(self) -> dict[str, str]:
        """The headers every request carries (the bearer token, if any)."""
        if self.token is None:
            return {}
        return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
