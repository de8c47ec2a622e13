"""Aligning mined footprints with the features of the attacker's model, and guessing names from them.

Alignment is a seeded graph matching: footprints are first matched to features by frequency alone, then
repeatedly by how well each footprint's co-occurrence with the others (already matched) agrees with the
model's co-occurrence of the candidate feature with theirs (as Kroll & Steinmetzer 2015 and Christen et
al. 2018 use q-gram co-occurrence to settle assignments that frequencies leave open).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from linkage._feature_model import FeatureModel
from linkage._pattern_mining import PositionGroup

Assignment = npt.NDArray[np.intp]
# A footprint is matched only to features within this factor of its frequency.
_FREQUENCY_RATIO = 3.0
_ROUNDS = 15


def _greedy(cost: npt.NDArray[np.float64], max_cost: float) -> Assignment:
    """One-to-one, cheapest pairs first; unmatched footprints get -1."""
    groups, features = cost.shape
    assignment = np.full(groups, -1, dtype=np.intp)
    used = np.zeros(features, dtype=np.bool_)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        g, f = divmod(int(flat), features)
        if cost[g, f] > max_cost:
            break
        if assignment[g] < 0 and not used[f]:
            assignment[g], used[f] = f, True
    return assignment


def align(groups: list[PositionGroup], model: FeatureModel, records: int) -> Assignment:
    """For each footprint, the index of the model feature it is taken for, or -1."""
    if not groups or not model.features:
        return np.full(len(groups), -1, dtype=np.intp)
    support = np.array([g.support for g in groups], dtype=np.float64)
    held = np.stack([g.records for g in groups])
    together = np.array(
        [np.bitwise_count(held & row).sum(axis=1, dtype=np.int64) for row in held], dtype=np.float64
    )
    observed = together / support[:, None]  # share of footprint j's records also holding k
    expected = model.joint / model.probability[:, None]  # share of feature f's holders also holding h
    frequency_cost = np.abs(np.log(support / records)[:, None] - np.log(model.probability)[None, :])
    # Kerckhoffs: the published k of each kind says how many positions a footprint of that kind has.
    size = np.array([len(g.positions) for g in groups])[:, None]
    fits = (model.sizes[:, 0][None, :] <= size) & (size <= model.sizes[:, 1][None, :])
    frequency_cost[~fits] = np.inf
    assignment = _greedy(frequency_cost, math.log(1.5))
    candidates = frequency_cost <= math.log(_FREQUENCY_RATIO)
    for _ in range(_ROUNDS):
        matched = np.flatnonzero(assignment >= 0)
        if not len(matched):
            break
        cost = np.full(frequency_cost.shape, np.inf)
        for j in range(len(groups)):
            others = matched[matched != j]
            options = np.flatnonzero(candidates[j])
            if not len(others) or not len(options):
                continue
            mapped = assignment[others]
            forward = np.abs(observed[j, others][None, :] - expected[np.ix_(options, mapped)]).mean(axis=1)
            backward = np.abs(observed[others, j][None, :] - expected[np.ix_(mapped, options)].T).mean(axis=1)
            cost[j, options] = forward + backward + 0.2 * frequency_cost[j, options]
        updated = _greedy(cost, 0.6)
        if np.array_equal(updated, assignment):
            break
        assignment = updated
    return assignment


def guess_names(
    groups: list[PositionGroup], assignment: Assignment, model: FeatureModel, records: int
) -> list[tuple[str, str]]:
    """Each record's most plausible (first given name, family name): the names whose features agree
    best with the footprints the record holds (+1 for each held feature the name has, -3 for each the
    name has but the record lacks), with the name's public frequency breaking ties."""
    named = [
        j
        for j in range(len(groups))
        if assignment[j] >= 0 and model.features[assignment[j]][0] in ("name", "formal")
    ]
    if not named:
        top_given = model.given_names[int(np.argmax(model.given_prior))]
        top_family = model.family_names[int(np.argmax(model.family_prior))]
        return [(top_given, top_family)] * records
    held = np.stack([groups[j].records for j in named])
    present = np.unpackbits(held.view(np.uint8), axis=1, bitorder="little")[:, :records].T.astype(np.float32)
    columns = [int(assignment[j]) for j in named]

    def best(features: npt.NDArray[np.float64], prior: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        has = features[:, columns].astype(np.float32).T
        bonus = 0.5 * np.log(prior).astype(np.float32)[None, :]
        out = np.empty(records, dtype=np.intp)
        # In slices of records: a score matrix of every record against every name would not fit.
        for start in range(0, records, 1024):
            rows = present[start : start + 1024]
            out[start : start + 1024] = np.argmax(rows @ has - 3 * (1 - rows) @ has + bonus, axis=1)
        return out

    given = best(model.given_features, model.given_prior)
    family = best(model.family_features, model.family_prior)
    return [(model.given_names[g], model.family_names[f]) for g, f in zip(given, family, strict=True)]
