"""Writing the finished eCH-0223 1.5 ``personEventMessage``."""

from __future__ import annotations

from typing import cast

from lxml import etree

from gateway.api import ech0223, write_message


def write(header: ech0223.Header, identification: ech0223.PersonIdentificationLight,
          person_event: str | None, person_data: ech0223.PersonData | None,
          comment: str | None) -> tuple[bytes, etree._ElementTree]:
    """The message's XML and its parsed tree (read back from the very bytes to be sent)."""
    content = ech0223.Content(
        person_identification=identification,
        person_event=cast("ech0223.PersonEvent | None", person_event),
        person_data=person_data,
        business_information=ech0223.BusinessInformation(business_comment=comment) if comment else None,
    )
    xml = write_message(ech0223.PersonEventMessage(header=header, content=content))
    return xml, etree.fromstring(xml).getroottree()
