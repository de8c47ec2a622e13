"""Who is known to which agency, and what activity each agency holds about them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.core.records import SeedEvent
from synth.config import CoverageRates
from synth.population import Household, Person, Population

# Activity categories (from each agency's vocabulary) with relative frequencies, for children and adults.
CATEGORIES: dict[tuple[str, bool], tuple[tuple[str, float], ...]] = {
    ("police", True): (
        ("missing-person", 0.3),
        ("child-exploitation", 0.15),
        ("concern-for-welfare", 0.25),
        ("anti-social-behaviour", 0.15),
        ("violence", 0.1),
        ("sexual-offence", 0.05),
    ),
    ("police", False): (
        ("domestic-abuse", 0.3),
        ("violence", 0.2),
        ("anti-social-behaviour", 0.15),
        ("drugs", 0.15),
        ("concern-for-welfare", 0.15),
        ("sexual-offence", 0.05),
    ),
    ("nhs", True): (
        ("emergency-department-attendance", 0.7),
        ("safeguarding-concern", 0.2),
        ("mental-health-crisis", 0.1),
    ),
    ("nhs", False): (
        ("emergency-department-attendance", 0.6),
        ("mental-health-crisis", 0.15),
        ("safeguarding-concern", 0.1),
        ("maternity", 0.1),
        ("sexual-health", 0.05),
    ),
    ("socialcare", True): (
        ("referral", 0.35),
        ("assessment", 0.3),
        ("child-in-need-plan", 0.2),
        ("child-protection-plan", 0.1),
        ("looked-after-child", 0.05),
    ),
    ("socialcare", False): (("referral", 0.3), ("assessment", 0.35), ("s42-enquiry", 0.35)),
    ("fire", False): (
        ("home-fire-safety-visit", 0.45),
        ("accidental-dwelling-fire", 0.2),
        ("deliberate-fire", 0.1),
        ("hoarding", 0.1),
        ("malicious-false-alarm", 0.15),
    ),
}
# Categories an agency always treats as restricted.
SENSITIVE = frozenset({"sexual-health"})


@dataclass
class Coverage:
    """Which agencies know each person, and their activity."""

    csc_families: set[int] = field(default_factory=set)
    fire_households: set[int] = field(default_factory=set)
    complex_needs: set[int] = field(default_factory=set)
    # person id -> agency -> activity
    activity: dict[int, dict[str, tuple[SeedEvent, ...]]] = field(default_factory=dict)

    def agencies_of(self, person_id: int) -> set[str]:
        return set(self.activity.get(person_id, {}))


class _Activity:
    def __init__(self, rng: random.Random, today: dt.date, history_days: int, restricted_rate: float) -> None:
        self.rng, self.today, self.history, self.restricted_rate = rng, today, history_days, restricted_rate

    def events(
        self, agency: str, child: bool, born: dt.date, allow_maternity: bool = True
    ) -> tuple[SeedEvent, ...]:
        rng = self.rng
        table = CATEGORIES[(agency, child if agency != "fire" else False)]
        names = [c for c, _ in table if allow_maternity or c != "maternity"]
        weights = [w for c, w in table if allow_maternity or c != "maternity"]
        count = 1
        while count < 8 and rng.random() < 0.45:
            count += 1
        out = []
        for category in rng.choices(names, weights, k=count):
            # Skewed towards recent activity; never before birth.
            when = max(born, self.today - dt.timedelta(days=int(self.history * rng.random() ** 1.7)))
            restricted = category in SENSITIVE or (agency == "police" and rng.random() < self.restricted_rate)
            out.append(SeedEvent(when, category, restricted))
        return tuple(sorted(out, key=lambda e: e.date))


def _child(person: Person, today: dt.date) -> bool:
    return person.age_on(today) < 18


def decide_coverage(population: Population) -> Coverage:
    """Decides, deterministically from the seed, who each agency knows and with what activity."""
    config, today = population.config, population.reference_date
    c = config.coverage
    rng = random.Random(f"{config.seed}:coverage")
    activity = _Activity(rng, today, config.history_days, c.restricted_activity)
    coverage = Coverage()
    for household in population.households:
        _household(household, coverage, activity, rng, today, c)
    return coverage


def _household(
    household: Household,
    coverage: Coverage,
    activity: _Activity,
    rng: random.Random,
    today: dt.date,
    c: CoverageRates,
) -> None:
    members: Sequence[Person] = household.members
    children = {p.person_id for p in members if _child(p, today)}
    csc_family = bool(children) and rng.random() < c.csc_family_rate
    if csc_family:
        coverage.csc_families.add(household.household_id)
    decided: list[tuple[Person, dict[str, tuple[SeedEvent, ...]]]] = []
    for person in members:
        child = person.person_id in children
        if child:
            social = rng.random() < (c.csc_child_in_family if csc_family else c.csc_child_other)
            police_rate = c.police_given_csc_child if social else c.police_other_child
        else:
            old = person.age_on(today) >= 65
            social = rng.random() < (c.asc_adult_65_plus if old else c.asc_adult_under_65)
            police_rate = (
                c.police_given_asc_adult
                if social
                else (c.police_csc_family_adult if csc_family else c.police_other_adult)
            )
        known: dict[str, tuple[SeedEvent, ...]] = {}
        if social:
            known["socialcare"] = activity.events("socialcare", child, person.date_of_birth)
        if rng.random() < police_rate:
            known["police"] = activity.events("police", child, person.date_of_birth)
        complex_needs = social and "police" in known and rng.random() < c.complex_needs
        if complex_needs:
            coverage.complex_needs.add(person.person_id)
        if complex_needs or rng.random() < (c.nhs_csc_family if csc_family else c.nhs_baseline):
            maternity = person.gender == "female" and 16 <= person.age_on(today) <= 45
            known["nhs"] = activity.events("nhs", child, person.date_of_birth, maternity)
        decided.append((person, known))
    fire_rate = c.fire_csc_family_household if csc_family else c.fire_other_household
    fire = rng.random() < fire_rate
    if fire:
        coverage.fire_households.add(household.household_id)
        fire_events = activity.events("fire", False, min(p.date_of_birth for p in members))
    for person, known in decided:
        if fire and rng.random() < (0.5 if person.person_id in children else 0.9):
            known["fire"] = fire_events
        if known:
            coverage.activity[person.person_id] = known
