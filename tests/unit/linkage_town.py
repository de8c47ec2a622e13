"""A synthetic town's records with recent activity, as the linkage tests and bench.linkage use them: the
fields each agency would encode, who each record really is, and pair-quality arithmetic."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.core.records import SeedPerson
from linkage import RecordFields
from synth import AGENCIES, SynthConfig, generate

Pair = tuple[int, int]


@dataclass
class Town:
    """Records with activity in the look-back window, across every agency, in one list.

    Attributes:
        reference_date: the synthetic "today".
        seeds: each record as its agency holds it.
        fields: each record's linkage fields.
        agencies: each record's agency; agency_ids the same as numbers (AGENCIES order).
        persons: each record's true person.
        errors: the recording errors each record carries.
    """

    reference_date: dt.date
    window_days: int
    seeds: list[SeedPerson]
    fields: list[RecordFields]
    agencies: list[str]
    agency_ids: npt.NDArray[np.intp]
    persons: npt.NDArray[np.int64]
    errors: list[tuple[str, ...]]

    @property
    def since(self) -> dt.date:
        return self.reference_date - dt.timedelta(days=self.window_days)


def build_town(people: int, seed: int = 11, window_days: int = 365) -> Town:
    """A town of `people` people; only records with activity in the last window_days are kept (what the
    agencies publish)."""
    data = generate(SynthConfig(people=people, seed=seed))
    today = data.population.reference_date
    since = today - dt.timedelta(days=window_days)
    seeds, agencies, persons, errors = [], [], [], []
    for agency in AGENCIES:
        records = data.records[agency]
        truth = {row.record_id: row for row in records.truth}
        for person in records.people:
            if any(since <= e.date <= today for e in person.events):
                seeds.append(person)
                agencies.append(agency)
                persons.append(truth[person.record_id].person_id)
                errors.append(truth[person.record_id].errors)
    number = {a: i for i, a in enumerate(AGENCIES)}
    return Town(
        reference_date=today,
        window_days=window_days,
        seeds=seeds,
        fields=[RecordFields.of_seed(s) for s in seeds],
        agencies=agencies,
        agency_ids=np.array([number[a] for a in agencies], dtype=np.intp),
        persons=np.array(persons, dtype=np.int64),
        errors=errors,
    )


@functools.cache
def cached_town(people: int, seed: int = 11) -> Town:
    """build_town, once per process: several test modules share one town."""
    return build_town(people, seed)


def _cross_pairs(groups: Iterable[list[int]], agency_ids: npt.NDArray[np.intp]) -> set[Pair]:
    out = set()
    for members in groups:
        for i, j in itertools.combinations(sorted(members), 2):
            if agency_ids[i] != agency_ids[j]:
                out.add((i, j))
    return out


def true_pairs(town: Town) -> set[Pair]:
    """Pairs (i < j) of records of one person at different agencies."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(town.persons.tolist()):
        groups[p].append(i)
    return _cross_pairs(groups.values(), town.agency_ids)


def linked_pairs(labels: npt.NDArray[np.intp], agency_ids: npt.NDArray[np.intp]) -> set[Pair]:
    """Pairs (i < j) of records of different agencies given one entity label."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        groups[label].append(i)
    return _cross_pairs((g for g in groups.values() if len(g) > 1), agency_ids)


def exactly(message: str) -> str:
    """A pytest.raises match pattern for exactly this message."""
    return f"^{re.escape(message)}$"


def pair_quality(found: set[Pair], truth: set[Pair]) -> tuple[float, float, float]:
    """Precision, recall and F1 of found pairs against the true ones."""
    right = len(found & truth)
    precision = right / len(found) if found else 1.0
    recall = right / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
