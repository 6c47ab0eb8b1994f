"""A bug in a vendor's code rule or normaliser quarantines the message it met, saying so.

Each plugin here is registered by code into a real gateway (``gateway.testing``):
its messages are fed through the folder source and processed as the daemon does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.api import Decision, ech0223, hookimpl
from gateway.testing import harness, sample_message


class BuggyRules:
    """A code rule with a vendor's mistakes, one per messageId."""

    @hookimpl
    def gateway_decide(self, message: Any, raw: Any, facts: Any, settings: Any) -> Any:
        if message.message_id == "doc-raises":
            return {}["permit_category"]
        if message.message_id == "doc-typo":
            return Decision("acme: renewals", "renewals go to the canton", partners=("kanton",))
        if message.message_id == "doc-dict":
            return {"partners": ["partner"]}
        return None


class BytesNormaliser:
    """A normaliser that returns the XML itself instead of a ``Normalised``."""

    @hookimpl(tryfirst=True)
    def gateway_normalise(self, raw: Any, context: Any) -> Any:
        return raw.data if b"doc-bytes" in raw.data else None


async def test_a_code_rules_bugs_quarantine_only_their_message_naming_the_rule(
        tmp_path: Path) -> None:
    async with harness(tmp_path, plugins=[BuggyRules()]) as gw:
        for name in ("doc-raises", "doc-typo", "doc-dict", "doc-fine"):
            gw.feed(f"{name}.xml", sample_message(name))
        [delivery] = await gw.settled(1)
        await gw.wait_for(lambda: all(m.state != "received" for m in gw.messages()))
    assert delivery.message_id == "doc-fine"
    outcomes = {m.message_id: (m.state, m.reason) for m in gw.messages()}
    assert outcomes["doc-raises"] == ("quarantined", "rule error: KeyError('permit_category')")
    assert outcomes["doc-typo"] == (
        "quarantined", "rule 'acme: renewals' routes to 'kanton', which is no configured partner")
    assert outcomes["doc-dict"] == (
        "quarantined", "rule error: TypeError('gateway_decide returned dict, not a Decision')")


async def test_a_normaliser_returning_no_normalised_is_named_as_the_fault(tmp_path: Path) -> None:
    async with harness(tmp_path, plugins=[BytesNormaliser()]) as gw:
        gw.feed("bytes.xml", sample_message("doc-bytes"))
        gw.feed("fine.xml", sample_message("doc-fine"))
        [delivery] = await gw.settled(1)
        await gw.wait_for(lambda: all(m.state != "received" for m in gw.messages()))
    assert delivery.message_id == "doc-fine"
    [bad] = [m for m in gw.messages() if m.ref == "bytes.xml"]
    assert (bad.state, bad.reason) == (
        "quarantined", "normaliser error: gateway_normalise returned bytes, not a Normalised")


class HangingRegistry:
    """A registry plugin whose look-up has no timeout of its own, and a registry that never answers."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def gateway_person_lookup(self, keys: Any, settings: Any) -> Any:
        self.asked += 1
        return asyncio.Event().wait()


async def test_a_look_up_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    registry = HangingRegistry()
    anna = ech0223.PersonIdentificationLight(vn=7561234567897, official_name="Muster",
                                             first_name="Anna")
    async with harness(tmp_path, plugins=[registry],
                       settings={"gateway": {"person_lookup_timeout": "1s"}}) as gw:
        gw.feed("anna.xml", sample_message("doc-anna", person=anna))
        [delivery] = await gw.settled(1, timeout=20)
    assert (delivery.message_id, delivery.state, registry.asked) == ("doc-anna", "delivered", 1)
