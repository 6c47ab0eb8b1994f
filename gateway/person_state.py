"""The last known state of one person, kept by the gateway from what registries sent.

eCH-0020 events mostly carry little more than a person's identification
(DOMAIN.md §5.1); an eCH-0223 ``personData`` needs the whole picture, and
the rules need to know what the person was *before* the event (a foreign
national?). :class:`PersonState` is that picture, in the eCH-0223 model's
own parts, each optional: a state knows what it was told and no more.

States are keyed by VN (``vn:7561234567897``) and by local person id
(``local:<category>:<id>``); :func:`person_keys` gives both for an
identification, :func:`parse_key` reads what an operator types.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from gateway.ech0223 import (
    BirthAddonData,
    BirthData,
    DatePartiallyKnown,
    JobData,
    MaritalData,
    NameData,
    NationalityData,
    ParentalRelation,
    PersonData,
    PersonIdentificationLight,
    ReligionData,
    ResidencePermitData,
    SwissAddressInformation,
    SwissMunicipality,
)
from gateway.names import same_first_names, same_name
from gateway.permits import DatedPermit, combined, held_before, holds, permit_category, with_own
from gateway.vn import vn_shaped

#: The BFS country id of Switzerland (eCH-0008).
SWITZERLAND = 8100
#: A person's nationality as rules see it (:meth:`PersonState.nationality`).
Nationality = Literal["swiss", "foreign", "stateless", "unknown"]
#: Every :data:`Nationality`.
NATIONALITIES: tuple[str, ...] = get_args(Nationality)
#: The parts of a state that a newer state replaces when it has them, in eCH-0223 order.
PARTS = ("name_data", "birth_data", "birth_addon_data", "nationality_data", "marital_data",
         "residence_permit_data", "job_data", "residence_address", "municipality",
         "parental_relation", "religion_data")
#: XML whitespace (``str.strip()`` alone would also take e.g. a no-break space).
_XML_BLANKS = " \t\n\r"
#: The identification fields a newer state takes from an older one where it has none.
_FILLED = ("local_person_id", "other_person_id", "original_name", "sex", "date_of_birth")
#: The fields an eCH-0223 ``personData`` requires, in its order.
_REQUIRED = tuple(name for name, info in PersonData.model_fields.items() if info.is_required())


class PersonState(BaseModel):
    """What the gateway last knew of one person; every part but the identification optional.

    :param identification: VN, local and other ids, names, sex and date of birth.
    :param as_of: the date of the event that last changed the state, if known.
    :param permit_history: permits the person held before, each dated (:mod:`gateway.permits`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    identification: PersonIdentificationLight
    as_of: date | None = None
    name_data: NameData | None = None
    birth_data: BirthData | None = None
    birth_addon_data: BirthAddonData | None = None
    nationality_data: NationalityData | None = None
    marital_data: MaritalData | None = None
    residence_permit_data: ResidencePermitData | None = None
    job_data: JobData | None = None
    residence_address: SwissAddressInformation | None = None
    municipality: SwissMunicipality | None = None
    parental_relation: ParentalRelation | None = None
    religion_data: ReligionData | None = None
    permit_history: tuple[DatedPermit, ...] = ()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[str]]:
        """Pickle as JSON: a quarter of the cost of pydantic's nested state, and states
        cross to the worker processes with every batch (enrich → finish → record)."""
        return state_from_json, (self.model_dump_json(),)

    def keys(self) -> list[str]:
        """The keys this state is found by."""
        return person_keys(self.identification)

    def birth(self) -> str | None:
        """The date of birth as ISO text (a year or year-month where only that is known)."""
        return birth_text(self.identification.date_of_birth
                          or (self.birth_data.date_of_birth if self.birth_data else None))

    def same_names(self, ident: PersonIdentificationLight) -> bool:
        """Whether ``ident`` has this person's official name and first names, as names are
        compared (:func:`gateway.names.same_name`: case, marks, spaces and hyphens aside),
        the leading first names standing for all (:func:`gateway.names.same_first_names`).

        eCH-0044 identifies a person by ``officialName`` and ``firstName``: an
        ``originalName`` (a name the person had) or eCH-0011 ``callName`` (one they go
        by) does not stand for them here; a wrong person is worse than a review."""
        mine = self.identification
        names = [mine.official_name, *([self.name_data.official_name]
                                       if self.name_data is not None else [])]
        firsts = [mine.first_name, *([self.name_data.first_name]
                                     if self.name_data is not None else [])]
        return (any(same_name(ident.official_name, n) for n in names)
                and any(same_first_names(ident.first_name, n) for n in firsts))

    def merged(self, newer: PersonState) -> PersonState:
        """This state updated by ``newer``: its parts where it has them, ids from both
        (``newer`` itself when it holds all of this state already).

        ``newer`` is the later input, not always the later event: one dated before this
        state (a late delivery, a ``baseDelivery`` sent again) only fills in what this
        state does not know, and this state's names and date stay.
        """
        mine, theirs = vars(self), vars(newer)
        own, new = self.permits(), newer.permits()  # each once: a merge asks for both twice
        if newer.dated_before(self):
            return newer.updated(mine["identification"], mine["as_of"], {name: mine[name] for name in PARTS},
                                 own, permits=new)
        if self.kept_by(newer, (own, new)):
            return newer
        return self.updated(newer.identification, theirs["as_of"], {name: theirs[name] for name in PARTS},
                            new, permits=own)

    def dated_before(self, other: PersonState) -> bool:
        """Whether both are dated, this one before ``other`` (then it only fills ``other`` in)."""
        return self.as_of is not None and other.as_of is not None and self.as_of < other.as_of

    def updated(self, identification: PersonIdentificationLight, as_of: date | None,
                parts: Mapping[str, Any], history: tuple[DatedPermit, ...] = (),
                permits: tuple[DatedPermit, ...] | None = None) -> PersonState:
        """This state updated by what a newer one says: the state :meth:`merged` makes of
        ``PersonState(identification=identification, as_of=as_of, **parts)``, without
        making that state first (a part ``None`` or left out is not known); ``history``:
        the newer one's :meth:`permits`, kept beside this state's (``permits``, if the
        caller has them already).
        """
        mine = vars(self)  # fields by name: pydantic's __getattr__ makes each attribute costly
        ident, old = vars(identification), vars(mine["identification"])
        # what only the older identification has (an event mostly states the whole of it)
        added = {name: old[name] for name in _FILLED if not ident[name] and old[name] is not ident[name]}
        if ident["vn"] is None and old["vn"] is not None:
            added["vn"] = old["vn"]
        known = {name: mine[name] for name in PARTS}
        known.update((name, part) for name, part in parts.items() if part is not None)
        if added:
            identification = identification.model_copy(update=added)
        own = self.permits() if permits is None else permits
        return PersonState(identification=identification, as_of=as_of or mine["as_of"],
                           permit_history=combined(own, history) if history else own, **known)

    def permits(self) -> tuple[DatedPermit, ...]:
        """The permits the person held as far as known, in date order, this state's own among them."""
        return with_own(self.permit_history, self.as_of, self.residence_permit_data)

    def permit_before(self, day: date) -> DatedPermit | None:
        """The permit last known held before ``day``, with that date (``None``: none known)."""
        return held_before(self.permits(), day)

    def kept_by(self, newer: PersonState,
                permits: tuple[tuple[DatedPermit, ...], tuple[DatedPermit, ...]] | None = None
                ) -> bool:
        """Whether ``newer`` already holds all of this state: ``self.merged(newer)`` would be
        ``newer`` again (each value :meth:`merged` takes, the very one ``newer`` has).
        ``permits``: this state's and ``newer``'s :meth:`permits`, if the caller has them.

        An eCH-0020 draft's state is the state before the event merged with it: merging it
        once more is work for nothing.
        """
        mine, theirs = vars(self), vars(newer)
        if theirs["as_of"] is None and mine["as_of"] is not None:
            return False
        if any(theirs[name] is None and mine[name] is not None for name in PARTS):
            return False
        own, new = permits if permits is not None else (self.permits(), newer.permits())
        if not holds(new, own):
            return False
        ident, old = vars(theirs["identification"]), vars(mine["identification"])
        return ((ident["vn"] is not None or old["vn"] is None)
                and all(_kept(ident[name], old[name]) for name in _FILLED))

    def person_data(self, **extra: Any) -> PersonData | None:
        """The eCH-0223 ``personData`` of this state, or ``None`` while a required part is unknown.

        :param extra: further fields (``comes_from``, ``goes_to``).
        """
        parts = vars(self)
        if any(parts[name] is None for name in _REQUIRED):
            return None
        return PersonData(**{name: parts[name] for name in PARTS if parts[name] is not None}, **extra)

    def missing(self) -> list[str]:
        """The parts an eCH-0223 ``personData`` requires that this state lacks."""
        return [name for name in _REQUIRED if getattr(self, name, None) is None]

    def nationality(self) -> Nationality:
        """``swiss``, ``foreign``, ``stateless`` or ``unknown``, from the nationality data
        (eCH-0011 ``nationalityStatus``: 0 unknown, 1 stateless, 2 known)."""
        data = self.nationality_data
        if data is None or data.nationality_status != "2" or not data.country_info:
            return "stateless" if data is not None and data.nationality_status == "1" else "unknown"
        swiss = any(info.country.country_id == SWITZERLAND or info.country.country_id_iso2 == "CH"
                    for info in data.country_info)
        return "swiss" if swiss else "foreign"

    def permit(self) -> str | None:
        """The eCH-0006 residence permit code, if known."""
        data = self.residence_permit_data
        return data.residence_permit if data is not None else None

    def facts(self, on: date | None = None) -> dict[str, Any]:
        """The fields rules match on: nationality, permit, municipality, age, sex..."""
        permit = self.permit()
        birth = self.birth_data.date_of_birth if self.birth_data else self.identification.date_of_birth
        born = birth.year_month_day if birth is not None else None
        municipality = self.municipality
        return {
            "nationality": self.nationality(),
            "country": _country(self.nationality_data),
            "permit": permit,
            "permit_category": permit_category(permit),
            "permit_valid_till": (self.residence_permit_data.residence_permit_valid_till
                                  if self.residence_permit_data else None),
            "municipality": municipality.municipality_id if municipality else None,
            "municipality_name": municipality.municipality_name if municipality else None,
            "canton": municipality.canton_abbreviation if municipality else None,
            "marital_status": self.marital_data.marital_status if self.marital_data else None,
            "sex": self.identification.sex,
            "age": age(born, on) if born is not None and on is not None else None,
        }


