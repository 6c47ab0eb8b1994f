"""Places, moves and jobs of the sample messages."""

from __future__ import annotations

import random
from datetime import date, timedelta

from ._sample_data import EMPLOYERS, JOBS, MUNICIPALITIES, STREETS, SWITZERLAND, Municipality, Nation
from .message import ComesFrom, GoesTo
from .person import JobData, OccupationData, UidStructure
from .place import AddressInformation, Country, SwissAddressInformation, SwissMunicipality


def country(nation: Nation) -> Country:
    """eCH-0008 country of a nation."""
    return Country(country_id=nation.bfs, country_id_iso2=nation.iso2, country_name_short=nation.name)


def municipality(place: Municipality) -> SwissMunicipality:
    """eCH-0007 municipality with BFS number and canton."""
    return SwissMunicipality(
        municipality_id=place.bfs, municipality_name=place.name, canton_abbreviation=place.canton
    )


def _uid(rng: random.Random) -> int:
    """A company UID number (CHE-...) with a correct modulo-11 check digit."""
    while True:
        digits = str(rng.randrange(10**7, 10**8))
        check = -sum(int(d) * w for d, w in zip(digits, (5, 4, 3, 2, 7, 6, 5, 4), strict=True)) % 11
        if check != 10:
            return int(digits + str(check))


def job(rng: random.Random, day: date) -> JobData:
    """Job data with an employer, now and then its UID and a workplace address."""
    work = rng.choice(MUNICIPALITIES)
    occupation = OccupationData(
        uid=UidStructure(uid_organisation_id_categorie="CHE", uid_organisation_id=_uid(rng))
        if rng.random() < 0.5
        else None,
        employer=rng.choice(EMPLOYERS),
        place_of_work=AddressInformation(
            street=rng.choice(STREETS[work.language]),
            house_number=str(rng.randint(1, 80)),
            town=work.name.split(" (")[0],
            swiss_zip_code=work.zip_code,
            country="CH",
        )
        if rng.random() < 0.5
        else None,
        occupation_valid_from=day - timedelta(days=rng.randrange(3000)),
    )
    return JobData(kind_of_employment="1", job_title=rng.choice(JOBS), occupation_data=[occupation])


def address(rng: random.Random, place: Municipality) -> SwissAddressInformation:
    """A residence address in ``place``."""
    house = f"{rng.randint(1, 150)}{rng.choice(('', '', '', 'a', 'b'))}"
    return SwissAddressInformation(
        address_line1="c/o Familie Meier" if rng.random() < 0.05 else None,
        street=rng.choice(STREETS[place.language]),
        house_number=house,
        dwelling_number=str(rng.randint(1, 30)) if rng.random() < 0.2 else None,
        town=place.name.split(" (")[0],
        swiss_zip_code=place.zip_code,
        country="CH",
    )


def comes_from(rng: random.Random, nation: Nation, day: date) -> ComesFrom:
    """Where a person moving in comes from: abroad, or another Swiss municipality."""
    reported = day + timedelta(days=rng.randrange(1, 14)) if rng.random() < 0.6 else None
    if rng.random() < 0.6:
        return ComesFrom(
            municipality_name=rng.choice(nation.towns),
            arrival_date=day,
            reporting_date=reported,
            country_name_short=nation.name,
        )
    origin = rng.choice(MUNICIPALITIES)
    return ComesFrom(
        municipality_name=origin.name,
        arrival_date=day,
        reporting_date=reported,
        country_name_short=SWITZERLAND.name,
        canton_abbreviation=origin.canton,
    )


def goes_to(rng: random.Random, nation: Nation, day: date) -> GoesTo:
    """Where a person moving out goes: abroad, or another Swiss municipality."""
    if rng.random() < 0.5:
        return GoesTo(
            municipality_name=rng.choice(nation.towns), departure_date=day, country_name_short=nation.name
        )
    target = rng.choice(MUNICIPALITIES)
    return GoesTo(
        municipality_name=target.name,
        departure_date=day,
        country_name_short=SWITZERLAND.name,
        canton_abbreviation=target.canton,
    )
