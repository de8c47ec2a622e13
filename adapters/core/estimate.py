"""Estimating the scoring weights from the agency's own records, without any labelled matches.

- u (how often a level occurs between two different people): from random pairs of records, which are
  different people with overwhelming probability. Term-frequency levels keep using the index's own
  frequencies.
- m (how often a level occurs between two records of one person): by expectation-maximisation over the
  pairs of records that could be one person recorded twice (sharing a blocking key, and agreeing on given
  name and date of birth). As in Splink, m is learnt only for the fields that did not choose the pairs
  (family name, gender, postcode, address, identifiers): the given name and date of birth keep their
  defaults. Without the selection, households (one family name, one postcode) swamp the duplicates.
  When the agency has too few duplicates to learn from, the defaults stay.

Estimates are smoothed towards the defaults, so a small agency cannot produce extreme weights.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from adapters.core.index import MatchIndex
from adapters.core.matching import Matcher, record_fields
from adapters.core.scoring import DEFAULT_LEVELS, DOB_AGREES, NAME_AGREES, Weights
from lateral.config import ConfigError, read_toml

Levels = dict[str, dict[str, tuple[float, float | None]]]
# Pseudo-counts pulling an estimate towards the default.
PRIOR_PAIRS = 2_000
MIN_MATCHES = 30.0
# The fields that choose the pairs EM learns from: their m cannot be learnt from those pairs.
SELECTING = frozenset({"given", "dob", "swapped"})


@dataclass(frozen=True)
class Estimate:
    levels: Levels
    random_pairs: int
    blocked_pairs: int
    matches: float  # expected number of matching pairs EM found among the blocked ones
    m_estimated: bool


def _levels_of(index: MatchIndex, matcher: Matcher, a: int, b: int) -> dict[str, str]:
    scored = matcher.scorer.score(record_fields(index, a), b)
    return {name: level for name, (level, _) in scored.levels.items()}


def estimate(
    index: MatchIndex,
    *,
    random_pairs: int = 200_000,
    records: int = 20_000,
    iterations: int = 25,
    seed: int = 1,
    progress: Callable[[str], None] = lambda stage: None,
) -> Estimate:
    """Estimates m and u for every level from the index's own records."""
    rng = random.Random(seed)  # noqa: S311 - sampling, not secrecy
    matcher = Matcher(index)
    live = list(index.row_of.values())
    if len(live) < 2:
        raise ValueError("an index needs at least two records to estimate from")
    progress("random pairs")
    u_counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _ in range(random_pairs):
        a, b = rng.sample(live, 2)
        for name, level in _levels_of(index, matcher, a, b).items():
            u_counts[name][level] += 1
    progress("blocked pairs")
    vectors: list[dict[str, str]] = []
    for a in rng.sample(live, min(records, len(live))):
        for b in matcher.candidates(record_fields(index, a)):
            if int(b) > a:
                vector = _levels_of(index, matcher, a, int(b))
                if vector.get("given") in NAME_AGREES and vector.get("dob") in DOB_AGREES:
                    vectors.append(vector)
    levels: Levels = {name: dict(table) for name, table in DEFAULT_LEVELS.items()}
    for name, table in DEFAULT_LEVELS.items():
        seen = sum(u_counts[name].values())
        for level, (m, u) in table.items():
            if u is not None and seen:
                u_new = (u_counts[name][level] + PRIOR_PAIRS * u) / (seen + PRIOR_PAIRS)
                levels[name][level] = (m, u_new)
    progress("expectation-maximisation")
    matches, m_estimated = _em(vectors, levels, iterations)
    return Estimate(levels, random_pairs, len(vectors), matches, m_estimated)


def _weight(levels: Levels, vector: dict[str, str], tf: float = 0.001) -> float:
    total = 0.0
    for name, level in vector.items():
        m, u = levels[name][level]
        total += math.log2(m / (u if u is not None else tf))
    return total


def _em(vectors: list[dict[str, str]], levels: Levels, iterations: int) -> tuple[float, bool]:
    """Fits m by EM with u fixed; updates levels in place when there are enough matches to learn from."""
    if not vectors:
        return 0.0, False
    share = 0.01
    m_levels = {name: {level: m for level, (m, _) in table.items()} for name, table in levels.items()}
    learnt = set(m_levels) - SELECTING
    expected = 0.0
    for _ in range(iterations):
        prior = math.log2(share / (1 - share))
        current = {n: {lv: (m_levels[n][lv], levels[n][lv][1]) for lv in t} for n, t in levels.items()}
        weights = [_weight(current, v) for v in vectors]
        probabilities = [1.0 / (1.0 + math.pow(2.0, -min(max(w + prior, -60.0), 60.0))) for w in weights]
        expected = sum(probabilities)
        if expected < MIN_MATCHES:
            return expected, False
        share = min(0.5, max(1e-6, expected / len(vectors)))
        for name in learnt:
            table = m_levels[name]
            mass: dict[str, float] = defaultdict(float)
            total = 0.0
            for vector, p in zip(vectors, probabilities, strict=True):
                if name in vector:
                    mass[vector[name]] += p
                    total += p
            if total <= 0:
                continue
            for level in table:
                default = DEFAULT_LEVELS[name][level][0]
                table[level] = (mass[level] + MIN_MATCHES * default) / (total + MIN_MATCHES)
    for name, table in m_levels.items():
        for level, m in table.items():
            levels[name][level] = (m, levels[name][level][1])
    return expected, True


def write_weights(result: Estimate, path: Path) -> None:
    """Writes estimated weights as TOML an admin can read and a configuration can name."""
    data = {
        "estimated": {
            "random_pairs": result.random_pairs,
            "blocked_pairs": result.blocked_pairs,
            "expected_matches": round(result.matches, 1),
            "m_estimated": result.m_estimated,
        },
        "levels": {
            name: {
                level: [round(m, 8), "tf" if u is None else round(u, 10)] for level, (m, u) in table.items()
            }
            for name, table in result.levels.items()
        },
    }
    path.write_text(
        "# Scoring weights estimated by `lateral adapter estimate`: [m, u] per level.\n" + tomli_w.dumps(data)
    )


def load_weights(path: Path) -> Weights:
    """Reads a weights file written by write_weights; every level must be a probability pair.

    Raises:
        ConfigError: naming the file, the level and the problem.
    """
    data = read_toml(path).get("levels", {})
    levels: Levels = {name: dict(table) for name, table in DEFAULT_LEVELS.items()}
    for name, table in data.items():
        if name not in levels:
            raise ConfigError(f"{path}: levels.{name}: no such field (known: {sorted(levels)})")
        for level, pair in table.items():
            if level not in levels[name]:
                raise ConfigError(
                    f"{path}: levels.{name}.{level}: no such level (known: {sorted(levels[name])})"
                )
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigError(f"{path}: levels.{name}.{level}: expected [m, u]")
            m, u = pair
            if not (isinstance(m, int | float) and 0 < m <= 1) or not (
                u == "tf" or (isinstance(u, int | float) and 0 < u <= 1)
            ):
                raise ConfigError(f"{path}: levels.{name}.{level}: m and u must be probabilities in (0, 1]")
            levels[name][level] = (float(m), None if u == "tf" else float(u))
    return Weights(levels)
