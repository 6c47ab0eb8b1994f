"""Read one eCH-0011/0021/0044/0010/0007 part wherever it sits, e.g. inside an eCH-0020 event.

eCH-0223 and eCH-0020 v3 import the same versions of these schemas, so an
element of one of their types reads into the same model, whatever the
namespace of the element itself (``eCH-0020:nameData`` holds the same
``eCH-0011`` children as ``eCH-0223:nameData``).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from ._base import EchModel
from ._binding import Layout, M
from ._message_xml import PERSON_DATA
from ._person_xml import (
    BIRTH_ADDON_DATA,
    BIRTH_DATA,
    COUNTRY,
    DATE_PARTIALLY_KNOWN,
    JOB_DATA,
    MARITAL_DATA,
    MUNICIPALITY,
    NAME_DATA,
    NAMED_PERSON_ID,
    NATIONALITY_DATA,
    PERSON_IDENTIFICATION,
    RELIGION_DATA,
    RESIDENCE_PERMIT_DATA,
    SWISS_ADDRESS,
)
from .reader import _read

_LAYOUTS: dict[type[EchModel], Layout[Any]] = {
    layout.model: layout
    for layout in (BIRTH_ADDON_DATA, BIRTH_DATA, COUNTRY, DATE_PARTIALLY_KNOWN, JOB_DATA, MARITAL_DATA,
                   MUNICIPALITY, NAME_DATA, NAMED_PERSON_ID, NATIONALITY_DATA, PERSON_DATA,
                   PERSON_IDENTIFICATION, RELIGION_DATA, RESIDENCE_PERMIT_DATA, SWISS_ADDRESS)
}


def read_part(el: etree._Element, model: type[M]) -> M:
    """Read ``el``, an element of the XSD type behind ``model`` (``NameData``, ``BirthData``...).

    Supported: the types of ``personData`` (name, birth, birth add-on, nationality,
    marital, residence permit, job, religion data), ``SwissMunicipality``,
    ``SwissAddressInformation``, ``Country``, ``NamedPersonId``, ``DatePartiallyKnown``,
    and eCH-0223's ``PersonIdentificationLight`` and ``PersonData``.

    :raises InputRejected: the element is not of that shape; ``where`` is its path.
    :raises KeyError: ``model`` is not one of the supported types.
    """
    result: M = _read(el, _LAYOUTS[model])
    return result
