"""Household checks through the real federation: an address answered per agency with counts and never who,
robust to a mistyped or missing postcode, exact about house numbers, governed and audited."""

from __future__ import annotations

import re

import grpc
import pytest

from audit.reader import read_events
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER
from lateral.errors import field_violations
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from tests.integration.truth import person_of

RELEASABLE = {
    "outcome",
    "categories",
    "latest_activity_date",
    "activity_count",
    "people_count",
    "contact",
    "resolving_attributes",
}


def household(line: str, postcode: str = "", town: str = "", uprn: str = "") -> broker_pb2.HouseholdRequest:
    return broker_pb2.HouseholdRequest(
        address=common_pb2.Address(lines=[line] if line else [], postcode=postcode, town=town, uprn=uprn),
        purpose="household-safeguarding",
        justification="Fire risk at the family home",
        case_ref="MASH-0142",
    )


async def ask(federation: Federation, request: broker_pb2.HouseholdRequest) -> broker_pb2.CheckResponse:
    async with federation.channel(DEMO_CALLER) as channel:
        return await broker_pb2_grpc.LateralCheckStub(channel).CheckHousehold(request, timeout=10)


def outcomes(response: broker_pb2.CheckResponse) -> dict[str, int]:
    return {r.agency_id: r.finding.outcome for r in response.results}


async def test_a_known_family_home_is_known_with_counts_and_no_one_named(
    federation: Federation, prepared: Prepared
) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    response = await ask(federation, household(child.address.line, child.address.postcode))
    social = next(r for r in response.results if r.agency_id == "socialcare")
    assert social.finding.outcome == common_pb2.OUTCOME_KNOWN
    assert social.finding.people_count >= 1
    assert social.finding.activity_count >= 1
    assert {r.status.reason for r in response.results} == {"PERMITTED"}
    assert {tuple(r.status.clause_ids) for r in response.results} == {("P5",)}
    for row in response.results:
        assert {f.name for f, _ in row.finding.ListFields()} <= RELEASABLE
    # The same home with a mistyped postcode (same sector), and with none at all (the street then decides).
    typo = child.address.postcode[:-1] + ("A" if child.address.postcode[-1] != "A" else "B")
    assert (
        outcomes(await ask(federation, household(child.address.line, typo)))["socialcare"]
        == common_pb2.OUTCOME_KNOWN
    )
    no_postcode = await ask(federation, household(child.address.line, town=child.address.town))
    assert outcomes(no_postcode)["socialcare"] == common_pb2.OUTCOME_KNOWN


async def test_a_house_number_nobody_lives_at_is_not_known(
    federation: Federation, prepared: Prepared
) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    # "Flat 2, 14 High Street" -> "High Street"
    street = re.sub(r"^.*?\b\d+[A-Za-z]?\s+", "", child.address.line)
    assert street
    assert street != child.address.line
    response = await ask(federation, household(f"999 {street}", child.address.postcode))
    assert set(outcomes(response).values()) == {common_pb2.OUTCOME_NOT_KNOWN}


async def test_purposes_are_for_people_or_households(federation: Federation, prepared: Prepared) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    async with federation.channel(DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        person = prepared.examples.three_agencies.request()
        person.purpose = "household-safeguarding"
        with pytest.raises(grpc.aio.AioRpcError) as wrong_rpc:
            await stub.Check(person, timeout=5)
        request = household(child.address.line, child.address.postcode)
        request.purpose = "child-safeguarding"
        with pytest.raises(grpc.aio.AioRpcError) as wrong_purpose:
            await stub.CheckHousehold(request, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as no_address:
            await stub.CheckHousehold(household("", ""), timeout=5)
    assert [(v.field, v.description) for v in field_violations(wrong_rpc.value)] == [
        ("purpose", "is a purpose for checking households (CheckHousehold)")
    ]
    assert [(v.field, v.description) for v in field_violations(wrong_purpose.value)] == [
        ("purpose", "is a purpose for checking people (Check)")
    ]
    assert [(v.field, v.description) for v in field_violations(no_address.value)] == [
        ("address", "give a UPRN, or the address lines")
    ]


async def test_household_checks_are_audited_without_the_address(
    federation: Federation, prepared: Prepared
) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    response = await ask(federation, household(child.address.line, child.address.postcode))
    await federation.stop()
    events = [
        e
        for e in read_events(prepared.audit["broker"].url)
        if (e.payload or {}).get("check_id") == response.check_id
    ]
    assert [e.kind for e in events] == ["household-received", "household-completed"]
    received = events[0].payload or {}
    assert received["address_pseudonym"]
    assert child.address.line.casefold() not in str(received).casefold()
    assert child.address.postcode not in str(received)
    fire = [
        e
        for e in read_events(prepared.audit["fire"].url)
        if (e.payload or {}).get("check_id") == response.check_id
    ]
    assert [e.kind for e in fire] == ["household-disclosure"]
