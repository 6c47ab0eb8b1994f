"""The SOAP polling source: fetch messages from a partner's service, store them, move the cursor.

Each round calls the fetch operation with the last cursor, submits the
messages it returned (:meth:`Intake.submit` returns once they are durably
stored) and only then saves the cursor the service returned. A crash in
between fetches the same messages again, which the store recognises as
duplicates. With an ``acknowledge`` operation, the ids of the stored
messages are acknowledged after that; ids whose acknowledgement failed are
kept with the cursor and acknowledged before the next fetch.

The state is read once, at the first round, and written whenever it changes,
each in a call into the data folder given up on after a minute
(:class:`~gateway.api.CursorFile`: a share that hangs holds up neither the
event loop nor the stop); the round is then tried again after
``poll_interval``, and what was fetched since the last state written comes
again, as duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

from lxml import etree
from zeep.helpers import serialize_object

from gateway.api import (
    ConfigError,
    CursorFile,
    DeliveryError,
    Evidence,
    Intake,
    PluginContext,
    RawInput,
    RepeatedProblem,
    value_at,
)
from plugins.soap import cursor
from plugins.soap.arguments import Argument, build, plan
from plugins.soap.client import SoapClient, operation_of
from plugins.soap.faults import classify
from plugins.soap.options import SoapSourceOptions

log = logging.getLogger(__name__)

#: The encoding an XML declaration at the start of a text names.
_DECLARED_ENCODING = re.compile(r"""<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._:-]*)["']""")


def checked_plans(client: SoapClient, options: SoapSourceOptions, key: str
                  ) -> tuple[list[Argument], list[Argument], list[str]]:
    """The fetch and acknowledge argument plans, and the names of the fetch answer's
    elements (a one-element answer comes unwrapped from zeep); a ConfigError names ``key``."""
    try:
        fetch = operation_of(client.document, options, options.operation)
        answer = [name for name, _ in fetch.output.body.type.elements]
        planned = plan(fetch.input.body, options.arguments, options.operation)
        ack: list[Argument] = []
        if options.acknowledge:
            operation = operation_of(client.document, options, options.acknowledge)
            ack = plan(operation.input.body, options.acknowledge_arguments, options.acknowledge)
    except ValueError as exc:
        raise ConfigError([(str(options.wsdl), key, str(exc))]) from None
    return planned, ack, answer


def as_bytes(value: Any) -> bytes | None:
    """A message's payload as bytes: base64 (decoded by zeep), text, or an XML element.

    Text is a document's characters: it is encoded as its XML declaration says
    (``encoding="ISO-8859-1"``; a character that encoding lacks as a character
    reference), UTF-8 when it names none, or one Python does not know.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        declared = _DECLARED_ENCODING.match(value)
        if declared is not None:
            try:
                return value.encode(declared.group(1), "xmlcharrefreplace")
            except (LookupError, ValueError):  # unknown, or no text encoding (idna)
                pass  # the parser names it
        return value.encode("utf-8")
    if isinstance(value, etree._Element):
        return etree.tostring(value, encoding="UTF-8", xml_declaration=True)
    return None


class SoapSource:
    """Polls a partner's SOAP service for messages (``type = "soap"``)."""

    def __init__(self, options: SoapSourceOptions, context: PluginContext) -> None:
        self.options = options
        self.name = context.name
        key = f"sources.{context.name}"
        self.client = SoapClient.start(options, context.name, key)
        self.fetch_plan, self.ack_plan, self.answer_names = checked_plans(self.client, options, key)
        self.limits = context.normalise
        #: The cursor and the ids not yet acknowledged (readable by the gateway alone).
        self.state_file = CursorFile(context.data_dir / "soap" / f"{context.name}.cursor.json",
                                     0o600)
        #: The state saved last, once read.
        self.state: cursor.PollState | None = None

    async def run(self, intake: Intake) -> None:
        """Poll until cancelled; a round that brought messages is followed at once by the next."""
        problem = RepeatedProblem(log, f"soap source {self.name}")
        try:
            while True:
                try:
                    more = await self.poll(intake)
                    problem.ok()
                except (DeliveryError, OSError, ValueError) as exc:
                    problem.failed(exc)
                    more = False
                if not more:
                    await asyncio.sleep(self.options.poll_interval)
        finally:
            self.client.close()

    async def poll(self, intake: Intake) -> bool:
        """One round: acknowledge what is pending, fetch, store, save the cursor, acknowledge.

        :return: whether the service moved on (messages came, the cursor changed).
        :raises DeliveryError: a call failed (the reason says why).
        """
        if self.state is None:
            self.state = await cursor.load(self.state_file)
        state = self.state
        if state.unacknowledged:
            await self._acknowledge(state)
            state = cursor.PollState(state.cursor)
        values = {"cursor": state.cursor or "", "ids": []}
        kwargs = build(self.fetch_plan, values, self.limits.max_bytes)
        answer = await self.client.call(self.options.operation, kwargs, classify)
        answer = serialize_object(answer, dict)
        if len(self.answer_names) == 1:
            answer = {self.answer_names[0]: answer}
        found = value_at(answer, self.options.messages) or []
        messages = found if isinstance(found, list) else [found]
        ids = await self._store(intake, messages, state.cursor or "(none)")
        new = value_at(answer, self.options.cursor) if self.options.cursor else None
        pending = tuple(ids) if self.options.acknowledge else ()
        moved = cursor.PollState(state.cursor if new is None else str(new), pending)
        if moved != state:
            await self._save(moved)
        if pending:
            await self._acknowledge(moved)
        return bool(messages) and (moved.cursor != state.cursor or bool(pending))

    async def _store(self, intake: Intake, messages: Sequence[Any], after: str) -> list[str]:
        """Submit the good messages and quarantine the bad ones; the ids of all of them."""
        raws, ids = [], []
        for number, message in enumerate(messages, 1):
            found = value_at(message, self.options.message_id) if self.options.message_id else None
            mid = str(found) if found is not None else ""
            ref = mid or f"message {number} after cursor {after}"
            data = as_bytes(value_at(message, self.options.payload))
            meta = {"soap_message_id": mid} if mid else {}
            if mid:
                ids.append(mid)
            if data is None:
                await intake.quarantine(RawInput(self.name, ref, repr(message).encode(), meta),
                                        f"no XML at '{self.options.payload}' in the message")
            elif len(data) > self.limits.max_bytes:  # kept as evidence: never read as a document
                kept = Evidence.of(data, self.limits.max_kept_bytes)
                await intake.quarantine(
                    RawInput(self.name, ref, kept.data, {**meta, **kept.meta()}),
                    f"message of {len(data)} bytes is larger than {self.limits.max_bytes} bytes"
                    f" ([limits] max_document_bytes){kept.note()}")
            else:
                raws.append(RawInput(self.name, ref, data, meta))
        if raws:
            await intake.submit(raws)
        return ids

    async def _acknowledge(self, state: cursor.PollState) -> None:
        """Acknowledge ``state.unacknowledged``; then save the state without them."""
        assert self.options.acknowledge
        values = {"cursor": state.cursor or "", "ids": list(state.unacknowledged)}
        kwargs = build(self.ack_plan, values, self.limits.max_bytes)
        await self.client.call(self.options.acknowledge, kwargs, classify)
        await self._save(cursor.PollState(state.cursor))

    async def _save(self, state: cursor.PollState) -> None:
        """Save ``state``; the next round starts from it once it is saved."""
        await cursor.save(self.state_file, state)
        self.state = state
