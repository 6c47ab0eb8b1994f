"""How a person's names are compared: as registries and cantonal systems write them.

The same name reaches the gateway in several spellings: ``Jovanović`` from the
commune's register, ``Jovanovic`` or ``JOVANOVIC`` from a cantonal system
limited to ASCII, ``Müller`` as ``Mueller`` or ``Muller``, ``Strauß`` as
``Strauss``, ``Meier-Keller`` as ``Meier Keller``. :func:`same_name` takes
these for one name: case folded (``ß`` is ``ss``), marks taken off the letters
(NFKD), spaces, hyphens and apostrophes left out.

The letters ASCII systems write with two (``ä`` ``ö`` ``ü`` ``å`` ``ø`` as
``ae`` ``oe`` ``ue`` ``aa`` ``oe``, ICAO 9303) are also taken without their
mark (``Muller``): a name with such a letter has two spellings (:func:`spellings`),
a name without one has one. So ``Müller`` is ``Mueller`` and ``Muller``, but
``Mueller`` is not ``Muller``: two names without a mark are never made one by
guessing where a mark was (``Goethe`` stays ``goethe``).

First names are compared by :func:`same_first_names`: a cantonal system often writes
only the first of a person's first names (``Anna`` for ``Anna Maria``). The fewer
names agree where they are the leading ones of the others, word by word: ``Anna`` is
``Anna Maria``, but ``Maria`` is not, nor is ``Ann``; a hyphen joins one name
(``Hans`` is not ``Hans-Peter``).
"""

from __future__ import annotations

import unicodedata

#: Letters ASCII systems write with two letters (ICAO 9303), else without their mark.
_TWO_LETTERS = {"ä": "ae", "ö": "oe", "ü": "ue", "å": "aa", "ø": "oe"}
#: Letters NFKD leaves whole, and how they are written without their mark (ICAO 9303).
_PLAIN = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d",
                        "þ": "th", "\u0131": "i", "ŀ": "l", "ħ": "h"})
#: What is left out of a name: it is written with or without them.
_SEPARATORS = frozenset(" -\u2010\u2011\u2012\u2013\u2014\u2212'\u2019\u02bc`\u00b4")


def spellings(name: str) -> frozenset[str]:
    """The forms ``name`` is compared in: one, or two where it has a letter of
    :data:`_TWO_LETTERS` (written with two letters, and without its mark)."""
    text = "".join(c for c in unicodedata.normalize("NFC", name).casefold()
                   if not c.isspace() and c not in _SEPARATORS)
    plain = _plain(text)
    if not any(c in _TWO_LETTERS for c in text):
        return frozenset({plain})
    return frozenset({plain, _plain("".join(_TWO_LETTERS.get(c, c) for c in text))})


def same_name(one: str, other: str) -> bool:
    """Whether ``one`` and ``other`` are spellings of one name (see the module)."""
    return not spellings(one).isdisjoint(spellings(other))


def same_first_names(one: str, other: str) -> bool:
    """Whether ``one`` and ``other`` are one person's first names: the same names
    (:func:`same_name`), or the one the leading words of the other (see the module)."""
    return _leads(one, other) or _leads(other, one)


def _leads(few: str, many: str) -> bool:
    """Whether ``few`` is ``many`` or its leading words (words apart by white space)."""
    theirs, words = spellings(few), many.split()
    return any(not theirs.isdisjoint(spellings(" ".join(words[:n])))
               for n in range(len(words), 0, -1))


def _plain(text: str) -> str:
    """``text`` (case-folded) without marks on its letters."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_PLAIN))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
