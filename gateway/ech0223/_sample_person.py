"""The person part of the sample messages: identification and ``personData``."""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta
from typing import NamedTuple

from ._sample_data import NAMES, RELIGIONS, SWITZERLAND, Municipality, Nation
from ._sample_places import address, comes_from, country, goes_to, job, municipality
from .codes import MaritalStatus, ResidencePermit, Sex
from .message import ParentalRelation, PersonData
from .person import (
    BirthAddonData,
    BirthData,
    CountryInfo,
    DatePartiallyKnown,
    ForeignCountry,
    ForeignerName,
    GeneralPlace,
    MaritalData,
    NameData,
    NamedPersonId,
    NameOfParent,
    NationalityData,
    PersonIdentificationLight,
    ReligionData,
    ResidencePermitData,
    SeparationData,
)

_PERMITS: dict[str, tuple[ResidencePermit, ...]] = {
    "B": ("0201", "0202"),
    "C": ("0301", "0302"),
    "L": ("0701", "0702"),
    "F": ("0503", "0503"),
}
_PERMIT_BY_EVENT = {"prolongationB": "B", "prolongationC": "C", "conversionBtoC": "C", "prolongationL": "L"}
_MARITAL_BY_EVENT: dict[str, MaritalStatus] = {
    "marriage": "2",
    "divorce": "4",
    "partnership": "6",
    "undoPartnership": "7",
    "undoMarriage": "5",
    "maritalStatusPartner": "3",
    "separation": "2",
    "undoSeperation": "2",
}


class SamplePerson(NamedTuple):
    """The facts about one sample person that several elements repeat."""

    first_name: str
    official_name: str
    sex: Sex
    born: date
    vn: int
    nation: Nation


def make_person(rng: random.Random, nation: Nation, day: date, newborn: bool) -> SamplePerson:
    """A person of ``nation``: born on ``day`` if ``newborn``, else an adult on ``day``."""
    males, females, families = NAMES[nation.names]
    sex: Sex = rng.choice(("1", "2"))
    age = 0 if newborn else rng.randrange(18 * 365, 70 * 365)
    first = rng.choice(males if sex == "1" else females)
    born = day - timedelta(days=age)
    return SamplePerson(first, rng.choice(families), sex, born, vn(rng), nation)


def vn(rng: random.Random) -> int:
    """A 13-digit AHV number 756... with a correct EAN-13 check digit."""
    digits = f"756{rng.randrange(10**9):09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return int(digits + str(-total % 10))


def identification(
    rng: random.Random, person: SamplePerson, place: Municipality
) -> PersonIdentificationLight:
    """eCH-0044 identification with the commune's local ID and sometimes the ZEMIS number."""
    local_id = str(rng.randrange(10**5, 10**8))
    zemis_id = f"{rng.randrange(10**7, 10**8)}.{rng.randrange(10)}"
    local = NamedPersonId(person_id_category=f"MU.{place.bfs}", person_id=local_id)
    zemis = NamedPersonId(person_id_category="CH.ZEMIS", person_id=zemis_id)
    return PersonIdentificationLight(
        vn=person.vn if rng.random() < 0.9 else None,
        local_person_id=local,
        other_person_id=[zemis] if rng.random() < 0.5 else [],
        official_name=person.official_name,
        first_name=person.first_name,
        sex=person.sex,
        date_of_birth=_birth_date(rng, person),
    )


def person_data(
    rng: random.Random, person: SamplePerson, event: str, day: date, place: Municipality
) -> PersonData:
    """``personData`` consistent with ``event`` (marital status, permit, move, birth)."""
    nation, newborn = person.nation, event == "birth"
    passport = ForeignerName(
        name=_ascii(person.official_name).upper(), first_name=_ascii(person.first_name).upper()
    )
    abroad = ForeignCountry(country=country(nation), town=rng.choice(nation.towns))
    born_in = (
        GeneralPlace(swiss_town=municipality(place)) if newborn else GeneralPlace(foreign_country=abroad)
    )
    return PersonData(
        name_data=NameData(
            official_name=person.official_name,
            first_name=person.first_name,
            call_name=person.first_name[:3] if rng.random() < 0.1 else None,
            name_on_foreign_passport=passport if rng.random() < 0.3 else None,
        ),
        birth_data=BirthData(date_of_birth=_birth_date(rng, person), place_of_birth=born_in, sex=person.sex),
        birth_addon_data=_parents_names(rng, person) if newborn or rng.random() < 0.2 else None,
        nationality_data=_nationality(nation, event, day),
        marital_data=_marital(rng, event, day, newborn),
        residence_permit_data=_permit(rng, nation, event, day),
        job_data=None if newborn or rng.random() < 0.4 else job(rng, day),
        residence_address=address(rng, place),
        municipality=municipality(place),
        parental_relation=_parents(rng, person) if newborn else None,
        religion_data=ReligionData(religion=rng.choice(RELIGIONS)),
        comes_from=comes_from(rng, nation, day) if event == "moveIn" else None,
        goes_to=goes_to(rng, nation, day) if event == "moveOut" else None,
    )


