"""Review candidates: linked entities whose activity calls for a multi-agency look, ranked by a score
anyone can recompute from its reasons.

A candidate carries agencies, dates and categories only: never a name, a record key or a similarity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from linkage.link import Entity, Member


@dataclass(frozen=True)
class ActivityEvent:
    """One piece of an agency's activity about a record: when and of what category."""

    date: dt.date
    category: str


@dataclass(frozen=True)
class ReviewRules:
    """When an entity is a candidate, and how it is scored.

    Attributes:
        min_agencies: activity at this many agencies within window_days makes a candidate.
        window_days: the look-back window, counted back from the day of the run.
        always_review: categories that make a candidate whenever they fall within the window...
        always_review_min_agencies: ...in an entity known to at least this many agencies (2: an agency
            reviews its own single-agency cases; 1 makes every such case a candidate).
        agency_points: points per agency with activity in the window.
        recency_points: points for activity on the day of the run, falling linearly to 0 at the window's
            start.
        category_weights: points per distinct category in the window (others count 0).
        always_review_points: points for an always-review category without a weight of its own.
    """

    min_agencies: int = 2
    window_days: int = 365
    always_review: frozenset[str] = frozenset()
    always_review_min_agencies: int = 2
    agency_points: float = 10.0
    recency_points: float = 5.0
    category_weights: Mapping[str, float] = field(default_factory=dict)
    always_review_points: float = 5.0

    def __post_init__(self) -> None:
        if self.min_agencies < 1 or self.always_review_min_agencies < 1:
            raise ValueError("min_agencies and always_review_min_agencies must be at least 1")
        if not 1 <= self.window_days <= 3650:
            raise ValueError("window_days must be from 1 to 3650")

    def weight(self, category: str) -> float:
        if category in self.category_weights:
            return self.category_weights[category]
        return self.always_review_points if category in self.always_review else 0.0


@dataclass(frozen=True)
class ReviewCandidate:
    """An entity for multi-agency review.

    Attributes:
        candidate_id: a pseudonym of the entity (its members and the key epoch) that reveals neither.
        members: the records, for each agency to resolve its own tokens when a review goes ahead.
        agencies: agencies with activity in the window.
        latest_activity: the latest activity date in the window.
        categories: distinct categories in the window.
        score: the ranking score, as the last reason breaks it down.
        reasons: why it is a candidate, in words.
    """

    candidate_id: str
    members: tuple[Member, ...]
    agencies: tuple[str, ...]
    latest_activity: dt.date
    categories: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]


def candidate_id(members: Iterable[Member], epoch: int) -> str:
    """SHA-256 over the sorted members and the key epoch, 128 bits in hex: the same entity keeps its id
    from run to run within an epoch, and the id cannot be turned back into tokens."""
    digest = hashlib.sha256(b"lateral/linkage/v1/candidate\x00" + epoch.to_bytes(4, "big"))
    for m in sorted(members):
        digest.update(f"\x00{m.agency}\x1f{m.token}".encode())
    return digest.hexdigest()[:32]


def _score(
    rules: ReviewRules, agencies: Sequence[str], latest: dt.date, categories: Sequence[str], today: dt.date
) -> tuple[float, str]:
    agency_part = rules.agency_points * len(agencies)
    age = (today - latest).days
    recency = rules.recency_points * max(0.0, 1 - age / rules.window_days)
    weighted = [(c, rules.weight(c)) for c in categories if rules.weight(c)]
    category_part = sum(w for _, w in weighted)
    total = agency_part + recency + category_part
    detail = ", ".join(f"{c} {w:.1f}" for c, w in weighted) or "none weighted"
    why = (
        f"score {total:.1f}: agencies {agency_part:.1f} ({len(agencies)} x {rules.agency_points:.1f})"
        f" + recency {recency:.1f} (latest {age} days ago) + categories {category_part:.1f} ({detail})"
    )
    return total, why


def _candidate(
    entity: Entity,
    activity: Mapping[Member, Sequence[ActivityEvent]],
    rules: ReviewRules,
    today: dt.date,
    epoch: int,
) -> ReviewCandidate | None:
    since = today - dt.timedelta(days=rules.window_days)
    recent = [(m.agency, e) for m in entity.members for e in activity.get(m, ()) if since <= e.date <= today]
    if not recent:
        return None
    agencies = sorted({a for a, _ in recent})
    reasons = []
    if len(agencies) >= rules.min_agencies:
        reasons.append(
            f"activity at {len(agencies)} agencies within {rules.window_days} days: {', '.join(agencies)} "
            f"(review at {rules.min_agencies} or more)"
        )
    if len(entity.agencies) >= rules.always_review_min_agencies:
        flagged: dict[tuple[str, str], dt.date] = {}
        for agency, event in recent:
            if event.category in rules.always_review:
                key = (event.category, agency)
                flagged[key] = max(flagged.get(key, event.date), event.date)
        for (category, agency), day in sorted(flagged.items()):
            reasons.append(f"category {category} at {agency} on {day.isoformat()} always requires review")
    if not reasons:
        return None
    latest = max(e.date for _, e in recent)
    categories = sorted({e.category for _, e in recent})
    age = (today - latest).days
    reasons.append(f"latest activity {latest.isoformat()}, {age} days before {today.isoformat()}")
    score, why = _score(rules, agencies, latest, categories, today)
    reasons.append(why)
    return ReviewCandidate(
        candidate_id(entity.members, epoch),
        entity.members,
        tuple(agencies),
        latest,
        tuple(categories),
        round(score, 1),
        tuple(reasons),
    )


def review_candidates(
    entities: Iterable[Entity],
    activity: Mapping[Member, Sequence[ActivityEvent]],
    today: dt.date,
    epoch: int,
    rules: ReviewRules | None = None,
) -> list[ReviewCandidate]:
    """The entities the rules make candidates, highest score first (then latest activity, then id).

    Args:
        entities: linked entities (``linkage.link``).
        activity: each member's activity; members without any have none.
        today: the day of the run; the window ends on it (later dates are ignored).
        epoch: the linkage key's epoch, part of each candidate's id.
        rules: the rules (defaults when None).
    """
    rules = rules or ReviewRules()
    found = [c for e in entities if (c := _candidate(e, activity, rules, today, epoch)) is not None]
    return sorted(found, key=lambda c: (-c.score, -c.latest_activity.toordinal(), c.candidate_id))
