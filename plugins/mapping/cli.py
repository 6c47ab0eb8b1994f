"""``ech-gateway map-test``: what a source's mapping makes of an export, sending nothing.

It reads the gateway's configuration (``--config``), maps the file as the
gateway would, and prints each row's eCH-0223 message (or one line per row
with ``--summary``), each rejected row with its row, field and reason, and
the file's warnings (lines skipped before the header; what every row has wrong).
Exit 0 when every row maps, 1 when a row or the file is rejected, 2 for a
configuration problem, 3 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.api import (
    Command,
    ConfigError,
    InputMetadata,
    InputRejected,
    NormaliseContext,
    Normalised,
    RawInput,
    counted,
    load_config,
    unfinished,
)
from plugins.mapping.loading import load_mapping
from plugins.mapping.normaliser import MAPPING_META, ROW_META, normalise

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_NOT_FOUND = 3


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (the configuration file is the global ``--config``)."""
    parser.add_argument("--source", required=True, metavar="NAME",
                        help="the source whose mapping to use ([sources.NAME] mapping = ...)")
    parser.add_argument("file", type=Path, metavar="FILE", help="an export file")
    parser.add_argument("--summary", action="store_true",
                        help="one line per row instead of the messages")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="also write each row's message to DIR/row-0001.xml,"
                        " row-0002.xml, ... (the row number in four digits or more)")


def run(args: argparse.Namespace) -> int:
    """Map ``args.file`` with the source's mapping; print messages and rejections."""
    settings = load_config(args.config, args.pm)
    meta = source_meta(settings, args.source, args.file.name)
    limits = settings.limits
    context = NormaliseContext(limits.max_document_bytes, limits.max_zip_entries,
                               limits.max_zip_bytes, limits.max_zip_ratio)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"ech-gateway map-test: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_NOT_FOUND
    cut = unfinished(data, settled=True)
    if cut is not None:  # as the source would: it waits, then quarantines the file whole
        grace = getattr(settings.sources[args.source].parsed, "grace", None)
        after = f" ({grace:g} s)" if isinstance(grace, float) else ""
        print(f"{args.file}: rejected: {cut}: the source takes the file for one still being"
              f" written, and once it has not changed for its grace{after} quarantines it"
              " whole", file=sys.stderr)
        return EXIT_REJECTED
    raw = RawInput(args.source, args.file.name, data, meta)
    try:
        export = normalise(raw, context)
    except InputRejected as exc:
        print(f"{args.file}: rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    assert export is not None
    if export.not_relevant is not None:
        for warning in export.warnings:
            print(f"{args.file}: {warning}")
        print(f"{args.file}: {export.not_relevant}")
        return EXIT_OK
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    report = sys.stdout if args.summary else sys.stderr
    shown: list[tuple[int, str]] = []
    failed = 0
    for part in export.parts:
        try:
            message = normalise(part, context)
        except InputRejected as exc:  # the mapping file changed in between
            shown.append((_row(part), str(exc)))
            failed += 1
            continue
        assert message is not None
        _show(part, message, args)
    shown += [(_row(part), reason) for part, reason in export.rejected_parts]
    for _row_number, reason in sorted(shown):
        print(f"{args.file}: {reason}", file=report)
    failed += len(export.rejected_parts)
    for warning in (*export.warnings, *export.rejected_warnings):  # what all rows have, if one
        print(f"{args.file}: {warning}", file=report)
    total = len(export.parts) + len(export.rejected_parts)
    print(f"{args.file}: {counted(total, 'row')}, {total - failed} mapped, {failed} rejected",
          file=report)
    return EXIT_REJECTED if failed else EXIT_OK


def _row(part: RawInput) -> int:
    return int(part.meta[ROW_META])


def _show(part: RawInput, message: Normalised, args: argparse.Namespace) -> None:
    row = _row(part)
    if args.out is not None:
        (args.out / f"row-{row:04d}.xml").write_bytes(message.xml)
    if args.summary:
        print(f"row {row}: {message.facts['person_event']}, messageId {message.message_id},"
              f" person {' '.join(message.subject)}")
    else:
        assert message.tree is not None
        print(f"==> row {row} <==")
        print(etree.tostring(message.tree, encoding="unicode", pretty_print=True), end="")


def source_meta(settings: Any, name: str, file: str) -> dict[str, str]:
    """The metadata source ``name`` gives a file called ``file``, naming its mapping.

    :raises ConfigError: no such source, or it names no mapping.
    """
    config = str(settings.config_files[0]) if settings.config_files else "configuration"
    source = settings.sources.get(name)
    if source is None:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise ConfigError([(config, f"sources.{name}", f"no such source; sources: {known}")])
    options = source.parsed
    meta = options.input_meta(file) if isinstance(options, InputMetadata) else {}
    if MAPPING_META not in meta:
        raise ConfigError([(config, f"sources.{name}.mapping",
                            "the source names no mapping file")])
    return meta


def mapping_problems(settings: Any) -> list[tuple[str, str, str]]:
    """The problems of every mapping file a source names (each file checked once)."""
    problems: list[tuple[str, str, str]] = []
    seen: set[Path] = set()
    for name, source in settings.sources.items():
        path = getattr(source.parsed, "mapping", None)
        if not isinstance(path, Path) or path in seen:
            continue
        seen.add(path)
        try:
            load_mapping(path)
        except ConfigError as exc:
            problems += [(file, key, f"{reason} (mapping of sources.{name})")
                         for file, key, reason in exc.problems]
    return problems


COMMAND = Command("map-test", "show what a source's mapping makes of a JSON or CSV export,"
                  " sending nothing (exit 1 if a row is rejected)", configure, run)