def _birth_date(rng: random.Random, person: SamplePerson) -> DatePartiallyKnown:
    if person.nation.iso2 in ("AF", "ER") and rng.random() < 0.3:
        return DatePartiallyKnown(year=str(person.born.year))
    if rng.random() < 0.05:
        return DatePartiallyKnown(year_month=person.born.strftime("%Y-%m"))
    return DatePartiallyKnown(year_month_day=person.born)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _nationality(nation: Nation, event: str, day: date) -> NationalityData:
    if event == "naturalizeForeigner":  # Swiss now, keeping the former nationality
        infos = [
            CountryInfo(country=country(SWITZERLAND), nationality_valid_from=day),
            CountryInfo(country=country(nation)),
        ]
    else:
        since = day if event == "changeNationality" else None
        infos = [CountryInfo(country=country(nation), nationality_valid_from=since)]
    return NationalityData(nationality_status="2", country_info=infos)


def _marital(rng: random.Random, event: str, day: date, newborn: bool) -> MaritalData:
    status: MaritalStatus
    since: date | None
    if event in _MARITAL_BY_EVENT:
        status, since = _MARITAL_BY_EVENT[event], day
    else:
        status = "1" if newborn else rng.choice(("1", "1", "2", "2", "2", "4", "9"))
        since = None if status in ("1", "9") else day - timedelta(days=rng.randrange(20 * 365))
    separated = event in ("separation", "undoSeperation")
    return MaritalData(
        marital_status=status,
        date_of_marital_status=since,
        cancelation_reason=rng.choice(("1", "2", "3", "4", "9")) if status == "7" else None,
        official_proof_of_marital_status_yes_no=True if event == "marriage" else None,
        separation_data=SeparationData(
            separation="1",
            separation_valid_from=day - timedelta(days=400) if event != "separation" else day,
            separation_valid_till=day if event == "undoSeperation" else None,
        )
        if separated
        else None,
    )


def _permit(rng: random.Random, nation: Nation, event: str, day: date) -> ResidencePermitData:
    entry = day - timedelta(days=rng.randrange(30, 15 * 365))
    if event == "naturalizeForeigner":  # no permit any more: xsi:nil
        return ResidencePermitData(residence_permit=None, entry_date=entry)
    kind = _PERMIT_BY_EVENT.get(event) or rng.choice("BBBCCL" if nation.eu_efta else "BBCCLFF")
    start = day if event in _PERMIT_BY_EVENT else max(entry, day - timedelta(days=700))
    years = {"B": 5 if nation.eu_efta else 1, "C": 5, "L": 1, "F": 1}[kind]
    return ResidencePermitData(
        residence_permit=_PERMITS[kind][0 if nation.eu_efta else 1],
        residence_permit_valid_from=start,
        residence_permit_valid_till=_years_later(start, years) - timedelta(days=1),
        entry_date=entry,
    )


def _years_later(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 1 March in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _parents(rng: random.Random, child: SamplePerson) -> ParentalRelation:
    def parent(sex: Sex) -> PersonIdentificationLight:
        adult = make_person(rng, child.nation, child.born, False)
        return PersonIdentificationLight(
            vn=adult.vn,
            official_name=child.official_name,
            first_name=adult.first_name,
            sex=sex,
            date_of_birth=DatePartiallyKnown(year_month_day=adult.born),
        )

    return ParentalRelation(father=parent("1"), mother=parent("2"))


def _parents_names(rng: random.Random, person: SamplePerson) -> BirthAddonData:
    males, females, _ = NAMES[person.nation.names]
    father, mother = rng.choice(males), rng.choice(females)
    return BirthAddonData(
        name_of_father=NameOfParent(
            first_name=father,
            official_name=person.official_name,
            official_proof_of_name_of_parents_yes_no=True,
        ),
        name_of_mother=NameOfParent(first_name_only=mother)
        if rng.random() < 0.3
        else NameOfParent(first_name=mother, official_name=person.official_name),
    )
