"""Whether two file-name patterns (``fnmatch``: ``*``, ``?``, ``[...]``) can match one name,
in any case, as folder sources match names.

``a*.xml`` and ``*b.xml`` share ``ab.xml`` though neither matches the other: the patterns
are walked side by side, a ``*`` taking none, one or more of the other's signs. A class
whose signs cannot be listed (a range over a large part of Unicode) is taken to share a
sign with anything: where unsure, the patterns are said to share a name.
"""

from __future__ import annotations

from functools import cache

#: Any one sign (``?``, a wide class).
ANY = None
#: Most signs a class is listed with; wider ones count as any sign.
_WIDEST = 512

#: A pattern's part: ``*``, or one sign as the set of its lowercase forms (``ANY``), negated
#: when the class starts with ``!``.
Part = str | tuple[frozenset[str] | None, bool]


def share_a_name(a: str, b: str) -> bool:
    """Whether some file name matches both patterns ``a`` and ``b`` (in any case)."""
    return _meet(_parts(a.lower()), _parts(b.lower()))


def _parts(pattern: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    i = 0
    while i < len(pattern):
        sign = pattern[i]
        if sign == "*":
            if not parts or parts[-1] != "*":
                parts.append("*")
            i += 1
        elif sign == "?":
            parts.append((ANY, False))
            i += 1
        elif sign == "[" and (end := _class_end(pattern, i)) is not None:
            parts.append(_class(pattern[i + 1:end]))
            i = end + 1
        else:
            parts.append((frozenset(sign), False))
            i += 1
    return tuple(parts)


def _class_end(pattern: str, start: int) -> int | None:
    """Where the class opened at ``start`` closes (as fnmatch reads it), or ``None``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "!":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    end = pattern.find("]", i)
    return None if end < 0 else end


def _class(body: str) -> Part:
    negated = body.startswith("!")
    body = body[1:] if negated else body
    signs: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = ord(body[i]), ord(body[i + 2])
            if high - low > _WIDEST:
                return (ANY, False) if not negated else (frozenset(), True)
            signs.update(chr(c).lower() for c in range(low, high + 1))
            i += 3
        else:
            signs.add(body[i].lower())
            i += 1
    return frozenset(signs), negated


def _one_sign_in_both(x: tuple[frozenset[str] | None, bool],
                      y: tuple[frozenset[str] | None, bool]) -> bool:
    (xs, x_not), (ys, y_not) = x, y
    if xs is None or ys is None:
        return True  # any sign (or one outside a narrow set) fits the other
    if x_not and y_not:
        return True  # two negated sets leave most signs to both
    if x_not:
        return bool(ys - xs)
    if y_not:
        return bool(xs - ys)
    return bool(xs & ys)


def _meet(a: tuple[Part, ...], b: tuple[Part, ...]) -> bool:
    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        x, y = a[i], b[j]
        assert not isinstance(x, str) and not isinstance(y, str)
        return _one_sign_in_both(x, y) and meet(i + 1, j + 1)

    return meet(0, 0)
