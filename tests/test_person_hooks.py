"""Registry plugins asked about persons: bounded, failures named by plugin and message, at once.

Every call of ``gateway_person_lookup`` and ``gateway_person_resolve`` (stage
*enrich*, the way back, ``messages assign``) goes through
:mod:`gateway.person_hooks`. The plugins here are registered by code into a
real gateway (``gateway.testing``), ``messages assign`` is the real command line.
"""

from __future__ import annotations

import asyncio
import io
import logging
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pluggy
import pytest

from gateway.api import PersonState, ech0223, hookimpl
from gateway.cli import main
from gateway.testing import harness, sample_message

ANNA = ech0223.PersonIdentificationLight(vn=7561234567897, official_name="Muster",
                                         first_name="Anna")
VN = "7561234567897"
#: A registry partner beside the canton (``partner``), for the way back.
REGISTRY = {"partners": {"registry": {"transport": "collect", "role": "registry"}}}


def settings(**gateway: str | int) -> dict[str, Any]:
    return {**REGISTRY, "gateway": {"person_lookup_timeout": "1s", **gateway}}


class Registry:
    """A vendor's registry plugin; ``lookup`` and ``resolve`` say how each hook behaves:
    ``"raises"``, ``"hangs"`` (no timeout of its own), ``"nobody"`` or ``"anna"``."""

    def __init__(self, name: str, lookup: str = "nobody", resolve: str = "nobody") -> None:
        self.__name__ = name  # the name pluggy registers it under
        self.how = {"lookup": lookup, "resolve": resolve}

    async def _answer(self, hook: str) -> Any:
        how = self.how[hook]
        if how == "raises":  # a message that quotes the person, as a careless plugin's does
            raise RuntimeError(f"registry refused vn {VN} (Anna Muster)")
        if how == "hangs":
            await asyncio.Event().wait()
        found = PersonState(identification=ANNA) if how == "anna" else None
        return found if hook == "lookup" else [found] if found else []

    @hookimpl
    def gateway_person_lookup(self, keys: Any, settings: Any) -> Any:
        return self._answer("lookup")

    @hookimpl
    def gateway_person_resolve(self, identification: Any, settings: Any) -> Any:
        return self._answer("resolve")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.INFO and r.name.startswith("gateway")]


def assign(config: Path, pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch,
           mid: int, person: str) -> tuple[int, str]:
    """``ech-gateway messages assign`` with ``pm``'s plugins: its exit code and stdout."""
    monkeypatch.setattr("gateway.cli.get_plugin_manager", lambda: pm)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["--config", str(config), "messages", "assign", str(mid),
                     "--person", person])
    return code, out.getvalue()


