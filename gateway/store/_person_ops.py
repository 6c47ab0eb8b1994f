"""Person state in the store: the last known state of each person, and the messages about them.

A person is one ``persons`` row found by any of its keys (``person_keys``:
``vn:<13 digits>``, ``local:<category>:<id>``). An update (what one input
says of a person) is merged into the stored state inside the transaction
that records the input, so two writers never lose each other's update: the
state read is the state written over. A worker works the merge out ahead
(:class:`~gateway.person_state.PersonChange`) from the state enrichment read;
it is stored only if that still is the stored state (compare and set), else
the update is merged into the state stored now.

A registry's event about a person also says whether they are still in its
register (:func:`residence`): a departure marks them ``departed_at``, which
retention needs (:mod:`gateway.store._retention_ops`). An event dated before the
person's state (a moveOut arriving after a later moveIn) says nothing of where they
are now: it leaves the mark as it is, as it only fills in the state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from gateway.person_state import PersonChange, PersonState, StoredPerson, state_from_json
from gateway.store._sql import expect_changed, select_in
from gateway.store.journal import Entry

#: eCH-0223 personEvents after which the person is no longer in the registry's register.
DEPARTURES = frozenset({"moveOut", "death", "deletedinRegister"})


def residence(person_event: str | None) -> bool | None:
    """What a registry's message with ``person_event`` says of its person's place in the
    register: ``True`` they left it, ``None`` nothing new (a correction), ``False`` they are
    in it (any other event, or a base delivery, which has none)."""
    if person_event in DEPARTURES:
        return True
    if person_event is not None and person_event.startswith("correct"):
        return None
    return False


def stored_persons(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, StoredPerson]:
    """The stored states found by ``keys``, under each key asked for that found one (unparsed)."""
    rows = list(select_in(conn, "SELECT k.key, k.person, p.state FROM person_keys k"
                                " JOIN persons p ON p.id = k.person WHERE k.key IN ({})", keys))
    stored: dict[int, StoredPerson] = {}
    out: dict[str, StoredPerson] = {}
    for key, pid, state in rows:
        if pid not in stored:
            stored[pid] = StoredPerson(pid, state)
        out[key] = stored[pid]
    return out


def load_persons(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, PersonState]:
    """The states found by ``keys``, under each key asked for that found one."""
    return {key: person.state for key, person in stored_persons(conn, keys).items()}


def record_persons(conn: sqlite3.Connection, message: int,
                   updates: Sequence[PersonState | PersonChange], now: float,
                   links: set[tuple[int, int]], departed: bool | None = None) -> list[Entry]:
    """Merge ``updates`` into the stored states; add (person, ``message``) to ``links`` for
    :func:`link_subjects` to store.

    A :class:`PersonChange` worked out in a worker is stored as it is while the
    person's state is still the one it was worked out from; otherwise, and for a
    plain state, the update is merged into the state stored now.

    :param departed: the persons left the register now (``True``), are in it (``False``),
        or the message says nothing of it (``None``): :func:`residence`.
    """
    entries: list[Entry] = []
    mark = (None if departed is None else int(departed), now)
    for update in updates:
        change = update if isinstance(update, PersonChange) else PersonChange.of(update)
        pid, created = _merge(conn, change, message, now, mark)
        links.add((pid, message))
        entries.append(Entry("person.created" if created else "person.updated", message, None,
                             {"person": pid}))
    return entries


def link_subjects(conn: sqlite3.Connection, subjects: Sequence[tuple[int, Sequence[str]]],
                  links: set[tuple[int, int]]) -> None:
    """Link each message to the persons its subject keys name, and store ``links`` (person,
    message) too, for a whole batch at once.

    A message is linked even when it states nothing new about its person
    (an eCH-0223 message about a known person). Called after the batch's
    updates are merged, so a person an input of the batch created is found.
    """
    keys = {key for _message, subject in subjects for key in subject}
    if keys:
        owner = dict(select_in(conn, "SELECT key, person FROM person_keys WHERE key IN ({})",
                               keys))
        links |= {(owner[key], message) for message, subject in subjects
                  for key in subject if key in owner}
    if links:
        conn.executemany("INSERT OR IGNORE INTO person_messages (person, message) VALUES (?, ?)",
                         sorted(links))


#: ``departed_at`` after a message: set (1, with the time), cleared (0), or kept (NULL).
_DEPARTED = "departed_at = CASE ? WHEN 1 THEN ? WHEN 0 THEN NULL ELSE departed_at END"
#: (1, 0 or None; the time): what :data:`_DEPARTED` is given.
Mark = tuple[int | None, float]


def _merge(conn: sqlite3.Connection, change: PersonChange, message: int,
           now: float, mark: Mark) -> tuple[int, bool]:
    """Store one change of the person it names (creating them); (person id, created)."""
    found = _persons(conn, change.keys)
    if not found and change.base is None:
        return _create(conn, change.merged, change.keys, change.birth, message, now, mark), True
    if found and change.base is not None:
        pid = min(found)  # several: the VN and a local id named different persons; the oldest wins
        kept = (None, now) if change.older else mark
        if conn.execute(f"UPDATE persons SET state = ?, updated_at = ?, updated_by = ?, {_DEPARTED}"
                        " WHERE id = ? AND state = ?",
                        (change.merged, now, message, *kept, pid, change.base)).rowcount == 1:
            if change.added:
                _add_keys(conn, pid, change.added)
            _add_birth(conn, pid, change.birth)
            return pid, False
    # the person changed since the change was worked out: merge the update into what is stored
    return _merge_now(conn, state_from_json(change.update), message, now, mark)


def _merge_now(conn: sqlite3.Connection, update: PersonState, message: int,
               now: float, mark: Mark) -> tuple[int, bool]:
    """Merge ``update`` into the state stored now (creating the person); (person id, created)."""
    found = _persons(conn, update.keys())
    if not found:
        return _create(conn, _json(update), update.keys(), update.birth(), message, now,
                       mark), True
    pid = min(found)  # several: the VN and a local id named different persons; the oldest wins
    (old,) = conn.execute("SELECT state FROM persons WHERE id = ?", (pid,)).fetchone()
    stored = state_from_json(old)
    new = stored.merged(update)
    kept = (None, now) if update.dated_before(stored) else mark
    expect_changed(conn.execute(
        f"UPDATE persons SET state = ?, updated_at = ?, updated_by = ?, {_DEPARTED}"
        " WHERE id = ? AND state = ?",
        (_json(new), now, message, *kept, pid, old)), 1, f"person {pid} (in the state read)")
    _add_keys(conn, pid, new.keys())
    _add_birth(conn, pid, new.birth())
    return pid, False


def _persons(conn: sqlite3.Connection, keys: Iterable[str]) -> list[int]:
    """The persons holding any of ``keys``."""
    return [pid for (pid,) in select_in(
        conn, "SELECT DISTINCT person FROM person_keys WHERE key IN ({})", keys)]


def _create(conn: sqlite3.Connection, state: str, keys: Iterable[str], birth: str | None,
            message: int, now: float, mark: Mark) -> int:
    """A new person with ``state`` (JSON), found by ``keys``; its id."""
    (pid,) = conn.execute(
        "INSERT INTO persons (state, updated_at, updated_by, departed_at) VALUES (?, ?, ?, ?)"
        " RETURNING id", (state, now, message, now if mark[0] == 1 else None)).fetchone()
    _add_keys(conn, pid, keys)
    _add_birth(conn, pid, birth)
    return int(pid)


def _add_keys(conn: sqlite3.Connection, pid: int, keys: Iterable[str]) -> None:
    """Keys not taken yet point at ``pid``; a key another person holds stays theirs."""
    conn.executemany("INSERT INTO person_keys (key, person) VALUES (?, ?)"
                     " ON CONFLICT (key) DO NOTHING", [(k, pid) for k in keys])


def _add_birth(conn: sqlite3.Connection, pid: int, birth: str | None) -> None:
    """Index the person's date of birth (ISO text), for matching by names and date of birth."""
    if birth is not None:
        conn.execute("INSERT OR IGNORE INTO person_births (birth, person) VALUES (?, ?)",
                     (birth, pid))


def persons_born(conn: sqlite3.Connection, birth: str) -> list[tuple[int, PersonState]]:
    """The persons born on ``birth`` (an ISO date, year-month or year), with their states."""
    return [(pid, PersonState.model_validate_json(state)) for pid, state in conn.execute(
        "SELECT p.id, p.state FROM person_births b JOIN persons p ON p.id = b.person"
        " WHERE b.birth = ? ORDER BY p.id", (birth,))]


def _json(state: PersonState) -> str:
    return state.model_dump_json()
