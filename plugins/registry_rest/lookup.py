"""Finding a person in the registry: the look-up hooks' work, against ``POST persons/search``.

A look-up never stops processing: a registry that is down, slow (beyond
``lookup_timeout``) or answers nonsense counts as not knowing the person,
with one warning that names the registry and what went wrong, never the
person (a VN is personal data).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import aiohttp

from gateway.api import PersonState, TransientError, ech0223
from plugins.registry_rest.client import AnswerTooLarge, RegistryClient
from plugins.registry_rest.options import RegistryOptions

log = logging.getLogger(__name__)


def queries(keys: Sequence[str]) -> list[dict[str, str]]:
    """The ``persons/search`` queries for the gateway's person keys, in their order.

    ``vn:<13 digits>`` asks ``vn=``; ``local:<category>:<id>`` asks
    ``local_id=<category>:<id>`` (``local:*:<id>``, an operator's id of any
    category, asks ``local_id=<id>``).
    """
    found = []
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "vn" and value:
            found.append({"vn": value})
        elif kind == "local" and value:
            found.append({"local_id": value.removeprefix("*:")})
    return found


def identification_queries(ident: ech0223.PersonIdentificationLight) -> list[dict[str, str]]:
    """The ``persons/search`` queries for a person a message names, in the way back's order.

    By VN, then by local person id, then by official name, first name and
    date of birth (only a full date: a year alone finds too many).
    """
    asks = [{"vn": str(ident.vn)}] if ident.vn is not None else []
    local = ident.local_person_id
    if local is not None:
        asks.append({"local_id": f"{local.person_id_category}:{local.person_id}"})
    born = ident.date_of_birth.year_month_day if ident.date_of_birth is not None else None
    if born is not None:
        asks.append({"official_name": ident.official_name, "first_name": ident.first_name,
                     "date_of_birth": born.isoformat()})
    return asks


async def search(registries: Mapping[str, RegistryOptions],
                 asks: Sequence[dict[str, str]]) -> list[PersonState]:
    """The residents the first query that finds any finds, in the first registry that knows them
    (``registries``: the connection of each registry partner, by name); a registry that
    cannot be asked counts as knowing nobody."""
    found, _failed = await _search(registries, asks)
    return found


async def resolve(registries: Mapping[str, RegistryOptions],
                  asks: Sequence[dict[str, str]]) -> list[PersonState]:
    """:func:`search`, for the resident a partner's message is about.

    :raises TransientError: nobody was found and a registry could not be asked: the
        resident may be there (the core says so, and the message can be processed again).
    """
    found, failed = await _search(registries, asks)
    if not found and failed:
        raise TransientError(f"registry {', '.join(failed)} could not be searched")
    return found


async def _search(registries: Mapping[str, RegistryOptions], asks: Sequence[dict[str, str]]
                  ) -> tuple[list[PersonState], list[str]]:
    """The residents found (as :func:`search`), and the URLs of the registries that could not
    be asked."""
    failed: list[str] = []
    for name, options in registries.items():
        async with RegistryClient(options, name, connections=1) as client:
            for query in asks:
                try:
                    found = await client.persons(query)
                except (aiohttp.ClientError, TimeoutError, ValueError, AnswerTooLarge) as exc:
                    log.warning("registry %s: person look-up by %s failed (%s); taken as unknown",
                                options.url, "+".join(query), str(exc) or type(exc).__name__)
                    failed.append(options.url)
                    break  # this registry cannot be asked now: try the next one
                if found:
                    return found, failed
    return [], failed


async def look_up(registries: Mapping[str, RegistryOptions], keys: Sequence[str]
                  ) -> PersonState | None:
    """The one resident ``keys`` name, or ``None`` (nobody, or several: not for us to pick)."""
    found = await search(registries, queries(keys))
    if len(found) > 1:
        log.warning("person look-up: the registry knows %d persons by these keys; taken as"
                    " unknown", len(found))
        return None
    return found[0] if found else None
