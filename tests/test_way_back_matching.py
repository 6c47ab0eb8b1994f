"""The way back finds the resident of a canton's message without a VN, as cantons write it.

A cantonal system writes ``Jovanovic`` for the register's ``Jovanović``; its answer
names the message it answers (``referenceMessageId``), whose person is tried first,
and taken only where names and date of birth agree. The real daemon, the canton's
real eCH-0223 1.3, 1.4 and 1.5 files (``tests/fixtures/conformance``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tests.flow import FIXTURES, drop, message, running, states, until, write_config
from tests.test_way_back import WAY_BACK

#: Two residents with the same names and date of birth, as the register writes them.
FIRST_VN, SECOND_VN = "7561234567897", "7569999999991"
BORN = "1990-04-12"
_IDENT = re.compile(rb"(<eCH-0223:personIdentification>).*?(</eCH-0223:personIdentification>)",
                    re.DOTALL)
_REFERENCE = re.compile(rb"<eCH-0039:referenceMessageId>[^<]*</eCH-0039:referenceMessageId>")


def _ident(official: str, first: str, born: str | None = BORN, vn: str | None = None) -> bytes:
    """An eCH-0044 personIdentificationLight's children."""
    return ((f"<eCH-0044:vn>{vn}</eCH-0044:vn>" if vn else "")
            + f"<eCH-0044:officialName>{official}</eCH-0044:officialName>"
            f"<eCH-0044:firstName>{first}</eCH-0044:firstName>"
            + (f"<eCH-0044:dateOfBirth><eCH-0044:yearMonthDay>{born}</eCH-0044:yearMonthDay>"
               "</eCH-0044:dateOfBirth>" if born else "")).encode()


def _about(data: bytes, ident: bytes) -> bytes:
    found, n = _IDENT.subn(lambda m: m.group(1) + ident + m.group(2), data, count=1)
    assert n == 1
    return found


def _ours(message_id: str, vn: str, first: str = "Milica") -> bytes:
    """The registry's own eCH-0223 message about resident ``vn``, Milica Jovanović."""
    return _about(message(message_id), _ident("Jovanović", first, vn=vn))


def _answer(fixture: str, message_id: str, answers: str, ident: bytes) -> bytes:
    """The canton's file ``fixture`` (an eventReport) as its answer to ``answers``."""
    data = (FIXTURES / fixture).read_bytes()
    data = _REFERENCE.sub(f"<eCH-0039:referenceMessageId>{answers}"
                          "</eCH-0039:referenceMessageId>".encode(), data, count=1)
    data = re.sub(rb"<eCH-0039:messageId>[^<]*<", f"<eCH-0039:messageId>{message_id}<".encode(),
                  data, count=1)
    return _about(data, ident)


def _request(message_id: str, answers: str, ident: bytes) -> bytes:
    """The canton's personEventMessage 1.5 answering ``answers``."""
    data = message(message_id).replace(
        b"</eCH-0039:messageId>", b"</eCH-0039:messageId><eCH-0039:referenceMessageId>"
        + answers.encode() + b"</eCH-0039:referenceMessageId>", 1)
    return _about(data, ident)


def _site(tmp_path: Path, version: str) -> Path:
    partner = (f'[partners.canton]\ntransport = "stub"\nech0223_version = "{version}"\n'
               '[partners.canton.stub]\n')
    config = write_config(tmp_path, partner=partner, extra=WAY_BACK)
    (tmp_path / "from-canton").mkdir()
    (tmp_path / "registry-inbox").mkdir()
    return config


async def _both_sent(root: Path, db: Path,
                     firsts: tuple[str, str] = ("Milica", "Milica")) -> dict[str, int]:
    """Our messages ``ours-1`` and ``ours-2`` about the two residents (their first names
    ``firsts``), delivered to the canton; the persons' ids, by VN."""
    drop(root / "in", "1.xml", _ours("ours-1", FIRST_VN, firsts[0]))
    drop(root / "in", "2.xml", _ours("ours-2", SECOND_VN, firsts[1]))
    await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)] * 2)
    return {key[3:]: person for key, person in states(
        db, "SELECT key, person FROM person_keys WHERE key LIKE 'vn:%'")}


