"""The stages through the running gateway: a rule's business fields, each partner in its version.

One eCH-0020 moveIn (a foreign national) goes to two partners: ``canton``
on eCH-0223 1.5 and ``old`` on 1.3. The rule sets businessKey, deadline
and a comment: the canonical message carries them; the 1.3 partner gets
its own payload, valid against the official 1.3 XSD, without the deadline
(1.5 only), and the journal says so. Then the same partner refusing what
its version lacks: the message is quarantined with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from tests.flow import StubTransport, drop, message, running, states, until, write_config
from tests.official import REPO, official_xsd

CORPUS = REPO / "tests" / "fixtures" / "ech0020"
TWO_PARTNERS = """
[partners.canton]
transport = "stub"
[partners.canton.stub]
[partners.old]
transport = "stub"
ech0223_version = "1.3"
unsupported_event = "{policy}"
[partners.old.stub]
"""
RULE = """
[[rules]]
name = "foreign-to-both"
description = "foreign nationals go to both offices"
match = { nationality = ["foreign"], event = ["moveIn", "prolongationL"] }
[rules.then]
route_to = ["canton", "old"]
business_key = "BRB"
deadline = "30d"
business_comment = "Zuzug aus dem Ausland"
"""


def _gateway(tmp_path: Path, policy: str = "othercase") -> Path:
    config = write_config(tmp_path, partner=TWO_PARTNERS.format(policy=policy), extra=RULE)
    config.write_text(config.read_text().replace('route_to = ["canton"]\n', ""))
    return config


async def test_each_partner_gets_the_message_in_its_version_with_the_rules_fields(
        tmp_path: Path) -> None:
    config = _gateway(tmp_path)
    db = tmp_path / "gateway.db"
    async with running(config):
        drop(tmp_path / "in", "a.xml", (CORPUS / "moveIn-abroad.xml").read_bytes())
        await until(lambda: states(db, "SELECT partner, state FROM deliveries ORDER BY partner")
                    == [("canton", "delivered"), ("old", "delivered")])
    [new] = StubTransport.sent["canton"]
    [old] = StubTransport.sent["old"]
    modern = etree.fromstring(new.payload)
    assert official_xsd("eCH-0223-1-5.xsd").validate(etree.ElementTree(modern))
    info = modern.find("{*}content/{*}businessInformation")
    assert info is not None
    assert info.findtext("{*}businessKey") == "BRB"
    assert info.findtext("{*}businessComment") == "Zuzug aus dem Ausland"
    assert info.findtext("{*}deadline") == "2026-12-02"  # 30 days after its eventDate, 2026-11-02
    legacy = etree.fromstring(old.payload)
    assert legacy.get("version") is None
    assert official_xsd("eCH-0223-1-3.xsd").validate(etree.ElementTree(legacy))
    assert legacy.findtext("{*}content/{*}businessInformation/{*}businessKey") == "BRB"
    assert legacy.find("{*}content/{*}businessInformation/{*}deadline") is None
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'message.normalised'")
    warnings = json.loads(detail)["warnings"]
    assert any(w.startswith("old: ") and "deadline" in w for w in warnings), warnings
    [(decided,)] = states(db, "SELECT detail FROM journal WHERE event = 'message.decided'")
    assert json.loads(decided)["rule"] == "rules[1] foreign-to-both"
    assert json.loads(decided)["business_key"] == "BRB"


async def test_a_partner_that_refuses_what_its_version_lacks_quarantines_the_message(
        tmp_path: Path) -> None:
    config = _gateway(tmp_path, policy="refuse")
    db = tmp_path / "gateway.db"
    async with running(config):
        drop(tmp_path / "in", "base.xml", (CORPUS / "baseDelivery.xml").read_bytes())
        await until(lambda: states(db, "SELECT state FROM messages") == [("not_relevant",)])
        drop(tmp_path / "in", "l.xml",
             (CORPUS / "changeResidencePermit-prolongationL.xml").read_bytes())
        await until(lambda: states(db, "SELECT state FROM messages WHERE ref = 'l.xml'")
                    == [("quarantined",)])
    [(reason,)] = states(db, "SELECT reason FROM messages WHERE ref = 'l.xml'")
    assert "prolongationL" in reason and "1.3" in reason
    assert states(db, "SELECT count(*) FROM deliveries") == [(0,)]


async def test_a_rule_comment_cut_to_fit_the_registry_comment_is_journaled(
        tmp_path: Path) -> None:
    rule = ('[[rules]]\nname = "commented"\n'
            'then = { route_to = ["canton"], business_comment = "Zuzug aus dem Ausland" }\n')
    config = write_config(tmp_path, extra=rule)
    db = tmp_path / "gateway.db"
    registry = "Ä" * 1020
    data = message(fixture="valid-pem-swiss-birthplace.xml", documents=False).replace(
        "Bitte Aufenthaltsbewilligung prüfen und Verfügung zustellen.".encode(), registry.encode())
    async with running(config):
        drop(tmp_path / "in", "long.xml", data)
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
    [sent] = StubTransport.sent["canton"]
    comment = etree.fromstring(sent.payload).findtext("{*}content/{*}businessInformation/"
                                                      "{*}businessComment")
    assert comment == f"{registry}\nZuz"  # 1024 characters: 18 of the rule's 21 are cut
    [(detail,)] = states(db, "SELECT detail FROM journal WHERE event = 'message.normalised'")
    assert json.loads(detail)["warnings"] == [
        "businessComment: 18 of the 21 characters of the rule's comment cut to stay within 1024"]
