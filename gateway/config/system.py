"""``ech-gateway init --system``: the layout of a system install and its systemd files.

The documented install puts a virtual environment under ``/opt/ech-gateway``,
the configuration under ``/etc/ech-gateway`` and the data (database and the
registry and sedex folders) under ``/var/lib/ech-gateway``, run by the system
user ``ech-gateway``. The unit, the sysusers and the tmpfiles file below say
the same; ``systemd/`` in the repository holds copies of them (a test keeps
them equal).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from gateway.config._load import CONF_D
from gateway.config._template import INITIAL_CONFIG, INITIAL_DIRS
from gateway.errors import ConfigExists

NAME = "ech-gateway"
#: The system user and group the service runs as.
USER = NAME
#: The virtual environment the documented install creates.
VENV = PurePosixPath("/opt") / NAME
EXECUTABLE = VENV / "bin" / NAME
#: systemd's ConfigurationDirectory= and StateDirectory= for ``NAME``.
CONFIG_DIR = PurePosixPath("/etc") / NAME
DATA_DIR = PurePosixPath("/var/lib") / NAME
CONFIG_FILE = CONFIG_DIR / "gateway.toml"
UNIT_NAME = f"{NAME}.service"
#: The data folders ``init --system`` creates under DATA_DIR.
DATA_DIRS = tuple(d for d in INITIAL_DIRS if d != CONF_D)

SYSUSERS = f"""\
# The system user of ech-gateway (systemd-sysusers, see sysusers.d(5)).
# Add the users of the registry software and of the sedex client to the group
# {USER}: they write into, and read from, the folders under {DATA_DIR}.
u {USER} - "ech-gateway eCH-0223 gateway" {DATA_DIR}
"""

TMPFILES = "".join([
    "# The configuration and data folders of ech-gateway (systemd-tmpfiles, see tmpfiles.d(5)).\n",
    "# The configuration may hold secrets: readable by the service, writable by root only.\n",
    f"d {CONFIG_DIR} 0750 root {USER} -\n",
    f"d {CONFIG_DIR}/{CONF_D} 0750 root {USER} -\n",
    f"z {CONFIG_FILE} 0640 root {USER} -\n",
    "# The data: the service's own; the registry and sedex folders shared with its group.\n",
    f"d {DATA_DIR} 0750 {USER} {USER} -\n",
    *(f"d {DATA_DIR}/{d} 2770 {USER} {USER} -\n" for d in sorted({
        *DATA_DIRS, *(str(PurePosixPath(d).parent) for d in DATA_DIRS)} - {"."})),
])

UNIT = f"""\
# ech-gateway as a systemd service, as `ech-gateway init --system` installs it.
# Install (README, "Installing as a service"): a venv under {VENV}, then
#   {EXECUTABLE} init --system
#   systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload
#   systemctl enable --now {NAME}
[Unit]
Description=ech-gateway: eCH-0223 messages between registry and canton
Documentation=https://www.ech.ch/de/ech/ech-0223
After=network-online.target
Wants=network-online.target

[Service]
# Started at READY=1, once the inputs stored before the last stop are processed
# again. Meanwhile the daemon asks for 30 s more every 10 s (EXTEND_TIMEOUT_USEC),
# and says what it does (systemctl status): a large backlog does not outlast
# TimeoutStartSec. A start that stops asking (hung) is killed after it.
Type=notify
TimeoutStartSec=90
NotifyAccess=main
User={USER}
Group={USER}
ExecStartPre={EXECUTABLE} --config {CONFIG_FILE} check-config
ExecStart={EXECUTABLE} --config {CONFIG_FILE} run
# TERM drains in-flight work; give it the configured drain_timeout and a margin.
KillSignal=SIGTERM
TimeoutStopSec=60
WatchdogSec=60
Restart=on-failure
RestartSec=5
# Exit 5: the database was deleted or replaced, or does not reach its journal
# anchor. Restarting would not mend it: an operator restores the database.
RestartPreventExitStatus=5

# {CONFIG_DIR} (read-only for the service) and {DATA_DIR} (its own).
ConfigurationDirectory={NAME}
ConfigurationDirectoryMode=0750
StateDirectory={NAME}
StateDirectoryMode=0750
# Files written into the shared folders are readable by the group (the sedex client).
UMask=0027

# Hardening: the service writes only its state directory. Folders elsewhere
# (the sedex client's own, for example) need a drop-in, `systemctl edit {NAME}`:
#   [Service]
#   ReadWritePaths=/srv/sedex
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectProc=invisible
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target
"""

#: What ``init --system`` installs, relative to the root, with its content.
SYSTEMD_FILES = {
    PurePosixPath("etc/sysusers.d") / f"{NAME}.conf": SYSUSERS,
    PurePosixPath("etc/tmpfiles.d") / f"{NAME}.conf": TMPFILES,
    PurePosixPath("etc/systemd/system") / UNIT_NAME: UNIT,
}
#: Where each of SYSTEMD_FILES has its copy in the repository's ``systemd/``.
REPOSITORY_COPIES = {
    f"{NAME}.sysusers.conf": SYSUSERS,
    f"{NAME}.tmpfiles.conf": TMPFILES,
    UNIT_NAME: UNIT,
}


def system_config() -> str:
    """The initial configuration with its files under :data:`DATA_DIR`."""
    text = re.sub(r"(?m)^# data_dir = .*$",
                  f'data_dir = "{DATA_DIR}"   # the gateway\'s own files', INITIAL_CONFIG)
    for relative in (*DATA_DIRS, "gateway.db"):
        text = text.replace(f'"{relative}"', f'"{DATA_DIR}/{relative}"')
    return text


def install_system(root: Path) -> list[Path]:
    """Write the configuration, the data folders and the systemd files under ``root``.

    :return: the files written.
    :raises ConfigExists: if any of them exists already (nothing is written then).
    """
    files = {root / str(CONFIG_FILE).lstrip("/"): system_config()}
    files |= {root / str(path): text for path, text in SYSTEMD_FILES.items()}
    present = [str(path) for path in files if path.exists()]
    if present:
        raise ConfigExists(f"{', '.join(present)} exist(s) already; remove or keep them,"
                           " but init --system writes none of its files over existing ones")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as stream:
            stream.write(text)
    (root / str(CONFIG_DIR).lstrip("/") / CONF_D).mkdir(exist_ok=True)
    for name in DATA_DIRS:
        (root / str(DATA_DIR).lstrip("/") / name).mkdir(parents=True, exist_ok=True)
    return list(files)
