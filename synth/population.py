"""People living in households, with the facts every partner agency records about them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from policy.identifiers import is_valid_nhs_number
from synth.config import SynthConfig
from synth.names import Pool, polish_feminine, pools
from synth.places import Address, AddressBook

# Household sizes in England (ONS, Census 2021, rounded): one to five or more people.
HOUSEHOLD_SIZES = ((1, 0.30), (2, 0.34), (3, 0.16), (4, 0.13), (5, 0.05), (6, 0.02))


@dataclass(slots=True)
class Person:
    person_id: int
    household_id: int
    origin: str
    given_names: tuple[str, ...]
    family_name: str
    # The family name at birth; differs from family_name after a change on marriage.
    birth_family_name: str
    date_of_birth: dt.date
    gender: str
    address: Address
    previous_address: Address
    nhs_number: str
    # Hard cases for matching: a twin's person id, or the parent whose names a child shares.
    twin_of: int = 0
    namesake_of: int = 0

    def age_on(self, day: dt.date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(slots=True)
class Household:
    household_id: int
    address: Address
    members: list[Person] = field(default_factory=list)


@dataclass
class Population:
    config: SynthConfig
    reference_date: dt.date
    households: list[Household]

    def people(self) -> Iterator[Person]:
        for household in self.households:
            yield from household.members

    def __len__(self) -> int:
        return sum(len(h.members) for h in self.households)


class _NhsNumbers:
    """Unique NHS numbers from the 9xx block, which is not issued to patients (999 is the test range)."""

    def __init__(self, rng: random.Random, count: int) -> None:
        stems = rng.sample(range(900_000_000, 1_000_000_000), int(count * 1.15) + 100)
        self._numbers = (n for n in (_complete(s) for s in stems) if n)

    def next(self) -> str:
        return next(self._numbers)


def _complete(stem: int) -> str:
    digits = str(stem)
    total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    number = digits + str(check)
    return number if check != 10 and is_valid_nhs_number(number) else ""


class _Builder:
    def __init__(self, config: SynthConfig, reference_date: dt.date) -> None:
        self.config = config
        self.today = reference_date
        self.rng = random.Random(config.seed)
        self.pools = pools()
        mix = config.origins.model_dump()
        self.origins = list(mix)
        self.origin_weights = list(mix.values())
        # Upper bound on households so streets and NHS numbers are prepared once.
        self.addresses = AddressBook(self.rng, config.people)
        self.nhs = _NhsNumbers(self.rng, config.people)
        self.next_person = 1

    def _origin(self) -> str:
        return self.rng.choices(self.origins, self.origin_weights)[0]

    def _birth(self, youngest: int, oldest: int) -> dt.date:
        days = self.rng.randint(youngest * 365 + 1, oldest * 365 + 364)
        return self.today - dt.timedelta(days=days)

    def _gender(self) -> str:
        return "other" if self.rng.random() < 0.002 else self.rng.choice(("female", "male"))

    def _given(self, pool: Pool, gender: str) -> tuple[str, ...]:
        sex = gender if gender != "other" else self.rng.choice(("female", "male"))
        first = pool.given(self.rng, sex)
        if self.rng.random() < 0.3:
            middle = pool.given(self.rng, sex)
            if middle != first:
                return (first, middle)
        return (first,)

    def _surname(self, pool: Pool, gender: str) -> str:
        name = pool.surname(self.rng)
        if pool.origin == "english" and self.rng.random() < 0.03:
            other = pool.surname(self.rng)
            if other != name:
                name = f"{name}-{other}"
        return polish_feminine(name) if pool.origin == "polish" and gender == "female" else name

    def person(
        self,
        household: Household,
        origin: str,
        gender: str,
        born: dt.date,
        given: tuple[str, ...],
        family: str,
        birth_family: str,
    ) -> Person:
        person = Person(
            person_id=self.next_person,
            household_id=household.household_id,
            origin=origin,
            given_names=given,
            family_name=family,
            birth_family_name=birth_family,
            date_of_birth=born,
            gender=gender,
            address=household.address,
            previous_address=self.addresses.new(),
            nhs_number=self.nhs.next(),
        )
        self.next_person += 1
        household.members.append(person)
        return person

    def _adults(self, size: int) -> int:
        if size == 1:
            return 1
        if size == 2:
            return 1 if self.rng.random() < 0.15 else 2
        return self.rng.choices((1, 2, 3), (0.1, 0.65, 0.25))[0]

    def household(self, household_id: int, size: int) -> Household:
        rng = self.rng
        household = Household(household_id, self.addresses.new())
        origin = self._origin()
        pool = self.pools[origin]
        adults = self._adults(size)
        children = size - adults
        lead_gender = self._gender()
        if children or adults == 3:
            lead_born = self._birth(22 + min(children, 4) * 2, 55)
        else:
            lead_born = self._birth(18, 64) if rng.random() < 0.55 else self._birth(65, 95)
        family = self._surname(pool, lead_gender)
        lead = self.person(
            household, origin, lead_gender, lead_born, self._given(pool, lead_gender), family, family
        )
        youngest_parent = lead_born
        if adults >= 2:
            p_origin = origin if rng.random() < 0.85 else self._origin()
            p_pool = self.pools[p_origin]
            p_gender = "female" if lead_gender == "male" else ("male" if rng.random() < 0.95 else "female")
            # Within about seven years of the lead, an adult, and no older than 100.
            offset = dt.timedelta(days=rng.randint(-2500, 2500))
            p_born = min(self.today - dt.timedelta(days=19 * 365), lead_born + offset)
            p_born = max(self.today - dt.timedelta(days=100 * 365), p_born)
            birth = self._surname(p_pool, p_gender)
            married = rng.random() < 0.6 and p_gender == "female"
            p_family = (polish_feminine(family) if p_origin == "polish" else family) if married else birth
            self.person(household, p_origin, p_gender, p_born, self._given(p_pool, p_gender), p_family, birth)
            youngest_parent = max(lead_born, p_born)
        parent_age = (self.today - youngest_parent).days // 365
        if adults == 3:  # a grown-up son or daughter still at home
            gender = self._gender()
            born = self._birth(18, max(18, min(30, parent_age - 18)))
            surname = polish_feminine(family) if origin == "polish" and gender == "female" else family
            self.person(household, origin, gender, born, self._given(pool, gender), surname, surname)
        for i in range(children):
            gender = self._gender()
            born = self._birth(0, max(0, min(17, parent_age - 18)))
            surname = polish_feminine(family) if origin == "polish" and gender == "female" else family
            child = self.person(household, origin, gender, born, self._given(pool, gender), surname, surname)
            previous = household.members[-2] if i else None
            if previous is not None and rng.random() < 0.03:
                child.date_of_birth = previous.date_of_birth  # twins
                child.twin_of = previous.person_id
            elif gender == lead_gender == "male" and rng.random() < 0.02:
                child.given_names = lead.given_names  # a son named after his father
                child.namesake_of = lead.person_id
        return household


def generate_population(config: SynthConfig, reference_date: dt.date | None = None) -> Population:
    """Generates config.people people in households (the last household may be cut short).

    Deterministic for a given config (including the seed) and reference date.
    """
    today = reference_date or dt.date.today()
    builder = _Builder(config, today)
    sizes, weights = zip(*HOUSEHOLD_SIZES, strict=True)
    households: list[Household] = []
    remaining = config.people
    while remaining > 0:
        size = min(remaining, builder.rng.choices(sizes, weights)[0])
        households.append(builder.household(len(households) + 1, size))
        remaining -= size
    return Population(config, today, households)
