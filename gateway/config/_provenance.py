"""Where each configuration key came from, and problems that say so."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from gateway.config._suggest import did_you_mean

#: ``(file, key, reason)``: what :class:`gateway.errors.ConfigError` lists.
Problem = tuple[str, str, str]
#: A key as the path of table names to it: ``("partners", "canton", "transport")``.
Key = tuple[str, ...]

_REASONS = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}
#: Errors of a value whose problem names the value too, in a rule (no secrets there).
_WRONG_VALUE = ("int_parsing", "int_type", "int_from_float", "greater_than_equal", "bool_parsing",
                "bool_type", "string_type")
_CONTAINERS = {"list_type": '["a", "b"]', "dict_type": '{"key": "value"}'}
_BAD_NAME = (
    "invalid name: use lowercase letters, digits, '_' and '-', starting with a letter or digit"
)


@dataclass(frozen=True, slots=True)
class Origin:
    """What set a key: a file, or an environment variable.

    :param label: how problems name it (the file's path, ``env ECH_GATEWAY_...``).
    :param base: the directory its relative paths are resolved against.
    """

    label: str
    base: Path


@dataclass(slots=True)
class Provenance:
    """The origin of every key (tables included) that a layer set last."""

    fallback: Origin
    origins: dict[Key, Origin] = field(default_factory=dict)
    #: The ``name`` of each ``[[rules]]`` entry, for problems to name the rule.
    rule_names: list[str] = field(default_factory=list)

    def forget(self, key: Key) -> None:
        """Drop ``key`` and everything inside it (it was replaced)."""
        size = len(key)
        for known in [k for k in self.origins if k[:size] == key]:
            del self.origins[known]

    def at(self, key: Key) -> Origin:
        """The origin of ``key``, else of the nearest table holding it."""
        for size in range(len(key), 0, -1):
            origin = self.origins.get(key[:size])
            if origin is not None:
                return origin
        return self.fallback

    def problem(self, key: Key, reason: str) -> Problem:
        """A problem with ``key``, naming the file or variable that set it.

        A rule is numbered from 1 (``rules[2].then``), as the journal and ``rules
        explain`` number it, and named in the reason.
        """
        if len(key) > 1 and key[0] in _NUMBERED and key[1].isdigit():
            index = int(key[1])
            name = self.rule_names[index] if index < len(self.rule_names) else ""
            return (self.at(key).label, ".".join((f"{key[0]}[{index + 1}]", *key[2:])),
                    f"rule {name!r}: {reason}" if name else reason)
        return (self.at(key).label, dotted(key), reason)

    def problems(self, error: ValidationError, prefix: Key = (),
                 keys: Callable[[Key], Collection[str]] | None = None) -> list[Problem]:
        """One problem per error in ``error``, for a model validated at ``prefix``.

        :param keys: the keys the table at a key takes: an unknown key close to one of them
            is a typo, and the problem names the key meant.
        """
        found = []
        for detail in error.errors(include_url=False):
            loc = [str(part) for i, part in enumerate(detail["loc"])
                   if not isinstance(part, int) or detail["loc"][i - 1] in _NUMBERED]
            reason = _REASONS.get(detail["type"], detail["msg"].removeprefix("Value error, "))
            if loc and loc[-1] == "[key]":
                loc.pop()
                reason = _BAD_NAME
            key = (*prefix, *loc)
            if detail["type"] == "literal_error" or (key[:1] == ("rules",)
                                                     and detail["type"] in _WRONG_VALUE):
                reason += f", not {detail['input']!r}"  # which entry of a list it is
            if detail["type"] == "extra_forbidden" and isinstance(detail["input"], dict):
                meant = did_you_mean(key[-1], keys(key[:-1])) if keys is not None else ""
                reason = "unknown table" + meant  # [retension], [http.tsl]
                if key[0] == "partners" and len(key) == 3 and not meant:
                    reason += f"; transport options go in [partners.{key[1]}.<transport>]"
            elif detail["type"] == "extra_forbidden" and keys is not None:
                reason += did_you_mean(key[-1], keys(key[:-1]))
            if detail["type"] in _CONTAINERS and self.at(key).label.startswith("env "):
                reason += f"; give a JSON value, e.g. {_CONTAINERS[detail['type']]}"
            found.append(self.problem(key, reason))
        return found


#: Arrays of tables whose entries a problem names by number (``rules[3].then``).
_NUMBERED = ("rules",)


def dotted(key: Key) -> str:
    """``("partners", "canton", "retry")`` → ``partners.canton.retry``."""
    return ".".join(key)
