"""Names as registries and cantonal systems spell them: one name, or two."""

from __future__ import annotations

import pytest

from gateway.names import same_first_names, same_name, spellings


@pytest.mark.parametrize(("ours", "theirs"), [
    ("Jovanović", "Jovanovic"), ("Jovanović", "JOVANOVIC"), ("Kovalenko", "KOVALENKO"),
    ("Jovanovic\u0301", "Jovanović"),  # decomposed, as some systems store it
    ("Müller", "Mueller"), ("Müller", "Muller"), ("MÜLLER", "mueller"),
    ("Strauß", "Strauss"), ("Strauß", "STRAUSS"), ("Åsa", "Aasa"), ("Øberg", "Oeberg"),
    ("Øberg", "Oberg"), ("Bœuf", "Boeuf"), ("Łukasz", "Lukasz"), ("Ærø", "Aeroe"),
    ("Meier-Keller", "Meier Keller"), ("Anna  Maria", "Anna-Maria"), ("D'Amico", "D\u2019Amico"),
    ("von Arx", "VONARX"), ("Žižek", "Zizek"), ("François", "Francois")])
def test_spellings_of_one_name_are_one_name(ours: str, theirs: str) -> None:
    assert same_name(ours, theirs) and same_name(theirs, ours)


@pytest.mark.parametrize(("one", "other"), [
    ("Mueller", "Muller"),  # neither has the mark: no guessing where an ü was
    ("Goethe", "Gothe"), ("Shala", "Shalla"), ("Anna Maria", "Anna"), ("Jovanović", "Jovanov"),
    ("Meier", "Meyer")])
def test_other_names_stay_other(one: str, other: str) -> None:
    assert not same_name(one, other)


def test_a_name_without_a_two_letter_mark_has_one_spelling() -> None:
    assert spellings("Jovanović") == {"jovanovic"}
    assert spellings("Müller-Lüdenscheid") == {"mullerludenscheid", "muellerluedenscheid"}


@pytest.mark.parametrize(("ours", "theirs"), [
    ("Anna Maria", "Anna"), ("Anna Maria", "ANNA"), ("Zoë Anna Maria", "Zoe Anna"),
    ("Anna Maria", "Anna Maria"), ("Anna Maria", "Anna-Maria"), ("Anna-Maria Luisa", "Anna Maria"),
    ("Jürg Peter", "JUERG"), ("Milica", "Milica Ana")])  # the register's the fewer names
def test_the_leading_first_names_stand_for_all(ours: str, theirs: str) -> None:
    assert same_first_names(ours, theirs) and same_first_names(theirs, ours)


@pytest.mark.parametrize(("one", "other"), [
    ("Anna Maria", "Maria"),  # not the first name
    ("Anna Maria", "Ann"), ("Anna Maria", "Anna Mar"), ("Anna Maria", "Maria Anna"),
    ("Anna Maria Luisa", "Anna Luisa"), ("Hans-Peter", "Hans"),  # a hyphen joins one name
    ("Mueller Hans", "Muller"), ("Milica", "Mila")])
def test_other_first_names_stay_other(one: str, other: str) -> None:
    assert not same_first_names(one, other) and not same_first_names(other, one)
