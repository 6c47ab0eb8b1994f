"""The filedrop transport in a real gateway, run by gateway.testing."""

from __future__ import annotations

from pathlib import Path

from ech_gateway_filedrop import plugin

from gateway.testing import harness, sample_message


async def test_a_message_lands_in_the_folder_and_its_receipt_delivers_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "receipts").mkdir(parents=True)
    async with harness(tmp_path, plugins=[plugin], transport="filedrop",
                       transport_options={"folder": "out", "poll_interval": "20ms"}) as gw:
        gw.feed("notice.xml", sample_message("filedrop-1"))
        [delivery] = await gw.settled(1)
        assert delivery.state == "sent"  # written, waiting for the partner's receipt
        [written] = out.glob("*.xml")
        assert written.read_bytes() == sample_message("filedrop-1")

        receipt = out / "receipts" / f"{written.stem}.ok"
        receipt.write_text("archived")
        await gw.wait_for(lambda: gw.deliveries()[0].state == "delivered")
        await gw.wait_for(lambda: not receipt.exists())  # removed once recorded


async def test_a_failed_receipt_rejects_the_delivery_with_the_partners_reason(tmp_path: Path,
                                                                               ) -> None:
    out = tmp_path / "out"
    (out / "receipts").mkdir(parents=True)
    async with harness(tmp_path, plugins=[plugin], transport="filedrop",
                       transport_options={"folder": "out", "poll_interval": "20ms"}) as gw:
        gw.feed("notice.xml", sample_message("filedrop-2"))
        await gw.settled(1)
        [written] = out.glob("*.xml")
        (out / "receipts" / f"{written.stem}.failed").write_text("unknown municipality")
        await gw.wait_for(lambda: gw.deliveries()[0].state not in ("sent", "pending"))
    [delivery] = gw.deliveries()
    assert delivery.state == "dead"
    assert delivery.reason is not None and "unknown municipality" in delivery.reason


async def test_a_missing_folder_pauses_the_partner_without_counting_attempts(tmp_path: Path,
                                                                            ) -> None:
    async with harness(tmp_path, plugins=[plugin], transport="filedrop",
                       transport_options={"folder": "out", "poll_interval": "20ms"}) as gw:
        gw.feed("notice.xml", sample_message("filedrop-3"))
        await gw.wait_for(lambda: "partner.paused" in gw.event_kinds())
        [delivery] = gw.deliveries()
    # A LocalFault burns no attempt: the same attempt waits for a probe to find the fault gone.
    assert (delivery.state, delivery.attempts) == ("sending", 1)
    [paused] = [e for e in gw.events if e.kind == "partner.paused"]
    assert "No such file or directory" in str(paused.detail)
