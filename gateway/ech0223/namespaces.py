"""Namespace URIs of eCH-0223 1.5 and the schemas it imports, with the writer's prefixes."""

from __future__ import annotations

from typing import Final


class NS:
    """Namespace URIs. eCH-0223 keeps ``/1`` in every version (1.0 to 1.5)."""

    ECH_0223: Final = "http://www.ech.ch/xmlns/eCH-0223/1"
    ECH_0039: Final = "http://www.ech.ch/xmlns/eCH-0039/3"
    ECH_0058: Final = "http://www.ech.ch/xmlns/eCH-0058/4"
    ECH_0044: Final = "http://www.ech.ch/xmlns/eCH-0044/4"
    ECH_0011: Final = "http://www.ech.ch/xmlns/eCH-0011/8"
    ECH_0021: Final = "http://www.ech.ch/xmlns/eCH-0021/7"
    ECH_0010: Final = "http://www.ech.ch/xmlns/eCH-0010/5"
    ECH_0007: Final = "http://www.ech.ch/xmlns/eCH-0007/5"
    ECH_0008: Final = "http://www.ech.ch/xmlns/eCH-0008/3"
    ECH_0006: Final = "http://www.ech.ch/xmlns/eCH-0006/2"
    XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"


#: Prefixes the writer declares on the root element.
NSMAP: Final[dict[str, str]] = {
    "eCH-0223": NS.ECH_0223,
    "eCH-0039": NS.ECH_0039,
    "eCH-0058": NS.ECH_0058,
    "eCH-0044": NS.ECH_0044,
    "eCH-0011": NS.ECH_0011,
    "eCH-0021": NS.ECH_0021,
    "eCH-0010": NS.ECH_0010,
    "eCH-0007": NS.ECH_0007,
    "eCH-0008": NS.ECH_0008,
    "eCH-0006": NS.ECH_0006,
    "xsi": NS.XSI,
}
