"""What a new version of an agreement allows that the old did not, and the reverse (`lateral dsa diff`).

Both versions are asked, through the same engine the services use, every question either could answer:
every requesting organisation, role, purpose and agency named in either, for a child and for an adult, at
every stretch of the week between the hours boundaries of either. So a change anywhere (a permission, a
restriction, a scope, hours, look-back, released fields) shows as the grants it changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from policy.agreement import DAYS, FIELDS, Agreement
from policy.engine import PolicyEngine, Request, SubjectKind
from policy.summary import FIELD_WORDS

# A Monday at 00:00 UTC; minutes of the week are added to it and read back in the agreement's zone.
_MONDAY = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Question:
    organisation: str
    role: str
    purpose: str
    agency: str
    subject: SubjectKind

    def words(self) -> str:
        return (
            f"{self.organisation} as {self.role} asking {self.agency} for {self.purpose} about "
            f"{'a child' if self.subject == 'child' else 'an adult'}"
        )


@dataclass(frozen=True)
class Grant:
    minutes: frozenset[int]  # the starts of the stretches of the week when it is allowed
    released: frozenset[str]
    lookback_days: int
    hidden: frozenset[str]


def _boundaries(*agreements: Agreement) -> list[int]:
    edges = {0}
    for agreement in agreements:
        for permission in agreement.permissions:
            if permission.hours is not None:
                for start, end in permission.hours.windows():
                    edges.update((start, end % (7 * 1440)))
    return sorted(edges)


def _when(minute: int, zone_engine: PolicyEngine) -> dt.datetime:
    """The instant whose local minute of the week (in the agreement's zone) is `minute`."""
    monday = _MONDAY.astimezone(zone_engine.zone).replace(hour=0, minute=0)
    return monday + dt.timedelta(minutes=minute)


def _grants(engine: PolicyEngine, questions: list[Question], starts: list[int]) -> dict[Question, Grant]:
    categories = sorted({c for r in engine.agreement.restrictions for c in r.categories})
    grants = {}
    for q in questions:
        allowed: set[int] = set()
        released: set[str] = set()
        hidden: set[str] = set()
        lookback = 0
        for start in starts:
            request = Request(q.organisation, q.role, q.purpose, q.agency, _when(start, engine), q.subject)
            decision = engine.decide(request)
            if decision.allowed:
                allowed.add(start)
                released |= decision.released
                lookback = max(lookback, decision.lookback_days)
                hidden |= engine.hidden_categories(request, categories)
        if allowed:
            grants[q] = Grant(frozenset(allowed), frozenset(released), lookback, frozenset(hidden))
    return grants


def _clock(minute: int) -> str:
    return f"{minute % 1440 // 60:02d}:{minute % 60:02d}"


def _stretches(minutes: frozenset[int] | set[int], starts: list[int]) -> str:
    """Stretches of the week in words ("Mon 08:00-18:00, Sat 08:00-12:00"), adjacent ones joined."""
    if len(minutes) == len(starts):
        return "at any time"
    ends = [*starts[1:], 7 * 1440]
    spans: list[list[int]] = []
    for start, end in zip(starts, ends, strict=True):
        if start in minutes:
            if spans and spans[-1][1] == start:
                spans[-1][1] = end
            else:
                spans.append([start, end])
    words = []
    for start, end in spans:
        first, last = DAYS[start // 1440].title(), DAYS[(end - 1) // 1440].title()
        end_clock = "24:00" if end % 1440 == 0 else _clock(end)
        words.append(
            f"{first} {_clock(start)}-{end_clock}"
            if first == last
            else f"{first} {_clock(start)} to {last} {end_clock}"
        )
    return ", ".join(words)


def diff(old: Agreement, new: Agreement) -> tuple[list[str], list[str]]:
    """Returns (what new allows that old did not, what old allowed that new does not), in plain words."""
    organisations = sorted({p.id for a in (old, new) for p in a.parties})
    roles = sorted({r for a in (old, new) for p in a.permissions for r in p.roles})
    purposes = sorted({p.id for a in (old, new) for p in a.purposes})
    agencies = sorted({g for a in (old, new) for g in a.agencies})
    questions = [
        Question(o, r, p, g, s)
        for o in organisations
        for r in roles
        for p in purposes
        for g in agencies
        for s in ("child", "adult")
    ]
    starts = _boundaries(old, new)
    before = _grants(PolicyEngine(old), questions, starts)
    after = _grants(PolicyEngine(new), questions, starts)
    return _changes(before, after, starts), _changes(after, before, starts)


def _changes(base: dict[Question, Grant], other: dict[Question, Grant], starts: list[int]) -> list[str]:
    """What `other` allows beyond `base`."""
    lines = []
    for q, grant in other.items():
        was = base.get(q)
        if was is None:
            fields = ", ".join(FIELD_WORDS[f] for f in FIELDS if f in grant.released)
            lines.append(f"{q.words()} ({_stretches(grant.minutes, starts)}): releasing {fields}")
            continue
        more = []
        if grant.minutes - was.minutes:
            more.append(f"also {_stretches(grant.minutes - was.minutes, starts)}")
        if grant.released - was.released:
            more.append(
                "also releasing "
                + ", ".join(FIELD_WORDS[f] for f in FIELDS if f in grant.released - was.released)
            )
        if grant.lookback_days > was.lookback_days:
            more.append(f"looking back {grant.lookback_days} days instead of {was.lookback_days}")
        if was.hidden - grant.hidden:
            more.append("disclosing " + ", ".join(sorted(was.hidden - grant.hidden)))
        if more:
            lines.append(f"{q.words()}: {'; '.join(more)}")
    return lines
