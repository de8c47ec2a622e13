"""The agreement file: the shipped example is valid, and every problem names the file, the clause and what is
wrong."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from lateral.config import ConfigError
from policy.agreement import parse_agreement
from tests.unit.policy_fixtures import example, example_data


def test_the_example_is_a_four_agency_partnership() -> None:
    agreement = example()
    assert agreement.agencies == ("socialcare", "police", "fire", "nhs")
    assert [p.id for p in agreement.permissions] == ["P1", "P2", "P3", "P4", "P5", "P6"]
    assert agreement.linkage is not None
    assert agreement.linkage.agencies == ("police", "fire", "nhs", "socialcare")
    assert agreement.controller_of("police") is not None
    assert agreement.controller_of("police").id == "northshire-police"  # type: ignore[union-attr]
    assert agreement.controller_of("education") is None


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _append(section: str, item: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda data: data[section].append(item)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _set(("permissions", 2, "release"), ["category", "count"]),
            "dsa.toml: permissions[2] (P3): release: must include 'outcome': nothing else can be released "
            "without it",
        ),
        (
            _set(("permissions", 1, "release"), ["outcome", "address"]),
            "dsa.toml: permissions[1] (P2): release[1]: Input should be 'outcome', 'category', "
            "'latest_date', 'count', 'contact' or 'identity'",
        ),
        (
            _set(("permissions", 0, "agencies"), ["police", "educaton"]),
            "dsa.toml: permissions[0] (P1): agencies: 'educaton' is not one of the agreement's agencies "
            "(a party's agencies)",
        ),
        (
            _set(("permissions", 3, "requesters"), ["northshire-school"]),
            "dsa.toml: permissions[3] (P4): requesters: 'northshire-school' is not one of the agreement's "
            "parties",
        ),
        (
            _set(("permissions", 3, "hours"), {"days": ["mon"], "from": "18:00", "to": "08:00"}),
            "dsa.toml: permissions[3] (P4): hours: 'to' must be later than 'from'",
        ),
        (
            _set(("permissions", 3, "hours"), {"days": ["monday"]}),
            "dsa.toml: permissions[3] (P4): hours: days[0]: Input should be 'mon', 'tue', 'wed', 'thu', "
            "'fri', 'sat' or 'sun'",
        ),
        (
            _set(("parties", 1, "lawful_basis"), ["UK GDPR Article 6(1)(e)"]),
            "dsa.toml: parties[1] (northshire-police): a police party processes under DPA 2018 Part 3 (law "
            "enforcement): cite it",
        ),
        (
            _set(("parties", 2, "agencies"), ["fire", "police"]),
            "dsa.toml: parties[2] (northshire-fire): agencies: 'police' is already held by northshire-police",
        ),
        (
            _set(("agreement", "review_by"), dt.date(2030, 1, 1)),
            "dsa.toml: agreement: review_by must fall between valid_from and valid_until",
        ),
        (
            _set(("parties", 0, "signing_key"), "ssh-ed25519 AAAA"),
            "dsa.toml: parties[0] (northshire-council): signing_key: must be 'ed25519:' followed by a base64 "
            "public key (lateral dsa keygen)",
        ),
        (
            _append("restrictions", {"id": "P1", "description": "d", "agencies": ["nhs"]}),
            "dsa.toml: clause id 'P1' is used in more than one section; clause ids must be unique",
        ),
        (
            _set(("review", 0, "categories"), ["child-protection-plan"]),
            "dsa.toml: review[0] (RV1): give either min_agencies (with window_days) or categories",
        ),
        (
            _set(("purposes", 0, "subjects"), "babies"),
            "dsa.toml: purposes[0] (child-safeguarding): subjects: Input should be 'children', 'adults' or "
            "'any'",
        ),
        (
            _set(("permissions", 0, "release"), ["outcome", "identity"]),
            "dsa.toml: permissions[0] (P1): release: 'identity' is released only for proactive purposes "
            '(checks = "proactive")',
        ),
        (
            _set(("linkage", "purpose"), "child-safeguarding"),
            "dsa.toml: linkage: purpose: 'child-safeguarding' must be a purpose with checks = \"proactive\"",
        ),
        (
            _set(("linkage", "agencies"), ["police", "schools"]),
            "dsa.toml: linkage: agencies: 'schools' is not one of the agreement's agencies",
        ),
        (
            _set(("linkage", "service"), "spiffe://northshire/org/northshire-council/broker/hub"),
            "dsa.toml: linkage: service: String should match pattern "
            "'^spiffe://[a-z0-9][a-z0-9.-]{0,62}/org/[a-z0-9][a-z0-9-]{0,62}/linkage/[a-z0-9][a-z0-9-]{0,62}$'",
        ),
        (
            _set(("linkage", "service"), "spiffe://northshire/org/gossip-ltd/linkage/l"),
            "dsa.toml: linkage: service: organisation 'gossip-ltd' is not a party to the agreement",
        ),
        (
            lambda data: data["linkage"].update(agencies=["police", "nhs"], always_review=[]),
            "dsa.toml: linkage: min_agencies: 3 is more than the 2 agencies that publish, and no "
            "always_review category is given: nobody could ever be a candidate",
        ),
    ],
)
def test_problems_name_the_file_the_clause_and_the_problem(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = example_data()
    change(data)
    with pytest.raises(ConfigError) as error:
        parse_agreement(data, "dsa.toml")
    assert str(error.value) == message


def test_every_problem_is_reported_at_once() -> None:
    data = example_data()
    data["permissions"][0]["purposes"] = ["gossip"]
    data["restrictions"][0]["agencies"] = ["schools"]
    with pytest.raises(ConfigError) as error:
        parse_agreement(data, "dsa.toml")
    assert str(error.value).splitlines() == [
        "dsa.toml: permissions[0] (P1): purposes: 'gossip' is not one of the agreement's purposes",
        "dsa.toml: restrictions[0] (R1): agencies: 'schools' is not one of the agreement's agencies "
        "(a party's agencies)",
    ]
