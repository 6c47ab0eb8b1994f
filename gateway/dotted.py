"""Dotted paths into parsed JSON or SOAP answers: ``person.name.last``, ``message.0``.

One reading for every plugin that lets the configuration point into a document
(the mapping's ``records``, the SOAP source's ``messages`` and ``payload``).
"""

from __future__ import annotations

from typing import Any


def value_at(document: Any, path: str) -> Any:
    """The part of ``document`` (dicts and lists) at the dotted ``path``, or ``None``.

    A name picks a dict's key; a number picks a list's item (``nationalities.0``).

    :param document: nested dicts and lists (parsed JSON, a zeep answer as dicts).
    :param path: the names, joined by ``.``; ``"."`` is the document itself.
    :return: the value there, ``None`` where the path leads nowhere.
    """
    if path == ".":
        return document
    value = document
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdecimal() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