@pytest.mark.parametrize("how", ["raises", "hangs"])
async def test_a_resolution_that_fails_or_never_answers_leaves_the_message_for_review(
        tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with harness(tmp_path, plugins=[Registry("acme-registry", resolve=how)],
                       settings=settings()) as gw:
        mid = await gw.from_partner(sample_message("canton-1", person=ANNA))
        await gw.wait_for(lambda: gw.messages()[0].state == "needs_review", timeout=15)
    said = [w for w in warnings_of(caplog) if "person resolution" in w]
    assert said == [f"person resolution by plugin 'acme-registry' for message {mid} "
                    + ("failed (RuntimeError)" if how == "raises" else
                       "did not answer within [gateway] person_lookup_timeout (1s)")
                    + "; going on without the registry's data"]
    assert VN not in caplog.text and "Muster" not in caplog.text


async def test_one_registry_failing_leaves_the_others_candidate(tmp_path: Path) -> None:
    plugins = [Registry("broken", resolve="raises"), Registry("good", resolve="anna")]
    async with harness(tmp_path, plugins=plugins, settings=settings()) as gw:
        await gw.from_partner(sample_message("canton-1", person=ANNA))
        [delivery] = await gw.settled(1)
    assert (delivery.partner, delivery.state) == ("registry", "delivered")


@pytest.mark.parametrize("how", ["raises", "hangs"])
async def test_an_assigned_person_whose_look_up_fails_or_hangs_is_unknown(
        tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry("acme-registry", lookup=how)
    caplog.set_level(logging.INFO)
    async with harness(tmp_path, plugins=[registry], settings=settings()) as gw:
        mid = await gw.from_partner(sample_message("canton-1", person=ANNA))
        await gw.wait_for(lambda: gw.messages()[0].state == "needs_review")
        code, out = await asyncio.wait_for(asyncio.to_thread(  # with the daemon's plugins
            assign, tmp_path / "gateway.toml", gw.gateway.pm, monkeypatch, mid, VN), 20)
    assert code == 1
    assert out == (f"message {mid}: assigned, but needs_review: the person assigned"
                   " (756.****.****.97) is known neither to the gateway nor to the registry:"
                   f" assign one with `ech-gateway messages assign {mid} --person VN|LOCALID`\n")
    said = [w for w in warnings_of(caplog) if "person look-up" in w]
    assert said == [f"person look-up by plugin 'acme-registry' for message {mid} "
                    + ("failed (RuntimeError)" if how == "raises" else
                       "did not answer within [gateway] person_lookup_timeout (1s)")
                    + "; going on without the registry's data"]


async def test_a_failed_look_up_names_its_plugin_and_message_not_the_person(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with harness(tmp_path, plugins=[Registry("acme-registry", lookup="raises")]) as gw:
        gw.feed("anna.xml", sample_message("doc-anna", person=ANNA))
        [delivery] = await gw.settled(1)
    [message] = gw.messages()
    assert (delivery.message_id, delivery.state) == ("doc-anna", "delivered")
    assert [w for w in warnings_of(caplog) if "look-up" in w] == [
        f"person look-up by plugin 'acme-registry' for message {message.id} failed"
        " (RuntimeError); going on without the registry's data"]
    assert VN not in caplog.text and "Muster" not in caplog.text


class SlowRegistry:
    """A registry answering each look-up after a while, with a municipality of the person's
    own (from their VN); it counts the look-ups in flight, and notes what rules saw."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.seen: dict[str, Any] = {}

    @hookimpl
    def gateway_person_lookup(self, keys: Any, settings: Any) -> Any:
        return self._look_up(keys)

    async def _look_up(self, keys: Any) -> PersonState | None:
        vn = _vn(keys)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.3)
        finally:
            self.in_flight -= 1
        if vn is None:  # a person the message names by a local id alone
            return None
        return PersonState(
            identification=ech0223.PersonIdentificationLight(
                vn=int(vn), official_name="Muster", first_name="Anna"),
            municipality=ech0223.SwissMunicipality(municipality_id=int(vn[-4:]),
                                                   municipality_name="Somewhere"))

    @hookimpl
    def gateway_decide(self, message: Any, raw: Any, facts: Any, settings: Any) -> Any:
        vn = _vn(message.subject)
        if vn is not None:
            self.seen[vn] = facts["municipality"]  # the person's state before: the look-up's
        return None


def _vn(keys: Any) -> str | None:
    return next((k.removeprefix("vn:") for k in keys if k.startswith("vn:")), None)


async def test_the_unknown_persons_of_a_batch_are_looked_up_at_once_each_their_own(
        tmp_path: Path) -> None:
    registry = SlowRegistry()
    (tmp_path / "in").mkdir()
    for n in range(12):  # there before the source starts: one batch
        (tmp_path / "in" / f"{n}.xml").write_bytes(sample_message(f"doc-{n}", seed=n))
    async with harness(tmp_path, plugins=[registry],
                       settings={"gateway": {"person_lookup_concurrency": 4}}) as gw:
        await gw.settled(12)
    assert registry.most == 4
    assert len(registry.seen) > 6
    assert all(municipality == int(vn[-4:]) for vn, municipality in registry.seen.items())
