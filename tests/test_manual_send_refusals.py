"""Manual sends refuse what a case worker or a registry plugin got wrong, naming it, before
anything is stored: a mistyped VN, an empty attachment, one that is not what its name says or
whose name eCH-0039 would read as another; and a file sent by hand that sends nothing leaves
the person state as it was.

The person state comes from the eCH-0020 corpus's ``baseDelivery.xml``, run through a real
gateway (the fixtures of :mod:`tests.test_manual_send`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.api import send_manual
from gateway.cli import main
from gateway.contracts import Attachment
from gateway.errors import InputRejected
from gateway.plugins import get_plugin_manager
from tests import test_manual_send as base
from tests.flow import running
from tests.test_manual_send import VN, manual_rows

seeded, site = base.seeded, base.site  # its fixtures: the seeded gateway, a copy per test


def test_a_plugin_s_vn_with_a_wrong_check_digit_is_refused_not_stored(site: Path) -> None:
    mistyped = VN[:-1] + str((int(VN[-1]) + 1) % 10)

    async def scenario() -> None:
        async with running(site / "gateway.toml", get_plugin_manager()) as gateway:
            with pytest.raises(InputRejected, match="wrong check digit") as caught:
                await send_manual(gateway.pipeline, gateway.settings, "canton",
                                  "laggardOfFamily", mistyped, requested_by="case 9")
            assert caught.value.where == "person"
            assert mistyped not in str(caught.value)  # no VN in what a plugin may log

    asyncio.run(scenario())
    assert manual_rows(site) == []


def test_a_file_sent_by_hand_that_sends_nothing_leaves_the_person_state_as_it_was(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an older or edited baseDelivery sent by hand by mistake: nothing goes out (exit 1),
    # and the state the gateway completes messages from is not rolled back by it
    base_xml = (base.CORPUS / "baseDelivery.xml").read_text(encoding="utf-8")
    edited = site / "old-base.xml"
    edited.write_text(base_xml.replace("<eCH-0011:officialName>Berisha<",
                                       "<eCH-0011:officialName>Berisha-Alt<", 1),
                      encoding="utf-8")
    assert base.send(site, str(edited), "--partner", "canton") == 1
    assert capsys.readouterr().out.endswith(
        "baseDelivery seeds the person state and sends nothing; sent by hand, it leaves the"
        " person state as it was\n")
    assert main(["persons", "show", VN, "--json", "--config", str(site / "gateway.toml")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"]["name_data"]["official_name"] == "Berisha"


def test_an_attachment_that_is_not_what_its_name_says_is_refused_before_anything_is_stored(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = site / "Antrag Familiennachzug.pdf"
    page.write_bytes(b"<html><body>Scan failed</body></html>\n")
    assert base.send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                     "--attach", str(page)) == 1
    assert capsys.readouterr().err == (
        f"ech-gateway send: {page}: its name says application/pdf, but its bytes are not (they"
        " start b'<html><b': a scan that failed, or another file saved under its name)\n")
    photo = site / "pass.pdf"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    assert base.send(site, "--partner", "canton", "--event", "laggardOfFamily", "--person", VN,
                     "--attach", str(photo)) == 1
    assert "its bytes are image/jpeg (renamed?)" in capsys.readouterr().err
    assert manual_rows(site) == []


def test_a_plugin_s_empty_or_mislabelled_file_is_refused_before_anything_is_stored(
        site: Path) -> None:
    async def scenario() -> None:
        async with running(site / "gateway.toml", get_plugin_manager()) as gateway:
            for file, said in ((Attachment("leer.pdf", b""), "file 'leer.pdf' is empty"),
                               (Attachment("pass.pdf", b"\x89PNG\r\n\x1a\n" + bytes(9)),
                                "file 'pass.pdf': its name says application/pdf, but its"
                                " bytes are image/png")):
                with pytest.raises(InputRejected, match=said) as caught:
                    await send_manual(gateway.pipeline, gateway.settings, "canton",
                                      "laggardOfFamily", VN, requested_by="case 9", files=[file])
                assert caught.value.where == "files"

    asyncio.run(scenario())
    assert manual_rows(site) == []


def test_an_attachment_whose_name_eCH_0039_would_collapse_is_refused(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("Pass  Kopie.pdf", "Pass\tKopie.pdf", " Pass.pdf"):
        path = site / name
        path.write_bytes(base.PDF)
        assert base.send(site, "--partner", "canton", "--event", "laggardOfFamily",
                         "--person", VN, "--attach", str(path)) == 1
        assert f"file {name!r} has a tab, a line break, or spaces at its ends or side by side" \
            in capsys.readouterr().err
    assert manual_rows(site) == []
