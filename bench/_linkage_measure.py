"""Measurements for bench.linkage: plain matching with the adapters' matcher, review candidates against
the truth, the white-box leakage of encodings, and exhaustive candidate pairs for comparisons."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from linkage import (
    ActivityEvent,
    Entity,
    LinkageKey,
    Member,
    ReviewCandidate,
    as_packed,
    dice_matrix,
    features,
    record_token,
)
from synth import AGENCIES
from tests.unit.linkage_town import Pair, Town

Index = npt.NDArray[np.intp]
# Fixed, so runs are comparable; a deployment's secret is random and shared by the agencies only.
KEY = LinkageKey(bytes(range(1, 33)), epoch=1)
SECRETS = {a: bytes([n + 100]) * 31 + b"\x01" for n, a in enumerate(AGENCIES)}
ALWAYS_REVIEW = frozenset({"child-protection-plan", "child-exploitation", "sexual-offence"})


def plain_matching(town: Town) -> tuple[set[Pair], set[Pair]]:
    """Pairs the adapters' own matcher finds on the clear fields: each agency's records queried against an
    index of every later agency's (AGENCIES order). Returns (KNOWN pairs, POSSIBLE pairs)."""
    from adapters.core.matching import KNOWN, Matcher, record_fields
    from tests.unit.synthetic_index import index_of

    rows: dict[str, list[int]] = defaultdict(list)
    for i, agency in enumerate(town.agencies):
        rows[agency].append(i)
    indexes = {a: index_of([town.seeds[i] for i in r]) for a, r in rows.items()}
    where = {a: {str(town.seeds[i].record_id): i for i in r} for a, r in rows.items()}
    known: set[Pair] = set()
    possible: set[Pair] = set()
    present = [a for a in AGENCIES if a in indexes]
    for n, a in enumerate(present):
        for b in present[n + 1 :]:
            matcher, queries = Matcher(indexes[b]), indexes[a]
            for row in range(queries.record_count):
                result = matcher.match_fields(record_fields(queries, row))
                i = where[a][queries.keys[row]]
                for key in result.record_keys:
                    j = where[b][key]
                    (known if result.outcome == KNOWN else possible).add((min(i, j), max(i, j)))
    return known, possible


def tokens(town: Town, secrets: dict[str, bytes]) -> list[str]:
    return [
        record_token(secrets[a], str(s.record_id)) for a, s in zip(town.agencies, town.seeds, strict=True)
    ]


def entities_of(labels: Index, town: Town, record_tokens: Sequence[str]) -> list[Entity]:
    groups: dict[int, list[Member]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        groups[label].append(Member(town.agencies[i], record_tokens[i]))
    return [Entity(tuple(sorted(m))) for m in groups.values()]


def activity_of(town: Town, record_tokens: Sequence[str]) -> dict[Member, list[ActivityEvent]]:
    return {
        Member(a, t): [ActivityEvent(e.date, e.category) for e in s.events]
        for a, t, s in zip(town.agencies, record_tokens, town.seeds, strict=True)
    }


@dataclass(frozen=True)
class CandidateQuality:
    true_people: int  # people with activity at min_agencies or more agencies within the window
    found: int  # of them, those a candidate holds at min_agencies or more of their agencies
    candidates: int
    false: int  # candidates joining records of more than one person
    by_category_only: int  # candidates made by an always-review category alone


def candidate_quality(
    town: Town, record_tokens: Sequence[str], candidates: Sequence[ReviewCandidate], min_agencies: int
) -> CandidateQuality:
    today, since = town.reference_date, town.since
    agencies_of: dict[int, set[str]] = defaultdict(set)
    for i, person in enumerate(town.persons.tolist()):
        if any(since <= e.date <= today for e in town.seeds[i].events):
            agencies_of[person].add(town.agencies[i])
    truth = {p for p, a in agencies_of.items() if len(a) >= min_agencies}
    owner = {(a, t): int(p) for a, t, p in zip(town.agencies, record_tokens, town.persons, strict=True)}
    found, false, by_category = set(), 0, 0
    for c in candidates:
        people = Counter(owner[(m.agency, m.token)] for m in c.members)
        if len(people) > 1:
            false += 1
        person, _ = people.most_common(1)[0]
        held = {m.agency for m in c.members if owner[(m.agency, m.token)] == person}
        if person in truth and len(held & agencies_of[person]) >= min_agencies:
            found.add(person)
        if len(c.agencies) < min_agencies:
            by_category += 1
    return CandidateQuality(len(truth), len(found & truth), len(candidates), false, by_category)


def leakage(encodings: npt.NDArray[np.uint8], town: Town, top: int = 40) -> tuple[float, float]:
    """White-box leakage, measured with the truth an attacker lacks: for each of the `top` most frequent
    name bigrams, the largest difference over encoding bits between P(bit | bigram present) and
    P(bit | absent); the median over bigrams, and the same for shuffled presence (the noise floor)."""
    counts: Counter[str] = Counter()
    kinds = [features(f).get("name", frozenset()) for f in town.fields]
    for names in kinds:
        counts.update(names)
    chosen = [g for g, _ in counts.most_common(top)]
    present = np.array([[g in names for g in chosen] for names in kinds], dtype=np.bool_)
    bits = np.unpackbits(encodings, axis=1).astype(np.float32)

    def median_max(presence: npt.NDArray[np.bool_]) -> float:
        out = []
        for column in presence.T:
            out.append(float(np.abs(bits[column].mean(axis=0) - bits[~column].mean(axis=0)).max()))
        return float(np.median(out))

    shuffled = np.random.default_rng(0).permutation(present)
    return median_max(present), median_max(shuffled)


def pairs_above(encodings: npt.NDArray[np.uint8], agencies: Index, floor: float) -> tuple[Index, Index]:
    """Every pair of records of different agencies with Dice at least floor, by exhaustive comparison in
    blocks of rows (no blocking: the reference blocking is measured against)."""
    packed = as_packed(encodings)
    left, right = [], []
    for start in range(0, len(packed), 512):
        scores = dice_matrix(packed[start : start + 512], packed)
        rows, cols = np.nonzero(scores >= floor)
        rows += start
        keep = (rows < cols) & (agencies[rows] != agencies[cols])
        left.append(rows[keep])
        right.append(cols[keep])
    return np.concatenate(left).astype(np.intp), np.concatenate(right).astype(np.intp)
