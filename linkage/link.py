"""Linking encodings across agencies into entities.

1. Candidate pairs of records of different agencies from blocking (``linkage.blocking``).
2. Their Dice coefficients; pairs at or above the threshold are links.
3. Links are taken best first (greedy, as anonlink's solver): a record links to at most max_per_agency
   records of each other agency, and two entities merge (union-find) only if no agency then holds more
   than max_per_agency of the entity's records.

With max_per_agency = 1 this is anonlink's one-to-one matching between every pair of agencies. An agency
may hold one person twice (the synthetic towns have 1% duplicates): with 2, a record may link to both of
them and the entity holds both, at the risk of taking in a twin or a namesake close enough to pass the
threshold. The default is chosen by the measurements in docs/linkage.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from linkage.blocking import LshBlocking, candidate_pairs
from linkage.similarity import as_packed, dice_pairs

DEFAULT_THRESHOLD = 0.60


@dataclass(frozen=True)
class EncodedRecord:
    """What an agency publishes for one record: its agency, its agency-local token, its encoding."""

    agency: str
    token: str
    encoding: bytes


@dataclass(frozen=True, order=True)
class Member:
    """One record of an entity, named by agency and token (only that agency can resolve the token)."""

    agency: str
    token: str


@dataclass(frozen=True)
class Entity:
    """Records taken for one person.

    Attributes:
        members: the records, sorted by agency then token.
        weakest_link: the lowest Dice coefficient among the links that joined them (1.0 for one record).
    """

    members: tuple[Member, ...]
    weakest_link: float = 1.0

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(sorted({m.agency for m in self.members}))


@dataclass(frozen=True)
class LinkParams:
    """How records are linked.

    Attributes:
        threshold: the lowest Dice coefficient that links two records.
        max_per_agency: the most records of one agency in one entity (1 or 2).
        blocking: the candidate-pair parameters.
    """

    threshold: float = DEFAULT_THRESHOLD
    max_per_agency: int = 1
    blocking: LshBlocking = field(default_factory=LshBlocking)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("the threshold must be above 0 and at most 1")
        if self.max_per_agency not in (1, 2):
            raise ValueError("max_per_agency must be 1 or 2")


@dataclass(frozen=True)
class Clustering:
    """Entities as labels over records, with the links accepted.

    Attributes:
        labels: each record's entity number (the smallest record index in it).
        links: accepted links as (i, j, dice) rows.
        candidates: candidate pairs compared.
    """

    labels: npt.NDArray[np.intp]
    links: tuple[tuple[int, int, float], ...]
    candidates: int


class _Entities:
    """Union-find over records, counting each entity's records per agency."""

    def __init__(self, agencies: npt.NDArray[np.intp], agency_count: int) -> None:
        self.parent = list(range(len(agencies)))
        self.counts: dict[int, list[int]] = {}
        for i, a in enumerate(agencies.tolist()):
            row = [0] * agency_count
            row[a] = 1
            self.counts[i] = row

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def merge(self, i: int, j: int, limit: int) -> bool:
        a, b = self.root(i), self.root(j)
        if a == b:
            return True
        merged = [x + y for x, y in zip(self.counts[a], self.counts[b], strict=True)]
        if max(merged) > limit:
            return False
        a, b = min(a, b), max(a, b)
        self.parent[b] = a
        self.counts[a] = merged
        del self.counts[b]
        return True


def cluster(
    encodings: npt.NDArray[np.uint8],
    agencies: npt.NDArray[np.intp],
    params: LinkParams | None = None,
    pairs: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None,
) -> Clustering:
    """Links packed encodings (one row a record) of agencies numbered 0..n-1.

    Args:
        encodings: packed encodings (``encode_many``).
        agencies: each record's agency number.
        params: thresholds and blocking (defaults when None).
        pairs: candidate pairs to compare instead of blocking's (for measurements).
    """
    params = params or LinkParams()
    i, j = pairs if pairs is not None else candidate_pairs(encodings, agencies, params.blocking)
    packed = as_packed(encodings)
    scores = dice_pairs(packed, packed, i, j)
    keep = scores >= params.threshold
    i, j, scores = i[keep], j[keep], scores[keep]
    # Best first; ties in a fixed order so the result does not depend on blocking's order.
    order = np.lexsort((j, i, -scores))
    agency_count = int(agencies.max()) + 1 if len(agencies) else 0
    entities = _Entities(agencies, agency_count)
    limit = params.max_per_agency
    linked: Counter[tuple[int, int]] = Counter()  # (record, other agency) -> links made
    links = []
    for a, b, s in zip(i[order].tolist(), j[order].tolist(), scores[order].tolist(), strict=True):
        to_b, to_a = (a, int(agencies[b])), (b, int(agencies[a]))
        if linked[to_b] >= limit or linked[to_a] >= limit:
            continue
        if entities.merge(a, b, limit):
            linked[to_b] += 1
            linked[to_a] += 1
            links.append((a, b, s))
    labels = np.array([entities.root(r) for r in range(len(agencies))], dtype=np.intp)
    return Clustering(labels, tuple(links), len(keep))


def link(records: Sequence[EncodedRecord], params: LinkParams | None = None) -> list[Entity]:
    """Every record's entity (a record linked to nothing is an entity of one), largest entities first.

    Raises:
        ValueError: two records share an agency and token, or the encodings differ in length.
    """
    keys = [(r.agency, r.token) for r in records]
    if len(set(keys)) != len(keys):
        raise ValueError("two records share an agency and token")
    names = sorted({r.agency for r in records})
    number = {a: n for n, a in enumerate(names)}
    agencies = np.array([number[r.agency] for r in records], dtype=np.intp)
    packed = as_packed([r.encoding for r in records])
    result = cluster(packed.view(np.uint8), agencies, params)
    weakest: dict[int, float] = {}
    for a, _, s in result.links:
        root = int(result.labels[a])
        weakest[root] = min(weakest.get(root, 1.0), s)
    groups: dict[int, list[Member]] = {}
    for r, label in zip(records, result.labels.tolist(), strict=True):
        groups.setdefault(label, []).append(Member(r.agency, r.token))
    entities = [Entity(tuple(sorted(m)), weakest.get(label, 1.0)) for label, m in groups.items()]
    return sorted(entities, key=lambda e: (-len(e.members), e.members))
