"""The official eCH XSDs as a test oracle.

They live outside the repository (``../shared/schemas/official``) and are
loaded through their XML catalog. Without them, tests that need them skip,
except under ``CI=true``, where their absence is a failure.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from lxml import etree

from gateway.xml.validation import SchemaSet, _CatalogResolver, _read_catalog

REPO = Path(__file__).resolve().parent.parent
OFFICIAL_DIR = REPO.parent / "shared" / "schemas" / "official"
OFFICIAL_CATALOG = OFFICIAL_DIR / "catalog.xml"


def require_shared(path: Path = OFFICIAL_CATALOG) -> Path:
    """``path`` if it exists; otherwise skip the test, or fail it under ``CI=true``."""
    if not path.is_file():
        reason = f"shared file not found: {path} does not exist"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)")
        pytest.skip(reason)
    return path


def official_schema_set() -> SchemaSet:
    """The official eCH-0223 and eCH-0090 schemas through their catalog (see :func:`require_shared`)."""
    return SchemaSet.from_catalog(require_shared())


@functools.cache
def _compile(filename: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_CatalogResolver(_read_catalog(OFFICIAL_CATALOG)))
    return etree.XMLSchema(etree.parse(str(OFFICIAL_DIR / filename), parser))


def official_xsd(filename: str) -> etree.XMLSchema:
    """One official XSD, e.g. ``eCH-0020-3-0.xsd``, compiled with its imports from the catalog.

    The compiled schema is shared: use it from one thread only.
    """
    require_shared()
    require_shared(OFFICIAL_DIR / filename)
    return _compile(filename)
