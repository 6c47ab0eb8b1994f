"""Hostile and broken input: quarantined with a reason, raw bytes kept, nothing sent, no crash."""

from __future__ import annotations

import io
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from lxml import etree

from gateway.cli import main
from gateway.config import write_initial_config
from tests.flow import drop, message, running, states, until


def _zip(entries: dict[str, bytes], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


SIZE_LIMIT = 64 * 1024

# name -> (bytes, a fragment the quarantine reason must contain)
CASES: dict[str, tuple[bytes, str]] = {
    "malformed.xml": (b"<a><b></a>", "malformed XML at line 1"),
    "empty.xml": (b"", "empty"),
    "wrong-root.xml": (b'<?xml version="1.0"?><foo xmlns="urn:other"/>',
                       "no normaliser recognised this input"),
    "wrong-ech-root.xml": (b'<x:delivery xmlns:x="http://www.ech.ch/xmlns/eCH-0223/1"/>',
                           "unknown eCH-0223 root element"),
    "doctype.xml": (b'<?xml version="1.0"?>\n<!DOCTYPE personEventMessage>\n<personEventMessage/>',
                    "DOCTYPE"),
    "internal-entity.xml": (b'<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;&a;</r>', "DOCTYPE"),
    "external-entity.xml": (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
                            "DOCTYPE"),
    "deep.xml": (b"<r>" * 300 + b"</r>" * 300, "XML nested more than 256 elements deep (a fixed"
                 " limit of the XML parser, not a setting)"),
    # a reason that names a limit names the setting that sets it, as gateway.toml spells it
    "too-large.xml": (b"<r>" + b"x" * SIZE_LIMIT + b"</r>",
                      f"larger than the limit of {SIZE_LIMIT} bytes ([limits] max_document_bytes)"),
    "bomb.zip": (_zip({"m.xml": b"<r/>", "files/zeros.bin": b"\0" * (5 * 1024 * 1024)}),
                 "compression ratio above [limits] max_zip_ratio (50) (at files/zeros.bin)"),
    "many.zip": (_zip({f"files/{n}.pdf": b"%PDF" for n in range(21)}),
                 "zip has 21 entries, more than [limits] max_zip_entries (20)"),
    "escape.zip": (_zip({"m.xml": message(), "../../evil.txt": b"x"}), "escap"),
}


@pytest.fixture
def gateway_dir(tmp_path: Path) -> Path:
    config = write_initial_config(tmp_path)
    (tmp_path / "conf.d" / "10-test.toml").write_text(
        f'[limits]\nmax_document_bytes = {SIZE_LIMIT}\nmax_zip_ratio = 50\nmax_zip_entries = 20\n'
        '[sources.registry]\npattern = "*"\npoll_interval = "50ms"\nsettle = "50ms"\n'
        'grace = "300ms"\n'
        '[dispatcher]\nidle_poll = "50ms"\n'
        '[partners.canton.sedex]\npoll_interval = "50ms"\npair_grace = "200ms"\n'
        'settle = "50ms"\ngrace = "300ms"\n')
    assert config.exists()
    return tmp_path


def show(config: Path, mid: int) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--config", str(config), "messages", "show", str(mid)]) == 0
    return out.getvalue()


async def test_bad_inputs_are_quarantined_and_nothing_is_sent(gateway_dir: Path) -> None:
    db, config = gateway_dir / "gateway.db", gateway_dir / "gateway.toml"
    outbox = gateway_dir / "sedex" / "outbox"
    async with running(config):
        for name, (data, _why) in CASES.items():
            drop(gateway_dir / "registry" / "outbox", name, data)
        # an envelope without its payload arrives from the canton
        drop(gateway_dir / "sedex" / "inbox", "envl_lonely.xml",
             (Path(__file__).parent / "fixtures/conformance/valid-env1-minimal.xml").read_bytes())
        await until(lambda: len(states(db, "SELECT id FROM messages WHERE state = 'quarantined'"))
                    == len(CASES) + 1, timeout=15)
        assert [p for p in outbox.iterdir() if p.is_file()] == [], "the partner must receive nothing"
        # the daemon still runs: a good message goes through afterwards
        drop(gateway_dir / "registry" / "outbox", "good.xml", message("still-alive"))
        await until(lambda: any(p.name.startswith("envl_") for p in outbox.iterdir()))
    rows = states(db, "SELECT id, ref, reason, raw FROM messages JOIN payloads ON message = id"
                       " WHERE state = 'quarantined'")
    by_ref = {ref: (mid, reason, bytes(raw)) for mid, ref, reason, raw in rows}
    for name, (data, why) in CASES.items():
        mid, reason, raw = by_ref[name]
        assert why in reason, f"{name}: {reason}"
        assert raw == data, f"{name}: raw bytes must be kept as received"
        assert reason in show(config, mid)
    lonely = next(v for k, v in by_ref.items() if "lonely" in k)
    assert "envelope without payload" in lonely[1]
    assert "envelope without payload" in show(config, lonely[0])
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--config", str(config), "journal", "verify"]) == 0
    assert "journal intact" in out.getvalue()


async def test_a_file_over_the_limit_keeps_no_message_id_even_if_its_kept_bytes_have_one(
        gateway_dir: Path) -> None:
    """A file over ``[limits] max_document_bytes`` is never read as a document, nor is its
    header: what the store keeps of it (its first ``max_kept_bytes``) is evidence, not the
    document, and a messageId read from it would name a document the gateway never read
    whole (any message with anything after it). So it keeps no messageId, even when the
    bytes kept are a well-formed eCH-0223 message (here: a message, then blank lines past
    the limit): ``messages show`` does not find it by the messageId."""
    db, config = gateway_dir / "gateway.db", gateway_dir / "gateway.toml"
    (gateway_dir / "conf.d" / "20-kept.toml").write_text("[limits]\nmax_kept_bytes = 8192\n")
    big = message("big-1") + b"\n" * SIZE_LIMIT
    async with running(config):
        drop(gateway_dir / "registry" / "outbox", "big.xml", big)
        await until(lambda: states(db, "SELECT state FROM messages") == [("quarantined",)])
    [(message_id, reason, kept)] = states(db, "SELECT message_id, reason, raw FROM messages"
                                              " JOIN payloads ON message = id")
    assert reason.startswith(f"document of {len(big)} bytes is larger than the limit of"
                             f" {SIZE_LIMIT} bytes ([limits] max_document_bytes)")
    assert bytes(kept) == big[:8192]
    assert etree.fromstring(bytes(kept)).findtext("{*}header/{*}messageId") == "big-1"
    assert message_id is None
    with redirect_stdout(io.StringIO()):
        assert main(["--config", str(config), "messages", "show", "big-1"]) == 3
