"""The way back, end to end: the canton's messages land on the resident and the case, in the registry.

The real daemon on the folders ``init`` writes: the registry drops an eCH-0020
event, the gateway sends it over sedex, the sedex simulator delivers it and the
canton answers (``plugins.sedex.sim_answers``, what ``sedex-sim --answer`` does)
into the gateway's sedex inbox; the answer must end in ``registry/inbox``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.plugins import get_plugin_manager
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.sim_answers import Answerer
from tests.flow import drop, running, states, until
from tests.test_sedex_e2e import cli, gateway_dir

CORPUS = Path(__file__).parent / "fixtures" / "ech0020"
#: A foreign resident of baseDelivery.xml, and an event about them the default rules forward.
VN, LOCAL = "7562328558609", "MU.230:100139"
EVENT = "changeResidencePermit-prolongationB.xml"


async def _seeded(root: Path, db: Path) -> None:
    """The registry's baseDelivery, stored as person state."""
    drop(root / "registry" / "outbox", "baseDelivery.xml",
         (CORPUS / "baseDelivery.xml").read_bytes())
    await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])


async def test_the_cantons_answer_reaches_the_registry_on_the_resident_and_the_case(
        tmp_path: Path) -> None:
    config = gateway_dir(tmp_path)
    db = tmp_path / "gateway.db"
    sedex, inbox = tmp_path / "sedex", tmp_path / "registry" / "inbox"
    sim = SedexSimulator(sedex / "outbox", sedex / "receipts", sedex / "processed",
                         tmp_path / "canton", poll_interval=0.05,
                         answer=Answerer(sedex / "inbox", "message", seed=3))
    stop = asyncio.Event()
    async with running(config, get_plugin_manager()):
        task = asyncio.create_task(sim.run(stop))
        await _seeded(tmp_path, db)
        drop(tmp_path / "registry" / "outbox", EVENT, (CORPUS / EVENT).read_bytes())
        await until(lambda: len(list(inbox.glob("ech0223-*.xml"))) == 1, timeout=20)
        stop.set()
        await task
    [(out_id, out_mid)] = states(db, "SELECT id, message_id FROM messages WHERE source = 'registry'"
                                     " AND state = 'routed'")
    [(in_id, state, ref)] = states(db, "SELECT id, state, reference_message_id FROM messages"
                                       " WHERE source = 'canton'")
    assert (state, ref) == ("routed", out_mid)
    assert states(db, "SELECT partner, state FROM deliveries ORDER BY id") == [
        ("canton", "delivered"), ("registry", "delivered")]
    [written] = inbox.glob("ech0223-*.xml")
    assert b"personEventMessage" in written.read_bytes() and out_mid.encode() in written.read_bytes()
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")], "no temporary file left"

    person = json.loads(cli("--config", str(config), "persons", "show", VN, "--json"))
    assert [m["id"] for m in person["messages"]][-2:] == [out_id, in_id]
    assert [m["direction"] for m in person["messages"]][-2:] == ["out", "in"]
    [case] = json.loads(cli("--config", str(config), "cases", "list", "--json"))
    shown = json.loads(cli("--config", str(config), "cases", "show", str(case["id"]), "--json"))
    assert shown["partner"] == "canton" and shown["person"] == person["id"]
    assert [(m["id"], m["direction"]) for m in shown["messages"]] == [(out_id, "out"),
                                                                       (in_id, "in")]
    text = cli("--config", str(config), "cases", "show", str(case["id"]))
    assert " out " in text and " in " in text
