"""Decisions under the Northshire agreement: every kind of refusal with its exact reason, message and
clauses; what a permission releases; and, for random requests and random agreements, never more than the
agreement grants."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.agreement import DAYS, FIELDS, Agreement, Permission, minutes, parse_agreement
from policy.engine import Decision, PolicyEngine, Request, subject_kind
from policy.release import release_only
from protos.lateral.v1 import common_pb2
from tests.unit.policy_fixtures import MONDAY_10, SUNDAY_10, example, example_data

ENGINE = PolicyEngine(example())
COUNCIL, POLICE, NHS = "northshire-council", "northshire-police", "northshire-nhs"


def decide(organisation: str, role: str, purpose: str, agency: str, **kw: Any) -> Decision:
    at = kw.pop("at", MONDAY_10)
    subject = kw.pop("subject", "child" if purpose == "child-safeguarding" else "adult")
    return ENGINE.decide(Request(organisation, role, purpose, agency, at, subject))


def test_a_permitted_request_says_what_it_releases_and_which_clause_allowed_it() -> None:
    decision = decide(COUNCIL, "mash-social-worker", "child-safeguarding", "police")
    assert decision == Decision(
        allowed=True,
        reason="PERMITTED",
        message="permitted by P1",
        clauses=("P1",),
        released=frozenset(FIELDS) - {"identity"},
        lookback_days=1825,
        obligations=("record-outcome-in-case-file",),
    )


@pytest.mark.parametrize(
    ("request_", "reason", "message", "clauses"),
    [
        (
            ("northshire-academy", "teacher", "child-safeguarding", "police", {}),
            "ORGANISATION_NOT_PERMITTED",
            "northshire-academy is not a party to agreement northshire-mash-lateral-checks",
            (),
        ),
        (
            ("northshire-fire", "watch-manager", "child-safeguarding", "police", {}),
            "ORGANISATION_NOT_PERMITTED",
            "agreement northshire-mash-lateral-checks gives northshire-fire no permission to ask",
            (),
        ),
        (
            (POLICE, "mash-police-officer", "child-safeguarding", "police", {}),
            "AGENCY_NOT_PERMITTED",
            "no permission lets northshire-police ask police",
            ("P3",),
        ),
        (
            (POLICE, "mash-police-officer", "adult-safeguarding", "nhs", {}),
            "PURPOSE_NOT_PERMITTED",
            "no permission lets northshire-police ask nhs for adult-safeguarding",
            ("P3",),
        ),
        (
            (COUNCIL, "receptionist", "child-safeguarding", "police", {}),
            "ROLE_NOT_PERMITTED",
            "no permission lets role 'receptionist' of northshire-council ask police for child-safeguarding",
            ("P1",),
        ),
        (
            (NHS, "safeguarding-nurse", "child-safeguarding", "police", {"at": SUNDAY_10}),
            "OUTSIDE_HOURS",
            "outside the agreed hours (P4 only Mon-Fri 08:00-18:00, Europe/London)",
            ("P4",),
        ),
        (
            (NHS, "safeguarding-nurse", "adult-safeguarding", "police", {}),
            "RESTRICTED",
            "restriction R2 forbids asking police: Police records are not searched for adult safeguarding on "
            "behalf of health",
            ("R2",),
        ),
        (
            (COUNCIL, "mash-manager", "child-safeguarding", "fire", {"subject": "adult"}),
            "SUBJECT_OUT_OF_SCOPE",
            "purpose child-safeguarding is for children (under 18) only, and the subject is not",
            ("purpose:child-safeguarding",),
        ),
        (
            (COUNCIL, "mash-manager", "adult-safeguarding", "fire", {"subject": "child"}),
            "SUBJECT_OUT_OF_SCOPE",
            "purpose adult-safeguarding is for adults (18 or over) only, and the subject is not",
            ("purpose:adult-safeguarding",),
        ),
    ],
)
def test_every_kind_of_refusal_has_its_reason_message_and_clauses(
    request_: tuple[str, str, str, str, dict[str, Any]], reason: str, message: str, clauses: tuple[str, ...]
) -> None:
    *who, kw = request_
    assert decide(*who, **kw) == Decision(False, reason, message, clauses)


def test_hours_are_local_time_in_the_agreements_zone() -> None:
    # 07:30 UTC on a July Monday is 08:30 in London (BST): inside P4's hours.
    summer = dt.datetime(2026, 7, 6, 7, 30, tzinfo=dt.UTC)
    assert decide(NHS, "safeguarding-nurse", "child-safeguarding", "police", at=summer).allowed
    # 17:30 UTC the same day is 18:30 in London: outside.
    late = dt.datetime(2026, 7, 6, 17, 30, tzinfo=dt.UTC)
    assert (
        decide(NHS, "safeguarding-nurse", "child-safeguarding", "police", at=late).reason == "OUTSIDE_HOURS"
    )


def test_an_unknown_age_is_not_refused_by_scope() -> None:
    assert decide(COUNCIL, "mash-manager", "child-safeguarding", "fire", subject="unknown").allowed


def test_a_permission_releases_only_its_fields() -> None:
    decision = decide(POLICE, "mash-police-officer", "child-safeguarding", "nhs")
    assert decision.released == frozenset({"outcome", "latest_date", "contact"})
    full = common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN,
        categories=["maternity"],
        latest_activity_date="2026-01-02",
        activity_count=3,
        contact=common_pb2.Contact(name="Named Nurse"),
    )
    assert release_only(full, decision.released) == common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN, latest_activity_date="2026-01-02", contact=full.contact
    )


def test_restricted_categories_are_hidden_for_their_agency_only() -> None:
    categories = ["sexual-health", "termination-of-pregnancy", "maternity"]
    nhs = Request(COUNCIL, "mash-manager", "child-safeguarding", "nhs", MONDAY_10, "child")
    assert ENGINE.hidden_categories(nhs, categories) == {"sexual-health", "termination-of-pregnancy"}
    police = Request(COUNCIL, "mash-manager", "child-safeguarding", "police", MONDAY_10, "child")
    assert ENGINE.hidden_categories(police, categories) == frozenset()


def test_two_permissions_together_release_the_union_and_the_longest_look_back() -> None:
    data = example_data()
    data["permissions"].append(
        {
            "id": "P9",
            "description": "Managers may see the full history of police activity",
            "requesters": [POLICE],
            "roles": ["mash-police-officer"],
            "purposes": ["child-safeguarding"],
            "agencies": ["nhs"],
            "release": ["outcome", "count"],
            "lookback_days": 3650,
        }
    )
    engine = PolicyEngine(parse_agreement(data, "dsa.toml"))
    decision = engine.decide(
        Request(POLICE, "mash-police-officer", "child-safeguarding", "nhs", MONDAY_10, "child")
    )
    assert (decision.clauses, decision.released, decision.lookback_days) == (
        ("P3", "P9"),
        frozenset({"outcome", "latest_date", "contact", "count"}),
        3650,
    )


def test_subject_kind_is_the_age_on_the_day_of_the_check() -> None:
    day = dt.date(2026, 11, 21)
    assert subject_kind("2008-11-21", day) == "adult"  # 18 today
    assert subject_kind("2008-11-22", day) == "child"  # 18 tomorrow
    assert subject_kind("", day) == "unknown"


# --- property: never more than the agreement grants -----------------------------------------------------

ORGS = [COUNCIL, POLICE, NHS, "northshire-fire"]
ROLES = ["mash-manager", "mash-police-officer", "safeguarding-nurse", "clerk"]
PURPOSES = ["child-safeguarding", "adult-safeguarding"]
AGENCIES = ["police", "fire", "nhs", "socialcare"]


def _granted(agreement: Agreement, request: Request, minute: int) -> frozenset[str]:
    """What the agreement's text grants this request, read directly from its permissions."""

    def applies(p: Permission) -> bool:
        in_hours = p.hours is None or any(s <= minute < e for s, e in p.hours.windows())
        return (
            request.organisation in p.requesters
            and request.role in p.roles
            and request.purpose in p.purposes
            and request.agency in p.agencies
            and in_hours
        )

    return frozenset(f for p in agreement.permissions if applies(p) for f in p.release)