def _kept(newer: Any, older: Any) -> bool:
    """Whether ``newer or older`` (what :meth:`PersonState.merged` takes) is ``newer``, or
    as empty as it."""
    taken = newer or older
    return taken is newer or (not taken and taken == newer)


def birth_text(born: DatePartiallyKnown | None) -> str | None:
    """A date of birth as ISO text: ``1990-05-01``, ``1990-05`` or ``1990``."""
    if born is None:
        return None
    if born.year_month_day is not None:
        return born.year_month_day.isoformat()
    text = born.year_month or born.year
    return text.strip() if text else None


def person_keys(ident: PersonIdentificationLight) -> list[str]:
    """``vn:<vn>`` and ``local:<category>:<id>`` for an identification (what it has of them).

    The local id's parts are ``xs:token``: blanks around them (a vendor's indented text)
    are no part of the id.
    """
    keys = [f"vn:{ident.vn}"] if ident.vn is not None else []
    if ident.local_person_id is not None:
        local = ident.local_person_id
        keys.append(f"local:{local.person_id_category.strip(_XML_BLANKS)}:"
                    f"{local.person_id.strip(_XML_BLANKS)}")
    return keys


def parse_key(text: str) -> list[str]:
    """The keys an operator means by ``text``: a VN (with or without dots) or a local id.

    ``756.1234.5678.97`` and ``7561234567897`` are VNs; ``CAT:ID`` or ``local:CAT:ID``
    is a local id of that category; any other text is a local id of any category
    (``local:*:<text>``, matched by the store).
    """
    digits = text.replace(".", "")
    if vn_shaped(digits):
        return [f"vn:{digits}"]
    if text.startswith(("vn:", "local:")):
        return [text]
    if ":" in text:
        return [f"local:{text}"]
    return [f"local:*:{text}"]


