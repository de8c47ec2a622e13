"""Review candidates: the rules, the score and its reasons, exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from linkage import ActivityEvent, Entity, Member, ReviewRules, candidate_id, review_candidates
from tests.unit.linkage_town import exactly

TODAY = dt.date(2026, 12, 4)
RULES = ReviewRules(
    min_agencies=2,
    window_days=365,
    always_review=frozenset({"child-exploitation"}),
    category_weights={"child-exploitation": 3.0},
)
P1, N1, F1 = Member("police", "p1"), Member("nhs", "n1"), Member("fire", "f1")
P2, S2, P3 = Member("police", "p2"), Member("socialcare", "s2"), Member("police", "p3")
N4, F4 = Member("nhs", "n4"), Member("fire", "f4")
ENTITIES = [Entity((F1, N1, P1)), Entity((P2, S2)), Entity((P3,)), Entity((F4, N4))]


def event(day: str, category: str) -> ActivityEvent:
    return ActivityEvent(dt.date.fromisoformat(day), category)


ACTIVITY = {
    P1: [event("2026-11-20", "concern-for-welfare"), event("2025-01-01", "violence")],
    N1: [event("2026-06-01", "emergency-department-attendance")],
    F1: [event("2025-06-01", "home-fire-safety-visit")],  # before the window (2025-12-04)
    P2: [event("2026-10-01", "child-exploitation")],
    S2: [event("2024-01-01", "referral")],
    P3: [event("2026-11-01", "child-exploitation")],
    N4: [event("2025-01-01", "maternity")],
    F4: [event("2027-01-01", "deliberate-fire")],  # after the day of the run: ignored
}


def test_candidates_their_reasons_and_their_order() -> None:
    found = review_candidates(ENTITIES, ACTIVITY, TODAY, epoch=3, rules=RULES)
    assert [c.members for c in found] == [(F1, N1, P1), (P2, S2)]
    first, second = found
    assert (first.agencies, first.latest_activity, first.categories, first.score) == (
        ("nhs", "police"),
        dt.date(2026, 11, 20),
        ("concern-for-welfare", "emergency-department-attendance"),
        24.8,
    )
    assert first.reasons == (
        "activity at 2 agencies within 365 days: nhs, police (review at 2 or more)",
        "latest activity 2026-11-20, 14 days before 2026-12-04",
        "score 24.8: agencies 20.0 (2 x 10.0) + recency 4.8 (latest 14 days ago) + categories 0.0 "
        "(none weighted)",
    )
    assert (second.agencies, second.score) == (("police",), 17.1)
    assert second.reasons == (
        "category child-exploitation at police on 2026-10-01 always requires review",
        "latest activity 2026-10-01, 64 days before 2026-12-04",
        "score 17.1: agencies 10.0 (1 x 10.0) + recency 4.1 (latest 64 days ago) + categories 3.0 "
        "(child-exploitation 3.0)",
    )


def test_a_single_agency_case_is_a_candidate_only_when_the_rules_say_so() -> None:
    rules = ReviewRules(
        min_agencies=2, always_review=frozenset({"child-exploitation"}), always_review_min_agencies=1
    )
    found = review_candidates([Entity((P3,))], ACTIVITY, TODAY, epoch=3, rules=rules)
    assert [c.reasons[0] for c in found] == [
        "category child-exploitation at police on 2026-11-01 always requires review"
    ]
    # An always-review category without a weight of its own scores always_review_points (5.0).
    assert found[0].score == round(10.0 + 5 * (1 - 33 / 365) + 5.0, 1)
    assert review_candidates([Entity((P3,))], ACTIVITY, TODAY, epoch=3, rules=RULES) == []


def test_three_agencies_are_needed_when_the_rule_says_three() -> None:
    rules = ReviewRules(min_agencies=3)
    assert review_candidates(ENTITIES, ACTIVITY, TODAY, epoch=3, rules=rules) == []
    wider = ReviewRules(min_agencies=3, window_days=600)
    (found,) = review_candidates(ENTITIES, ACTIVITY, TODAY, epoch=3, rules=wider)
    assert (
        found.reasons[0] == "activity at 3 agencies within 600 days: fire, nhs, police (review at 3 or more)"
    )


def test_members_without_activity_have_none() -> None:
    assert review_candidates([Entity((Member("nhs", "unknown"), P3))], {}, TODAY, epoch=3) == []


def test_the_candidate_id_is_stable_and_says_nothing_of_its_members() -> None:
    first = review_candidates(ENTITIES, ACTIVITY, TODAY, epoch=3, rules=RULES)[0]
    assert first.candidate_id == candidate_id([P1, F1, N1], 3) == candidate_id([N1, P1, F1], 3)
    assert first.candidate_id != candidate_id([P1, F1, N1], 4)
    assert first.candidate_id != candidate_id([P1, N1], 3)
    assert len(first.candidate_id) == 32
    assert not any(m.token in first.candidate_id for m in first.members)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_agencies": 0}, "min_agencies and always_review_min_agencies must be at least 1"),
        ({"always_review_min_agencies": 0}, "min_agencies and always_review_min_agencies must be at least 1"),
        ({"window_days": 0}, "window_days must be from 1 to 3650"),
    ],
)
def test_rules_out_of_range_are_refused(arguments: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        ReviewRules(**arguments)  # type: ignore[arg-type]