async def _outcome(db: Path, message_id: str) -> str:
    """The state message ``message_id`` ends in: routed, needs_review or quarantined."""
    ended = ("routed", "needs_review", "quarantined")
    query = "SELECT state FROM messages WHERE message_id = ?"
    await until(lambda: [s for (s,) in states(db, query, (message_id,)) if s in ended])
    return str(states(db, query, (message_id,))[0][0])


def _journaled(db: Path, message_id: str) -> dict[str, object]:
    [(detail,)] = states(db, "SELECT j.detail FROM journal j JOIN messages m ON m.id = j.message"
                             " WHERE m.message_id = ? AND j.event = 'message.normalised'"
                             " ORDER BY j.seq DESC LIMIT 1", (message_id,))
    return dict(json.loads(detail))


def _person_of(db: Path, message_id: str) -> list[tuple[int]]:
    return states(db, "SELECT pm.person FROM person_messages pm JOIN messages m"
                      " ON m.id = pm.message WHERE m.message_id = ?", (message_id,))


@pytest.mark.parametrize(("version", "fixture"), [
    ("1.3", "valid-er13-several-reasons-notice.xml"),
    ("1.4", "valid-er13-several-reasons-notice.xml"),  # 1.4's eventReport is 1.3's
    ("1.5", "valid-er-single-reason.xml")])
async def test_an_answer_without_vn_is_about_the_person_of_the_message_it_answers(
        tmp_path: Path, version: str, fixture: str) -> None:
    """Two residents share names and date of birth: by them alone the canton's answer
    would wait for review with both; the message it answers says which, and its names
    and date of birth, as the canton writes them, agree."""
    config = _site(tmp_path, version)
    db = tmp_path / "gateway.db"
    async with running(config):
        persons = await _both_sent(tmp_path, db)
        drop(tmp_path / "from-canton", "a.xml",
             _answer(fixture, "kt-1", "ours-2", _ident("JOVANOVIC", "Milica")))
        assert await _outcome(db, "kt-1") == "routed"
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(1,)])
    assert states(db, "SELECT m.message_id, d.state FROM deliveries d JOIN messages m"
                      " ON m.id = d.message WHERE d.partner = 'canton' ORDER BY m.id") == [
        ("ours-1", "delivered"), ("ours-2", "rejected")]
    assert _person_of(db, "kt-1") == [(persons[SECOND_VN],)]
    assert _journaled(db, "kt-1")["matched"] == "the message it answers (names and date of birth)"
    [written] = (tmp_path / "registry-inbox").iterdir()
    assert b"kt-1" in written.read_bytes()


async def test_a_request_without_vn_finds_the_resident_whatever_the_diacritics(
        tmp_path: Path) -> None:
    """The field trial's case: the canton's request answers our message about Milica
    Jovanović, without VN, as ``Jovanovic`` born the same day."""
    config = _site(tmp_path, "1.5")
    db = tmp_path / "gateway.db"
    async with running(config):
        persons = await _both_sent(tmp_path, db)
        drop(tmp_path / "from-canton", "a.xml",
             _request("kt-2", "ours-1", _ident("Jovanovic", "MILICA")))
        assert await _outcome(db, "kt-2") == "routed"
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(1,)])
    assert _person_of(db, "kt-2") == [(persons[FIRST_VN],)]
    assert _journaled(db, "kt-2")["matched"] == "the message it answers (names and date of birth)"


@pytest.mark.parametrize(("why", "ident"), [
    ("another date of birth", _ident("Jovanovic", "Milica", born="1990-04-13")),
    ("no date of birth", _ident("Jovanovic", "Milica", born=None)),
    ("another first name", _ident("Jovanovic", "Mila")),
    ("another first name before hers", _ident("Jovanovic", "Ana Milica"))])
