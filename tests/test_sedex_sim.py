"""The sedex simulator against the real transport, on real folders."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import write_initial_config
from gateway.outbound import ReceiptOutcome
from gateway.plugins import get_plugin_manager
from plugins.sedex.envelope import parse_envelope, parse_receipt
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.transport import SedexTransport
from tests.flow import drop, message, running, states, until
from tests.stubs import StubIntake, StubReceiptSink
from tests.test_sedex_e2e import gateway_dir
from tests.test_sedex_transport import PAYLOAD, item, make_transport, names

MAX = 1 << 20


def setup(root: Path, **rates: float) -> tuple[SedexTransport, SedexSimulator]:
    transport = make_transport(root / "sedex")
    o = transport.options
    sim = SedexSimulator(o.outbox, o.receipts, o.processed, root / "canton" / "inbox",
                         seed=7, **rates)
    return transport, sim


def receipt_codes(folder: Path) -> list[str]:
    return sorted(parse_receipt(p.read_bytes(), max_bytes=MAX).status_code
                  for p in folder.glob("*.xml"))


@pytest.mark.asyncio
async def test_delivery_reaches_canton_inbox_with_receipt(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path)
    await transport.send(item("att-1"))
    assert sim.step() == 1
    canton = tmp_path / "canton" / "inbox"
    (envl,) = canton.glob("envl_*.xml")
    (data,) = canton.glob("data_*.xml")
    assert envl.name[5:-4] == data.name[5:-4] != "att-1"  # a new base name, the same for both
    assert data.read_bytes() == PAYLOAD
    assert parse_envelope(envl.read_bytes(), max_bytes=MAX).message_id == "att-1"
    assert names(sim.outbox) == set()
    assert names(sim.processed) == {"data_att-1.xml", "envl_att-1.xml"}
    assert receipt_codes(sim.receipts) == ["100"]
    (receipt_file,) = sim.receipts.glob("*.xml")
    assert b"eCH-0090/2" in receipt_file.read_bytes()
    sink = StubReceiptSink()
    assert await transport.scan_receipts(sink, StubIntake()) == 1
    (receipt,) = sink.receipts
    assert (receipt.attempt_ref, receipt.outcome) == ("att-1", ReceiptOutcome.DELIVERED)
    resumed = item("att-1", resumed=True)
    assert "already" in (await transport.send(resumed)).detail  # found in processed
    assert names(sim.outbox) == set()


@pytest.mark.asyncio
async def test_reused_message_id_gets_201(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path)
    await transport.send(item("dup"))
    sim.step()
    for name in ("data_dup.xml", "envl_dup.xml"):  # a second pair, same messageId, other name
        (sim.outbox / name.replace("dup", "again")).write_bytes((sim.processed / name).read_bytes())
    assert sim.step() == 1
    assert receipt_codes(sim.receipts) == ["100", "201"]
    assert len(list((tmp_path / "canton" / "inbox").iterdir())) == 2


@pytest.mark.asyncio
async def test_failure_rate_one_gives_transient_codes(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path, failure_rate=1.0)
    for n in range(5):
        await transport.send(item(f"f-{n}"))
    assert sim.step() == 5
    sink = StubReceiptSink()
    await transport.scan_receipts(sink, StubIntake())
    assert {r.code for r in sink.receipts} <= {"400", "401"}
    assert {r.outcome for r in sink.receipts} == {ReceiptOutcome.FAILED_TRANSIENT}
    assert not (tmp_path / "canton" / "inbox").exists()
    assert len(names(sim.processed)) == 10


@pytest.mark.asyncio
async def test_pending_then_delivered(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path, pending_rate=1.0)
    await transport.send(item("slow"))
    sim.step()
    assert receipt_codes(sim.receipts) == ["601"]
    assert not (tmp_path / "canton" / "inbox").exists()
    assert sim.step() == 1
    assert receipt_codes(sim.receipts) == ["100", "601"]
    assert len(list((tmp_path / "canton" / "inbox").iterdir())) == 2


def test_invalid_envelope_gets_200_and_missing_data_202(tmp_path: Path) -> None:
    _, sim = setup(tmp_path)
    (sim.outbox / "data_bad.xml").write_bytes(PAYLOAD)
    (sim.outbox / "envl_bad.xml").write_bytes(b"<envelope>not sedex</envelope>")
    assert sim.step() == 1
    assert receipt_codes(sim.receipts) == ["200"]
    (receipt,) = sim.receipts.glob("*.xml")
    assert parse_receipt(receipt.read_bytes(), max_bytes=MAX).message_id == "bad"
    assert names(sim.processed) == {"data_bad.xml", "envl_bad.xml"}


@pytest.mark.asyncio
async def test_missing_data_gets_202(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path)
    await transport.send(item("lonely"))
    (sim.outbox / "data_lonely.xml").unlink()
    sim.step()
    assert receipt_codes(sim.receipts) == ["202"]


@pytest.mark.asyncio
async def test_run_until_stopped(tmp_path: Path) -> None:
    transport, sim = setup(tmp_path)
    sim.poll_interval = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(sim.run(stop))
    await transport.send(item("live"))
    for _ in range(200):
        if receipt_codes(sim.receipts):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert receipt_codes(sim.receipts) == ["100"]


def sim_command(capsys: pytest.CaptureFixture[str], config: Path, *argv: str
                ) -> tuple[int, str]:
    """Run ``ech-gateway --config CONFIG sedex-sim ARGV`` in-process; (exit code, output)."""
    capsys.readouterr()
    code = main(["--config", str(config), "sedex-sim", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.asyncio
async def test_command_serves_the_configured_folders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path / "site")
    client = tmp_path / "client"  # the sedex client's own folders, outside the gateway's
    (tmp_path / "site" / "conf.d" / "50-client.toml").write_text(
        "[partners.canton.sedex]\n" + "".join(
            f'{name} = "{client / name}"\n' for name in ("outbox", "inbox", "receipts", "processed")))
    code, out = sim_command(capsys, config, "--once")
    assert (code, "missing folder") == (3, out[out.index("missing folder"):][:14])
    await make_transport(client).send(item("m1"))  # creates the folders, writes a pair
    assert sim_command(capsys, config, "--once", "--deliver-to", str(tmp_path / "partner")) == (
        0, "sedex-sim: handled 1 message\n")
    assert receipt_codes(client / "receipts") == ["100"]
    assert names(client / "processed") == {"data_m1.xml", "envl_m1.xml"}
    assert len(list((tmp_path / "partner").glob("data_*.xml"))) == 1
    assert names(tmp_path / "site" / "sedex" / "receipts") == set(), "init's folders are unused"


def test_command_names_the_sedex_partners_when_asked_for_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_initial_config(tmp_path)
    code, out = sim_command(capsys, config, "--partner", "zurich", "--once")
    assert code == 2 and "no sedex partner 'zurich'; sedex partners: canton" in out


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["reject", "message"])
async def test_answers_reach_the_daemon_through_the_configured_inbox(
        tmp_path: Path, kind: str) -> None:
    """A site's test: the real daemon, `sedex-sim --answer` as a separate process."""
    config = gateway_dir(tmp_path / "site")
    client = tmp_path / "client"
    (tmp_path / "site" / "conf.d" / "50-client.toml").write_text(
        "[partners.canton.sedex]\n" + "".join(
            f'{name} = "{client / name}"\n' for name in ("outbox", "inbox", "receipts", "processed")))
    for name in ("outbox", "inbox", "receipts", "processed"):
        (client / name).mkdir(parents=True)
    sim = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "sedex-sim",
         "--answer", kind, "--deliver-to", str(tmp_path / "canton"), "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with running(config, get_plugin_manager()) as gateway:
            db = gateway.settings.store.path
            sent = message()
            drop(tmp_path / "site" / "registry" / "outbox", "m.xml", sent)
            final = "rejected" if kind == "reject" else "delivered"
            await until(lambda: states(db, "SELECT state FROM deliveries") == [(final,)]
                        and len(states(db, "SELECT id FROM messages")) == 2, timeout=15)
            rows = states(db, "SELECT source, state, message_id FROM messages ORDER BY id")
    finally:
        sim.send_signal(signal.SIGTERM)
        output = sim.communicate(timeout=10)[0].decode()
    assert sim.returncode == 0, output
    (registry, answer) = rows
    assert registry[0] == "registry" and registry[2] in sent.decode()
    assert answer[0] != "registry" and answer[2] != registry[2]
    assert len(list((tmp_path / "canton").glob("data_*.xml"))) == 1, "delivered to --deliver-to"
    answered = [p.read_bytes() for p in (client / "processed").glob("data_*.xml")]
    expected = b"eventReport" if kind == "reject" else b"personEventMessage"
    assert [a for a in answered if expected in a and a != sent], "the answer came through the inbox"
    if kind == "reject":
        assert registry[2].encode() in next(a for a in answered if b"eventReport" in a)
