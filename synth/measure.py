"""Measuring what was generated: overlaps between agencies and recording-error rates, against the truth."""

from __future__ import annotations

from synth.errors import ERRORS
from synth.output import SyntheticData


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def overlaps(data: SyntheticData) -> dict[str, float]:
    """Measured overlaps: police among social-care children and adults, fire at CSC-family addresses."""
    today = data.population.reference_date
    coverage = data.coverage
    csc_children = asc_adults = police_children = police_adults = four = 0
    for person in data.population.people():
        agencies = coverage.agencies_of(person.person_id)
        four += len(agencies) == 4
        if "socialcare" not in agencies:
            continue
        if person.age_on(today) < 18:
            csc_children += 1
            police_children += "police" in agencies
        else:
            asc_adults += 1
            police_adults += "police" in agencies
    csc_households = coverage.csc_families
    others = {h.household_id for h in data.population.households} - csc_households
    return {
        "police_given_csc_child": _share(police_children, csc_children),
        "police_given_asc_adult": _share(police_adults, asc_adults),
        "fire_csc_family_household": _share(
            len(coverage.fire_households & csc_households), len(csc_households)
        ),
        "fire_other_household": _share(len(coverage.fire_households & others), len(others)),
        "known_to_four": float(four),
    }


def error_rates(data: SyntheticData, agency: str) -> dict[str, tuple[int, int]]:
    """Per error type: (records it could apply to, records it was applied to)."""
    people = {p.person_id: p for p in data.population.people()}
    counts = {name: [0, 0] for name in ERRORS}
    for row in data.records[agency].truth:
        person = people[row.person_id]
        for name, (applies, _) in ERRORS.items():
            if applies(person, agency):
                counts[name][0] += 1
                counts[name][1] += name in row.errors
    return {name: (c[0], c[1]) for name, c in counts.items()}
