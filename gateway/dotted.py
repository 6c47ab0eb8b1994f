"""Dotted paths into parsed JSON or SOAP answers: ``person.name.last``, ``message.0``.

One reading for every plugin that lets the configuration point into a document
(the mapping's ``records``, the SOAP source's ``messages`` and ``payload``).
"""

from __future__ import annotations

from typing import Any


def value_at(document: Any, path: str, *, missing: Any = None) -> Any:
    """The part of ``document`` (dicts and lists) at the dotted ``path``, or ``missing``.

    A name picks a dict's key; a number picks a list's item (``nationalities.0``).

    :param document: nested dicts and lists (parsed JSON, a zeep answer as dicts).
    :param path: the names, joined by ``.``; ``"."`` is the document itself.
    :param missing: what to return where the path leads nowhere; pass a sentinel to tell
        a key that is absent from one that holds ``None`` (JSON ``null``).
    :return: the value there, ``missing`` where the path leads nowhere.
    """
    if path == ".":
        return document
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):
            value = value[int(part)]
        else:
            return missing
    return value
