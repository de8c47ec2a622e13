"""The whole federation in one process: four adapters and a broker on 127.0.0.1, real SQLite databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from lateral.demo import Federation, Prepared
from lateral.errors import FieldViolation, field_violations
from lateral.rpc import secure_channel
from pki.tls import Tls
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, common_pb2
from tests.integration.truth import expected_activity, person_of, records_of

# From the Northshire agreement: P1's look-back, and R1's categories the NHS never discloses.
P1_LOOKBACK_DAYS = 1825
HIDDEN = {"nhs": frozenset({"sexual-health", "termination-of-pregnancy"})}

if TYPE_CHECKING:
    from protos.lateral.v1.broker_pb2_grpc import LateralCheckAsyncStub as Stub


def request(prepared: Prepared, **overrides: object) -> broker_pb2.CheckRequest:
    """The showcase check of a child known to three agencies, with fields overridden."""
    request = prepared.examples.three_agencies.request()
    for name, value in overrides.items():
        if name == "purpose":
            request.purpose = str(value)
        else:
            setattr(request.subject, name, value)
    return request


async def test_person_known_to_three_agencies_comes_back_known_from_exactly_those(
    broker_stub: Stub, prepared: Prepared
) -> None:
    example = prepared.examples.three_agencies
    response = await broker_stub.Check(example.request(), timeout=5)
    outcomes = {r.agency_id: r.finding.outcome for r in response.results}
    assert outcomes == example.expected
    assert sorted(outcomes.values()).count(common_pb2.OUTCOME_KNOWN) == 3
    assert [r.status.code for r in response.results] == ["OK"] * 4
    person = person_of(prepared, example)
    for row in response.results:
        if row.finding.outcome != common_pb2.OUTCOME_KNOWN:
            continue
        categories, latest, count = expected_activity(
            records_of(prepared, row.agency_id, person),
            since=dt.date.today() - dt.timedelta(days=P1_LOOKBACK_DAYS),
            hidden=HIDDEN.get(row.agency_id, frozenset()),
        )
        assert list(row.finding.categories) == categories
        assert (row.finding.latest_activity_date, row.finding.activity_count) == (latest, count)
    social = next(r for r in response.results if r.agency_id == "socialcare")
    assert social.finding.contact.role.endswith("Team")  # the allocated worker, not the duty desk
    assert social.agency_name == "Northshire Council Social Care"
    assert response.agencies_with_activity == 3
    assert response.agencies_with_recent_activity == 3
    assert response.review_required
    serious = {"child-protection-plan", "child-exploitation", "sexual-offence"}
    released = {c for r in response.results for c in r.finding.categories}
    assert [r.rule_id for r in response.review_reasons] == ["RV1"] + (["RV2"] if serious & released else [])
    assert response.agreement == "northshire-mash-lateral-checks v1"
    assert {r.status.reason for r in response.results} == {"PERMITTED"}
    assert {tuple(r.status.clause_ids) for r in response.results} == {("P1",)}
    assert len(response.check_id) == 32


async def test_every_showcase_answer_matches_the_ground_truth(broker_stub: Stub, prepared: Prepared) -> None:
    for example in prepared.examples.all():
        response = await broker_stub.Check(example.request(), timeout=5)
        got = {r.agency_id: r.finding.outcome for r in response.results if r.agency_id in example.expected}
        assert got == example.expected, example.title
    unknown = await broker_stub.Check(prepared.examples.unknown.request(), timeout=5)
    assert (unknown.agencies_with_activity, unknown.review_required) == (0, False)


@pytest.mark.parametrize(
    ("overrides", "violation"),
    [
        ({"family_name": ""}, FieldViolation("subject.family_name", "is required")),
        (
            {"date_of_birth": "2023-02-30"},
            FieldViolation("subject.date_of_birth", "is not a real calendar date"),
        ),
        (
            {"date_of_birth": (dt.date.today() + dt.timedelta(days=1)).isoformat()},
            FieldViolation("subject.date_of_birth", "must not be in the future"),
        ),
        (
            {"family_name": "A" * 10_240},
            FieldViolation("subject.family_name", "must be at most 100 characters"),
        ),
        (
            {"purpose": "curiosity"},
            FieldViolation(
                "purpose",
                "is not a purpose of this data-sharing agreement "
                "(known: adult-safeguarding, child-safeguarding)",
            ),
        ),
    ],
    ids=["missing-family-name", "impossible-date", "future-dob", "10kB-name", "unknown-purpose"],
)
async def test_invalid_request_is_refused_with_bad_request_and_no_agency_is_asked(
    broker_stub: Stub,
    prepared: Prepared,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, object],
    violation: FieldViolation,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.core.server")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await broker_stub.Check(request(prepared, **overrides), timeout=5)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"invalid request: {violation.field}"
    assert field_violations(error) == [violation]
    assert [r for r in caplog.records if r.name == "adapters.core.server"] == []
    # The same federation does ask every agency for a valid request: the assertion above can fail.
    await broker_stub.Check(request(prepared), timeout=5)
    assert len([r for r in caplog.records if r.name == "adapters.core.server"]) == 4


async def test_list_agencies(broker_stub: Stub) -> None:
    response = await broker_stub.ListAgencies(broker_pb2.ListAgenciesRequest(), timeout=5)
    assert [a.agency_id for a in response.agencies] == ["police", "fire", "nhs", "socialcare"]
    assert [(p.purpose_id, p.checks) for p in response.purposes] == [
        ("child-safeguarding", "people"),
        ("adult-safeguarding", "people"),
        ("household-safeguarding", "households"),
        ("proactive-review", "proactive"),
    ]


async def test_adapter_describe_reports_its_index_and_nothing_personal(
    federation: Federation, prepared: Prepared
) -> None:
    async with federation.adapter_channel("socialcare") as channel:
        stub = adapter_pb2_grpc.AgencyAdapterStub(channel)
        info = await stub.Describe(adapter_pb2.DescribeRequest(), timeout=5)
    assert (info.agency_id, info.agency_name) == ("socialcare", "Northshire Council Social Care")
    records = prepared.data.records["socialcare"].people
    activity = sum(len(r.events) for r in records)
    assert (info.record_count, info.person_count, info.activity_count) == (
        len(records),
        len(records),
        activity,
    )
    assert "s42-enquiry" in info.categories
    age = dt.datetime.now(dt.UTC) - info.index_built_at.ToDatetime(dt.UTC)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)


async def test_adapter_refuses_an_invalid_subject_itself(federation: Federation) -> None:
    async with federation.adapter_channel("police") as channel:
        stub = adapter_pb2_grpc.AgencyAdapterStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Match(
                adapter_pb2.MatchRequest(
                    check_id="x", purpose="child-safeguarding", justification="j", case_ref="C1"
                ),
                timeout=5,
            )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == [FieldViolation("subject", "is required")]


async def test_health_and_reflection_are_served(federation: Federation) -> None:
    targets = [("lateral.v1.LateralCheck", federation.broker_address)]
    targets += [("lateral.v1.AgencyAdapter", f"127.0.0.1:{port}") for _, port in federation.adapters.values()]
    assert len(targets) == 5
    assert federation.pki is not None
    tls = Tls(federation.pki.broker_tls)
    for service, address in targets:
        async with secure_channel(address, tls.channel_credentials()) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        def services(address: str = address) -> list[str]:
            with grpc.secure_channel(address, tls.channel_credentials()) as sync_channel:
                return list(ProtoReflectionDescriptorDatabase(sync_channel).get_services())

        listed = await asyncio.to_thread(services)
        assert service in listed
        assert "grpc.health.v1.Health" in listed