permissions = st.builds(
    lambda i, orgs, roles, purposes, agencies, release, days, start: {
        "id": f"P{i}",
        "description": "generated",
        "requesters": orgs,
        "roles": roles,
        "purposes": purposes,
        "agencies": agencies,
        "release": ["outcome", *release],
        "lookback_days": 365,
        **({"hours": {"days": days, "from": f"{start:02d}:00", "to": f"{start + 8:02d}:00"}} if days else {}),
    },
    st.integers(10, 99),
    st.lists(st.sampled_from(ORGS), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(AGENCIES), min_size=1, max_size=4, unique=True),
    # "identity" is for proactive purposes only (validated): these purposes check people.
    st.lists(st.sampled_from([f for f in FIELDS[1:] if f != "identity"]), max_size=4, unique=True),
    st.lists(st.sampled_from(DAYS), max_size=7, unique=True),
    st.integers(0, 16),
)


@settings(max_examples=150, deadline=None)
@given(
    clauses=st.lists(permissions, min_size=1, max_size=5, unique_by=lambda p: p["id"]),
    requests=st.lists(
        st.tuples(
            st.sampled_from(ORGS),
            st.sampled_from(ROLES),
            st.sampled_from(PURPOSES),
            st.sampled_from(AGENCIES),
            st.integers(0, 7 * 1440 - 1),
            st.sampled_from(["child", "adult", "unknown"]),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_released_fields_never_exceed_what_the_agreement_grants(
    clauses: list[dict[str, Any]], requests: list[tuple[str, str, str, str, int, str]]
) -> None:
    data = example_data()
    data["permissions"] = clauses
    agreement = parse_agreement(data, "dsa.toml")
    engine = PolicyEngine(agreement)
    monday = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)  # London is on UTC in November
    for organisation, role, purpose, agency, minute, subject in requests:
        request = Request(organisation, role, purpose, agency, monday + dt.timedelta(minutes=minute), subject)  # type: ignore[arg-type]
        decision = engine.decide(request)
        granted = _granted(agreement, request, minute)
        assert decision.released <= granted
        if decision.allowed:
            assert decision.released == granted
            assert set(decision.clauses) <= {p["id"] for p in clauses}
        forbidden = (purpose, subject) in {
            ("child-safeguarding", "adult"),
            ("adult-safeguarding", "child"),
        } or ((organisation, purpose, agency) == (NHS, "adult-safeguarding", "police"))
        assert decision.allowed == (bool(granted) and not forbidden)


def test_minutes_of_the_week() -> None:
    assert minutes("08:30") == 510
    assert ENGINE.minute_of_week(MONDAY_10) == 600