async def test_an_answer_that_disagrees_with_the_person_it_answers_waits_for_review(
        tmp_path: Path, why: str, ident: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Never a blind match: the person of the message it answers is taken only where the
    answer's names and date of birth are theirs; else the other ways, here to nobody. The
    operator's log says the message waits (the alert of the committed ``needs_review``)."""
    config = _site(tmp_path, "1.5")
    db = tmp_path / "gateway.db"
    with caplog.at_level(logging.INFO, logger="gateway.alerts"):
        async with running(config):
            await _both_sent(tmp_path, db)
            drop(tmp_path / "from-canton", "a.xml",
                 _answer("valid-er-single-reason.xml", "kt-3", "ours-1", ident))
            assert await _outcome(db, "kt-3") == "needs_review"
    assert _person_of(db, "kt-3") == []
    [(mid,)] = states(db, "SELECT id FROM messages WHERE message_id = 'kt-3'")
    alerts = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and r.getMessage().startswith(f"message {mid} ")]
    assert alerts == [f"message {mid} from canton waits for review (0 candidates): no resident"
                      f" matches the person of this message: assign one with `ech-gateway"
                      f" messages assign {mid} --person VN|LOCALID`"]
    assert "Jovanovi" not in caplog.text and FIRST_VN not in caplog.text
    [(candidates,)] = states(db, "SELECT r.candidates FROM reviews r JOIN messages m"
                                 " ON m.id = r.message WHERE m.message_id = 'kt-3'")
    assert json.loads(candidates) == [], why


@pytest.mark.parametrize(("registered", "written"), [
    ("Milica Ana", "MILICA"), ("Milica", "Milica Ana")])
async def test_an_answer_with_the_first_of_several_first_names_is_about_the_person_it_answers(
        tmp_path: Path, registered: str, written: str) -> None:
    """A cantonal system writes only the first of the resident's first names (or the
    register has only the first of the canton's): the leading first names agree."""
    config = _site(tmp_path, "1.5")
    db = tmp_path / "gateway.db"
    async with running(config):
        persons = await _both_sent(tmp_path, db, (registered, registered))
        drop(tmp_path / "from-canton", "a.xml",
             _answer("valid-er-single-reason.xml", "kt-5", "ours-2",
                     _ident("JOVANOVIC", written)))
        assert await _outcome(db, "kt-5") == "routed"
    assert _person_of(db, "kt-5") == [(persons[SECOND_VN],)]
    assert _journaled(db, "kt-5")["matched"] == "the message it answers (names and date of birth)"


async def test_the_first_of_two_residents_first_names_finds_both_and_waits_for_review(
        tmp_path: Path) -> None:
    """No reference, no VN, ``Milica`` for residents ``Milica Ana`` and ``Milica Jelena``
    born the same day: both are candidates, the operator picks one; never the first."""
    config = _site(tmp_path, "1.5")
    db = tmp_path / "gateway.db"
    async with running(config):
        await _both_sent(tmp_path, db, ("Milica Ana", "Milica Jelena"))
        drop(tmp_path / "from-canton", "a.xml",
             _about(message("kt-6"), _ident("Jovanovic", "Milica")))
        assert await _outcome(db, "kt-6") == "needs_review"
    assert _person_of(db, "kt-6") == []
    [(candidates,)] = states(db, "SELECT r.candidates FROM reviews r JOIN messages m"
                                 " ON m.id = r.message WHERE m.message_id = 'kt-6'")
    assert sorted(key for c in json.loads(candidates) for key in c["keys"]
                  if key.startswith("vn:")) == [f"vn:{FIRST_VN}", f"vn:{SECOND_VN}"]


async def test_names_and_date_of_birth_find_one_resident_as_the_canton_spells_them(
        tmp_path: Path) -> None:
    """No reference, no VN: the names as the canton writes them (no diacritics, capitals,
    a hyphen for a space) and the date of birth find the one resident with them."""
    config = _site(tmp_path, "1.5")
    db = tmp_path / "gateway.db"
    async with running(config):
        drop(tmp_path / "in", "1.xml", _about(message("ours-1"), _ident(
            "Müller Jovanović", "Zoë", vn=FIRST_VN)))
        await until(lambda: states(db, "SELECT state FROM deliveries") == [("delivered",)])
        drop(tmp_path / "from-canton", "a.xml", _about(message("kt-4"), _ident(
            "MUELLER-JOVANOVIC", "Zoe")))
        assert await _outcome(db, "kt-4") == "routed"
        await until(lambda: states(db, "SELECT count(*) FROM deliveries WHERE partner ="
                                       " 'registry' AND state = 'delivered'") == [(1,)])
    [(person,)] = states(db, "SELECT person FROM person_keys WHERE key = ?", (f"vn:{FIRST_VN}",))
    assert _person_of(db, "kt-4") == [(person,)]
    assert _journaled(db, "kt-4")["matched"] == "names and date of birth"