def _country(data: NationalityData | None) -> int | None:
    if data is None or not data.country_info:
        return None
    return data.country_info[0].country.country_id


def age(born: date, on: date) -> int:
    """Age in whole years on ``on`` of a person born on ``born``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@functools.lru_cache(maxsize=2048)
def state_from_json(text: str) -> PersonState:
    """The state stored (or pickled) as ``text``, parsed once for as long as it is reused.

    A state's JSON is read several times on its way through one batch: loaded for
    *enrich*, pickled to the worker and back, read again where *record* merges the
    update. States are frozen, so the parsed one is shared.
    """
    return PersonState.model_validate_json(text)


class StoredPerson:
    """A person's state as the store holds it: its row and JSON text, parsed on first use.

    States cross to the worker processes with every batch and back as changes
    (:class:`PersonChange`); the text crosses as it is, and only the process that
    reads the state parses it.

    :param pid: the ``persons`` row, ``None`` for a state not stored yet (a look-up's answer).
    :param text: the state's JSON, exactly as stored.
    """

    __slots__ = ("_state", "pid", "text")

    def __init__(self, pid: int | None, text: str, state: PersonState | None = None) -> None:
        self.pid = pid
        self.text = text
        self._state = state

    @classmethod
    def of(cls, state: PersonState) -> StoredPerson:
        """A state that is not stored yet (``pid`` ``None``)."""
        return cls(None, state.model_dump_json(), state)

    @property
    def state(self) -> PersonState:
        """The parsed state."""
        if self._state is None:
            self._state = state_from_json(self.text)
        return self._state

    def __reduce__(self) -> tuple[type[StoredPerson], tuple[int | None, str]]:
        return StoredPerson, (self.pid, self.text)


@dataclass(frozen=True, slots=True)
class PersonChange:
    """What one input says of a person, made ready to record where it was worked out.

    :param update: the input's own update, as JSON: merged into the stored state
        when that is no longer ``base`` (another writer changed the person meanwhile).
    :param merged: ``base`` merged with ``update``, as JSON: what is stored while the
        stored state still is ``base``.
    :param base: the stored state's JSON that ``merged`` was made from (``None``: the
        person was not known when the batch started).
    :param keys: the keys of ``merged``.
    :param added: those of ``keys`` that ``base`` lacks (to be given to the person).
    :param birth: the date of birth of ``merged`` as ISO text, where ``base`` lacks it or
        has another (to be indexed).
    :param older: ``update`` is dated before ``base``: its word on the register is old news.
    """

    update: str
    merged: str
    base: str | None
    keys: tuple[str, ...]
    added: tuple[str, ...]
    birth: str | None
    older: bool = False

    def __reduce__(self) -> tuple[type[PersonChange], tuple[Any, ...]]:
        """Pickle as a constructor call: a change crosses from the worker with every result,
        and the dataclass default goes through ``fields()`` for each."""
        return PersonChange, (self.update, self.merged, self.base, self.keys, self.added,
                              self.birth, self.older)

    @classmethod
    def of(cls, update: PersonState, base: StoredPerson | None = None,
           merged: PersonState | None = None) -> PersonChange:
        """The change ``update`` makes to ``base`` (``merged``: that merge, if made already)."""
        text = update.model_dump_json()
        if merged is None:
            merged = base.state.merged(update) if base is not None else update
        keys = tuple(merged.keys())
        had = set(base.state.keys()) if base is not None else set()
        birth = merged.birth()
        return cls(text, text if merged is update else merged.model_dump_json(),
                   base.text if base is not None else None, keys, tuple(k for k in keys if k not in had),
                   birth if base is None or birth != base.state.birth() else None,
                   base is not None and update.dated_before(base.state))
