"""Document metadata: eCH-0039 v3 ``documentType`` as extended by eCH-0223."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from ._base import EchModel
from .codes import Classification, DocumentStatus, OpenToThePublic


class LangText(EchModel):
    """A text with an optional ``eCH-0039:lang`` attribute (title, comment, keyword)."""

    text: str
    lang: str | None = None


class File(EchModel):
    """eCH-0039 ``fileType``; a path inside the sedex ZIP starts with ``files/``."""

    path_file_name: str
    mime_type: str
    internal_sort_order: int | None = None
    version: str | None = None
    hash_code: str | None = None
    hash_code_algorithm: str | None = None
    lang: str | None = None


class Document(EchModel):
    """One ``content/document``: eCH-0039 ``documentType`` plus ``originalCreationDate``.

    The wrapper elements ``titles``, ``files``, ``comments`` and ``keywords`` are lists
    here; an empty ``comments`` or ``keywords`` list means the wrapper is absent.
    ``original_creation_date`` is a ``datetime`` from version 1.3 on (a ``date`` in 1.0).
    """

    uuid: str
    titles: list[LangText] = Field(min_length=1)
    status: DocumentStatus
    files: list[File] = Field(min_length=1)
    classification: Classification | None = None
    open_to_the_public: OpenToThePublic | None = None
    has_privacy_protection: bool | None = None
    opening_date: date | None = None
    owner: str | None = None
    signer: str | None = None
    our_record_reference: str | None = None
    comments: list[LangText] = Field(default_factory=list)
    keywords: list[LangText] = Field(default_factory=list)
    is_leading_document: bool | None = None
    sort_order: int | None = None
    document_kind: str | None = None
    original_creation_date: datetime | date
    lang: str | None = None
