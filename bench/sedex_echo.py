"""A lean stand-in for the sedex client, for the throughput benchmark.

For every complete pair in ``DIR/sedex/outbox`` it moves the data file,
then the envelope, to ``DIR/sedex/processed`` and writes an eCH-0090 v2
receipt with status 100 into ``DIR/sedex/receipts`` (hidden temporary name,
then rename). It does not check envelopes or deliver anywhere: that is
``ech-gateway sedex-sim``. It scans every 0.2 s, as a client polls its
outbox; scanning without pause would hold the directory lock against the
gateway's own writes. Runs until TERM.

Usage: python bench/sedex_echo.py DIR
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

RECEIPT = """<?xml version="1.0" encoding="UTF-8"?>
<eCH-0090:receipt xmlns:eCH-0090="http://www.ech.ch/xmlns/eCH-0090/2" version="2.0">
  <eCH-0090:eventDate>{now}</eCH-0090:eventDate>
  <eCH-0090:statusCode>100</eCH-0090:statusCode>
  <eCH-0090:statusInfo>delivered</eCH-0090:statusInfo>
  <eCH-0090:messageId>{ref}</eCH-0090:messageId>
  <eCH-0090:messageType>{type}</eCH-0090:messageType>
  <eCH-0090:messageClass>0</eCH-0090:messageClass>
  <eCH-0090:senderId>{sender}</eCH-0090:senderId>
  <eCH-0090:recipientId>{recipient}</eCH-0090:recipientId>
</eCH-0090:receipt>
"""
#: Seconds between scans of the outbox, as a client polls (the real one: seconds).
POLL = 0.2
FIELD = re.compile(rb"<eCH-0090:(messageType|senderId|recipientId)>([^<]+)<")


def step(outbox: Path, processed: Path, receipts: Path) -> int:
    """Handle every complete pair once; return how many."""
    envelopes = [e.name for e in os.scandir(outbox) if e.name.startswith("envl_")]
    data = {e.name[5:].partition(".")[0]: e.name for e in os.scandir(outbox)
            if e.name.startswith("data_")}
    for name in envelopes:
        ref = name[5:-4]
        envelope = (outbox / name).read_bytes()
        fields = {k.decode(): v.decode() for k, v in FIELD.findall(envelope)}
        os.replace(outbox / data[ref], processed / data[ref])
        os.replace(outbox / name, processed / name)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        receipt = RECEIPT.format(now=now, ref=ref, type=fields["messageType"],
                                 sender=fields["senderId"], recipient=fields["recipientId"])
        tmp, final = receipts / f".{uuid.uuid4()}", receipts / f"{uuid.uuid4()}.xml"
        tmp.write_text(receipt)
        os.replace(tmp, final)
    return len(envelopes)


def main() -> None:
    """Run until TERM."""
    work = Path(sys.argv[1]) / "sedex"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        step(work / "outbox", work / "processed", work / "receipts")
        time.sleep(POLL)


if __name__ == "__main__":
    main()
