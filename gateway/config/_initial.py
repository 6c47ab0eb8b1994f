"""``ech-gateway init DIR``: a first, working configuration."""

from __future__ import annotations

from pathlib import Path

from gateway.config._load import DEFAULT_PATHS
from gateway.config._template import INITIAL_CONFIG, INITIAL_DIRS
from gateway.errors import ConfigExists


def write_initial_config(directory: Path) -> Path:
    """Write ``directory/gateway.toml`` and create the folders it names.

    :return: the path of the written file.
    :raises ConfigExists: if ``directory/gateway.toml`` exists already.
    """
    target = directory / DEFAULT_PATHS[0].name
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("x", encoding="utf-8") as stream:
            stream.write(INITIAL_CONFIG)
    except FileExistsError:
        reason = f"{target} exists already; remove it or choose another directory"
        raise ConfigExists(reason) from None
    for name in INITIAL_DIRS:
        (directory / name).mkdir(parents=True, exist_ok=True)
    return target
