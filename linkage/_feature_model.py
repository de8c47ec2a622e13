"""What an attacker expects of the features from public tables: each feature's share of records and each
pair's share together, for the features whose kinds the published parameters encode.

Given and family names are drawn independently, and the given name together with gender; dates of birth
are independent of names, with months uniform, days by the length of months and years uniform over a
century. Postcodes are left out: an attacker may not know the area's postcode populations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from linkage.encoding import EncodingParams
from linkage.fields import formal_forms, qgrams
from linkage.public_tables import NameTables

Feature = tuple[str, str]
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureModel:
    """The attacker's expectations.

    Attributes:
        features: (kind, value) of each modelled feature.
        probability: each feature's expected share of records.
        joint: each pair's expected share of records holding both.
        given_names, given_prior, given_features: the table's given names, their shares, and which
            modelled features each has (a 0/1 matrix, names x features).
        family_names, family_prior, family_features: the same for family names.
        sizes: for each feature, the fewest and most positions its footprint can have: the published k of
            its kind, less collisions; a formal word shares its name's budget with the other forms.
    """

    features: tuple[Feature, ...]
    probability: npt.NDArray[np.float64]
    joint: Matrix
    given_names: tuple[str, ...]
    given_prior: npt.NDArray[np.float64]
    given_features: Matrix
    family_names: tuple[str, ...]
    family_prior: npt.NDArray[np.float64]
    family_features: Matrix
    sizes: npt.NDArray[np.int64]


def _name_features(name: str, q: int, formal: bool) -> set[Feature]:
    out = {("name", g) for g in qgrams(name, q)}
    if formal:
        out |= {("formal", f) for f in formal_forms(name)}
    return out


def _incidence(sets: list[set[Feature]], index: dict[Feature, int]) -> Matrix:
    matrix = np.zeros((len(sets), len(index)))
    for row, features in enumerate(sets):
        matrix[row, [index[f] for f in features if f in index]] = 1.0
    return matrix


def _date_features(params: EncodingParams) -> list[tuple[Feature, float]]:
    out: list[tuple[Feature, float]] = []
    if params.k_of("month"):
        out += [(("month", str(m)), 1 / 12) for m in range(1, 13)]
    if params.k_of("day"):
        out += [(("day", str(d)), (12 if d <= 28 else 11 if d <= 30 else 7) / 365.25) for d in range(1, 32)]
    if params.k_of("year"):
        this_year = dt.date.today().year
        out += [(("year", str(y)), 1 / 100) for y in range(this_year - 99, this_year + 1)]
    return out


def build_model(tables: NameTables, params: EncodingParams, min_probability: float) -> FeatureModel:
    """The model of every feature expected in at least min_probability of records."""
    given = sorted(tables.given)
    family = sorted(tables.family)
    formal = params.k_of("formal") > 0
    given_sets = [_name_features(n, params.q, formal) for n in given]
    family_sets = [_name_features(n, params.q, False) for n in family]
    gender = [("gender", "1"), ("gender", "2")] if params.k_of("gender") else []
    every = sorted(set().union(*given_sets, *family_sets)) + gender
    index = {f: i for i, f in enumerate(every)}
    p_given = np.array([tables.given[n] for n in given])
    p_given /= p_given.sum()
    p_family = np.array([tables.family[n] for n in family])
    p_family /= p_family.sum()
    female = np.array([tables.female.get(n, 0.5) for n in given])
    # Rows are (given name, gender) with their probability; gender columns set accordingly.
    g_incidence = _incidence(given_sets, index)
    rows, weights = [g_incidence, g_incidence.copy()], [p_given * female, p_given * (1 - female)]
    if gender:
        rows[0][:, index[gender[0]]] = 1.0
        rows[1][:, index[gender[1]]] = 1.0
    g_rows, g_weights = np.concatenate(rows), np.concatenate(weights)
    f_incidence = _incidence(family_sets, index)
    # A feature is absent only if both names lack it (drawn independently).
    absent = ((1 - g_rows).T @ g_weights) * ((1 - f_incidence).T @ p_family)
    keep = np.flatnonzero(1 - absent >= min_probability)
    g_kept, f_kept = 1 - g_rows[:, keep], 1 - f_incidence[:, keep]
    absent_both = ((g_kept * g_weights[:, None]).T @ g_kept) * ((f_kept * p_family[:, None]).T @ f_kept)
    a = absent[keep]
    joint = 1 - a[:, None] - a[None, :] + absent_both
    names = [every[i] for i in keep]
    probability = 1 - a
    dates = [(f, p) for f, p in _date_features(params) if p >= min_probability]
    if dates:
        names, probability, joint = _with_dates(names, probability, joint, dates)
    return FeatureModel(
        sizes=np.array([_size_range(f[0], params) for f in names], dtype=np.int64).reshape(-1, 2),
        features=tuple(names),
        probability=probability,
        joint=joint,
        given_names=tuple(given),
        given_prior=p_given,
        given_features=g_incidence[:, keep],
        family_names=tuple(family),
        family_prior=p_family,
        family_features=f_incidence[:, keep],
    )


def _size_range(kind: str, params: EncodingParams) -> tuple[int, int]:
    k = params.k_of(kind)
    # Positions drawn at random may repeat, and a footprint may take in a position that a correlated
    # feature always sets: a margin of 2 either way.
    return (1, k + 2) if kind == "formal" else (max(1, k - 2), k + 2)


def _with_dates(
    names: list[Feature],
    probability: npt.NDArray[np.float64],
    joint: Matrix,
    dates: list[tuple[Feature, float]],
) -> tuple[list[Feature], npt.NDArray[np.float64], Matrix]:
    """Adds date features: independent of everything else, and one value per kind (two months never
    together)."""
    before = len(names)
    all_names = names + [f for f, _ in dates]
    p = np.concatenate([probability, [q for _, q in dates]])
    out = np.outer(p, p)
    out[:before, :before] = joint
    kinds = np.array([f[0] for f in all_names])
    for i in range(before, len(all_names)):
        same = np.flatnonzero(kinds == kinds[i])
        same = same[same >= before]
        out[i, same] = 0.0
        out[i, i] = p[i]
    return all_names, p, out
