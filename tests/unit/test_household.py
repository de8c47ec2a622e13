"""Household addresses: premises parsed from how people write them, and when two are the same home."""

from __future__ import annotations

import pytest

from adapters.core.household import Premises, premises, same_premises


def test_premises_are_read_from_how_people_write_addresses() -> None:
    assert premises("Flat 2, 14 High St") == Premises(
        "14", "", "2", frozenset(), frozenset({"high", "street"})
    )
    assert premises("14B HIGH STREET") == Premises("14", "b", "", frozenset(), frozenset({"high", "street"}))
    assert premises("Rose Cottage, Mill Ln") == Premises(
        name=frozenset({"rose", "cottage"}), street=frozenset({"mill", "lane"})
    )
    assert premises("Apartment 7, The Maltings, 3 Quay Rd").number == "3"


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ("14 High Street", "14 High St", "same"),
        ("14 High Street", "16 High Street", "different"),  # a different house number never matches
        ("14 High Street", "14 Low Street", "different"),
        ("14a High Street", "14b High Street", "different"),
        ("14a High Street", "14A high street", "same"),
        ("Flat 2, 14 High St", "Flat 3, 14 High St", "different"),
        ("Flat 2, 14 High St", "flat 2 14 high street", "same"),
        ("Flat 2, 14 High St", "14 High St", "maybe"),  # the building, or one flat in it
        ("Flat 2, 14 High St", "14b High Street", "maybe"),  # units numbered two ways
        ("Rose Cottage, Mill Lane", "Rose Cottage Mill Ln", "same"),
        ("Rose Cottage, Mill Lane", "Ivy Cottage, Mill Lane", "different"),
        ("Rose Cottage, Mill Lane", "12 Mill Lane", "maybe"),
        ("The Old Rectory, Church Lane", "The Old Rectory, Church Ln", "same"),
    ],
)
def test_when_two_addresses_are_the_same_home(a: str, b: str, verdict: str) -> None:
    assert same_premises(premises(a), premises(b)) == verdict
    assert same_premises(premises(b), premises(a)) == verdict
