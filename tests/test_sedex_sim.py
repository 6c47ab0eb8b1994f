"""The sedex simulator against the real transport, on real folders."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from gateway.contracts import ReceiptOutcome
from plugins.sedex import gateway_commands
from plugins.sedex.envelope import parse_envelope, parse_receipt
from plugins.sedex.sim import SedexSimulator
from plugins.sedex.transport import SedexTransport
from tests.stubs import StubIntake, StubReceiptSink
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


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (command,) = gateway_commands()
    parser = argparse.ArgumentParser()
    command.configure(parser)
    assert command.run(parser.parse_args([str(tmp_path), "--once"])) == 3
    for name in ("outbox", "receipts", "processed"):
        (tmp_path / "sedex" / name).mkdir(parents=True)
    assert command.run(parser.parse_args([str(tmp_path), "--once"])) == 0
    assert command.run(parser.parse_args([str(tmp_path), "--duration", "0.1", "--seed", "3"])) == 0
    assert "handled 0" in capsys.readouterr().out
