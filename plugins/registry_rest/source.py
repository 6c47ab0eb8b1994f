"""The ``registry-rest`` source: the registry's outbox of events, polled.

``[sources.<name>] type = "registry-rest"`` uses the connection of the
registry partner of the same name (or the one ``registry = "<partner>"``
names), so the URL, token and TLS are configured once, and the way back
knows which registry sent the message a canton's answer refers to. Every
``poll_interval`` it asks for the events after its cursor, submits them, and
only once they are durably stored writes the new cursor (in the data folder,
``registry-rest/<name>.cursor``: each source its own). A crash in between
repeats those events at the next start; the store records a repeat as a
duplicate of the first, so nothing is processed twice and nothing is skipped.
An entry that is not an event of the API (no id, no body, bad base64) is
quarantined with the reason, as JSON, and the events after it go on: one bad
entry never stops the outbox.

The cursor is read once, at the first poll, and written when it moves, each
in a call into the data folder given up on after a minute
(:class:`~gateway.api.CursorFile`: a share that hangs holds up nothing else,
the stop neither); the poll is then tried again after ``poll_interval``, the
events since the last cursor written coming again, as duplicates.

Before each source had its own, the cursor was ``cursor`` in the data folder,
one file for all. At its first poll the only enabled ``registry-rest`` source
takes that file over (renamed, durably), so the upgrade neither repeats nor
skips an event; with several, no source can tell whose it is: it is left
where it is, and the first of them (by name) says so, once, in a WARNING.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import Field

from gateway.api import (
    CONFIGURATION,
    ConfigError,
    CursorFile,
    Duration,
    Intake,
    PluginContext,
    PluginOptions,
    RawInput,
    RepeatedProblem,
    TransientError,
)
from plugins.registry_rest.client import AnswerTooLarge, RegistryClient
from plugins.registry_rest.options import TRANSPORT, RegistryOptions

log = logging.getLogger(__name__)

#: The cursor file of every ``registry-rest`` source before each had its own (in the data folder).
SHARED_CURSOR = "cursor"


class RegistrySourceOptions(PluginOptions):
    """The keys of a ``type = "registry-rest"`` source."""

    registry: str | None = Field(
        None, description="the partner (transport = \"registry-rest\", role = \"registry\")"
                          " whose events this source polls; default: the one named like the source")
    poll_interval: Duration = Field(10.0, gt=0, description="wait between polls when the"
                                                            " registry had nothing new")
    batch: int = Field(100, ge=1, le=1000, description="most events asked for in one poll")


def registry_options(settings: object, partner: str) -> RegistryOptions | None:
    """The connection of the partner ``partner``, if it is a ``registry-rest`` partner."""
    config = getattr(settings, "partners", {}).get(partner)
    if config is None or config.transport != TRANSPORT or not isinstance(config.parsed,
                                                                         RegistryOptions):
        return None
    return config.parsed


class RegistrySource:
    """Polls one registry's ``events`` and submits each event as an input of this source."""

    def __init__(self, options: RegistrySourceOptions, context: PluginContext) -> None:
        partner = options.registry or context.name
        connection = registry_options(context.settings, partner)
        if connection is None:
            raise ConfigError([(CONFIGURATION, f"sources.{context.name}.registry",
                                f"{partner!r} is not a partner with transport = \"{TRANSPORT}\"")])
        self.name = context.name
        self.options = options
        self.client = RegistryClient(connection, partner, connections=1)
        self.cursor_file = CursorFile(context.data_dir / TRANSPORT / f"{self.name}.cursor")
        self._sources = registry_sources(context.settings)
        #: The cursor file of an earlier version (see the module docstring), until looked at.
        self._shared: Path | None = context.data_dir / SHARED_CURSOR
        #: The cursor written last (``None``: from the start), once read.
        self.cursor: str | None = None
        self._loaded = False
        self._problem = RepeatedProblem(log, f"source {self.name}")

    async def run(self, intake: Intake) -> None:
        """Poll until cancelled; a registry that cannot be asked is asked again next interval."""
        try:
            while True:
                try:
                    more = await self.poll(intake)
                except (aiohttp.ClientError, TimeoutError, ValueError, AnswerTooLarge) as exc:
                    self._problem.failed(f"cannot read the registry's events: {_said(exc)}")
                    more = False
                except (TransientError, OSError) as exc:  # its cursor file
                    self._problem.failed(_said(exc))
                    more = False
                else:
                    self._problem.ok()
                if not more:
                    await asyncio.sleep(self.options.poll_interval)
        finally:
            await self.client.close()

    async def poll(self, intake: Intake) -> bool:
        """One poll: submit what is new, then move the cursor; ``True`` when a full batch came.

        :raises ~gateway.api.TransientError: the cursor was not read or written in time.
        """
        if not self._loaded:
            data = await self.cursor_file.read()
            if self._shared is not None:
                data = await self._upgrade(self._shared, data)
                self._shared = None
            self.cursor = _after(data)
            self._loaded = True
        cursor = self.cursor
        events, after = await self.client.events(cursor, self.options.batch)
        raws = [RawInput(self.name, f"registry event {e.id}", e.body,
                         {"content_type": e.content_type}) for e in events]
        if good := [raw for raw, e in zip(raws, events, strict=True) if e.problem is None]:
            await intake.submit(good)
        for raw, e in zip(raws, events, strict=True):  # kept, so the cursor can move past it
            if e.problem is not None:
                await intake.quarantine(raw, e.problem)
        if after != cursor and after is not None:
            await self.cursor_file.write(json.dumps({"after": after}).encode())
            self.cursor = after
        return len(events) >= self.options.batch

    async def _upgrade(self, shared: Path, data: bytes | None) -> bytes | None:
        """The cursor file ``shared`` of an earlier version (one for all sources), taken over
        when this source has none (``data``) and is the only one; else ``data``, and the first
        source says, once, that ``shared`` is ignored (if it is there).

        :raises ~gateway.api.TransientError: the data folder did not answer in time.
        """
        if data is None and self._sources == [self.name] and await self.cursor_file.take_over(
                shared):
            log.info("source %s: took over the cursor file %s of an earlier version as %s",
                     self.name, shared, self.cursor_file.path)
            return await self.cursor_file.read()
        if self._sources[:1] != [self.name] or not await self.cursor_file.calls.or_transient(
                shared.exists, doing=f"looking for the cursor file {shared} of an earlier version"):
            return data
        if len(self._sources) == 1:
            why = f"source {self.name} has its own, {self.cursor_file.path}"
        else:
            why = ("it was shared by the registry-rest sources and cannot tell whose it is;"
                   f" each of {', '.join(self._sources)} starts from its own"
                   f" ({self.cursor_file.path.parent}/<name>.cursor) or, without one, from the"
                   " registry's first event (those stored already are kept as duplicates)."
                   " If it is one source's, move it there while the gateway is stopped")
        log.warning("the cursor file %s of an earlier version is ignored: %s", shared, why)
        return data


def registry_sources(settings: object) -> list[str]:
    """The names of the enabled ``registry-rest`` sources, in name order."""
    sources: dict[str, Any] = getattr(settings, "sources", {})
    return sorted(name for name, s in sources.items() if s.enabled and s.type == TRANSPORT)


def _after(data: bytes | None) -> str | None:
    """The cursor in a cursor file's ``data``; ``None`` without a file."""
    return None if data is None else str(json.loads(data)["after"])


def _said(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
