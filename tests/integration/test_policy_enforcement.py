"""The agreement enforced for real: at the broker (who may ask whom, what is released) and again at each
agency, whose own copy has the last word."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from tomlkit.toml_document import TOMLDocument

from broker import BrokerConfig, create_server
from broker.config import AgencyEndpoint
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER, write_signed_agreement
from lateral.errors import status_of
from lateral.identity import Caller
from lateral.rpc import InsecureNotAllowedError, secure_channel
from policy.trust import AgreementRefusedError, PolicySection
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc, common_pb2
from synth import Person
from tests.integration.truth import records_of

POLICE_OFFICER = Caller("northshire-police", "police-mash", "pc.jones", "mash-police-officer")
RECEPTIONIST = Caller("northshire-council", "case-system", "r.smith", "receptionist")
KNOWN, DENIED = common_pb2.OUTCOME_KNOWN, common_pb2.OUTCOME_DENIED


async def check_as(
    federation: Federation, caller: Caller, request: broker_pb2.CheckRequest, address: str = ""
) -> broker_pb2.CheckResponse:
    """A check from the caller's case system (mutual TLS, with a user assertion)."""
    tls = federation.client_tls(caller)
    async with broker_channel(address or federation.broker_address, caller, tls) as channel:
        return await broker_pb2_grpc.LateralCheckStub(channel).Check(request, timeout=5)


async def refused_as(
    federation: Federation, caller: Caller, request: broker_pb2.CheckRequest
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await check_as(federation, caller, request)
    return raised.value


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = status_of(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


async def test_a_role_the_agreement_does_not_name_is_refused_before_any_agency_is_asked(
    federation: Federation, prepared: Prepared
) -> None:
    error = await refused_as(federation, RECEPTIONIST, prepared.examples.three_agencies.request())
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    refusals = "; ".join(
        f"{agency}: no permission lets role 'receptionist' of northshire-council ask {agency} for "
        "child-safeguarding"
        for agency in ("police", "fire", "nhs", "socialcare")
    )
    assert error.details() == f"the data-sharing agreement does not permit this check: {refusals}"
    info = error_info(error)
    assert info.reason == "ROLE_NOT_PERMITTED"
    assert dict(info.metadata) == {
        "agreement": "northshire-mash-lateral-checks v1",
        "clauses": "P1",
        "agency.police": "ROLE_NOT_PERMITTED",
        "agency.fire": "ROLE_NOT_PERMITTED",
        "agency.nhs": "ROLE_NOT_PERMITTED",
        "agency.socialcare": "ROLE_NOT_PERMITTED",
    }


async def test_a_case_system_without_a_user_assertion_is_unauthenticated(
    federation: Federation, prepared: Prepared
) -> None:
    tls = federation.client_tls(DEMO_CALLER)
    assert tls is not None
    async with secure_channel(federation.broker_address, tls.channel_credentials()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await broker_pb2_grpc.LateralCheckStub(channel).Check(
                prepared.examples.unknown.request(), timeout=5
            )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.details() == "a user assertion is required (metadata x-lateral-assertion)"


async def test_the_police_get_only_what_their_permission_releases(
    federation: Federation, prepared: Prepared
) -> None:
    example = prepared.examples.three_agencies
    response = await check_as(federation, POLICE_OFFICER, example.request())
    rows = {r.agency_id: r for r in response.results}
    police = rows.pop("police")
    assert police.finding == common_pb2.Finding(outcome=DENIED)
    assert (police.status.code, police.status.reason, list(police.status.clause_ids)) == (
        "PERMISSION_DENIED",
        "AGENCY_NOT_PERMITTED",
        ["P3"],
    )
    assert police.status.detail == "not asked: no permission lets northshire-police ask police"
    assert {a: r.finding.outcome for a, r in rows.items()} == {a: example.expected[a] for a in rows}
    for row in rows.values():
        assert (row.status.reason, list(row.status.clause_ids)) == ("PERMITTED", ["P3"])
        # P3 releases outcome, latest date and contact: never categories or counts.
        assert not row.finding.categories
        assert row.finding.activity_count == 0
        if row.finding.outcome == KNOWN:
            assert row.finding.latest_activity_date
            assert row.finding.contact.name


async def test_an_agency_releases_only_what_its_own_agreement_permits(
    federation: Federation, prepared: Prepared
) -> None:
    """Asked directly (as if the broker had not stripped anything), the agency strips it itself."""
    example = prepared.examples.three_agencies
    request = example.request()
    async with federation.adapter_channel("socialcare") as channel:
        answer = await adapter_pb2_grpc.AgencyAdapterStub(channel).Match(
            adapter_pb2.MatchRequest(
                check_id="direct",
                subject=request.subject,
                purpose=request.purpose,
                justification=request.justification,
                case_ref=request.case_ref,
                requester=adapter_pb2.Requester(
                    organisation=POLICE_OFFICER.organisation, role=POLICE_OFFICER.role, user="u", system="s"
                ),
            ),
            timeout=5,
        )
    assert answer.finding.outcome == KNOWN
    assert list(answer.clause_ids) == ["P3"]
    assert (list(answer.finding.categories), answer.finding.activity_count) == ([], 0)
    assert answer.finding.latest_activity_date


@pytest.fixture
async def lax_broker(federation: Federation, prepared: Prepared, tmp_path: Path) -> AsyncIterator[str]:
    """A broker whose (differently) signed agreement also lets receptionists ask: a misconfiguration."""

    def lax(agreement: TOMLDocument) -> None:
        permissions = agreement["permissions"]
        assert isinstance(permissions, list)
        permissions[0]["roles"].append("receptionist")

    assert federation.pki is not None
    config = BrokerConfig(
        tls=federation.pki.broker_tls,
        audit=prepared.audit["broker"],  # two brokers sharing one log, as several processes may
        policy=PolicySection(agreement=str(write_signed_agreement(tmp_path, amend=lax))),
        agencies=[
            AgencyEndpoint(id=agency, name=agency, address=f"127.0.0.1:{port}")
            for agency, (_, port) in federation.adapters.items()
        ],
    )
    server, port = await create_server(config, "127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_each_agency_refuses_what_a_misconfigured_broker_allowed(
    federation: Federation, lax_broker: str, prepared: Prepared
) -> None:
    request = prepared.examples.three_agencies.request()
    response = await check_as(federation, RECEPTIONIST, request, address=lax_broker)
    assert [r.finding for r in response.results] == [common_pb2.Finding(outcome=DENIED)] * 4
    for row in response.results:
        assert (row.status.code, row.status.reason, list(row.status.clause_ids)) == (
            "PERMISSION_DENIED",
            "ROLE_NOT_PERMITTED",
            ["P1"],
        )
        assert row.status.detail == (
            f"refused by the agency: no permission lets role 'receptionist' of northshire-council ask "
            f"{row.agency_id} for child-safeguarding"
        )
    assert (response.agencies_with_activity, response.review_required) == (0, False)


async def test_a_child_only_purpose_refuses_an_adult(federation: Federation, prepared: Prepared) -> None:
    request = prepared.examples.three_agencies.request()
    request.subject.date_of_birth = "1990-05-05"
    error = await refused_as(federation, DEMO_CALLER, request)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        "the data-sharing agreement does not permit this check: purpose child-safeguarding is for children "
        "(under 18) only, and the subject is not"
    )
    assert error_info(error).reason == "SUBJECT_OUT_OF_SCOPE"


def _first(
    prepared: Prepared, agency: str, test: Callable[[Person, list[dt.date], list[str]], bool]
) -> Person:
    """The first person with one clean record at the agency, a unique name and date of birth, and activity
    (dates, categories) passing test."""
    people = list(prepared.data.population.people())
    counts: dict[tuple[str, str, dt.date], int] = {}
    for p in people:
        key = (p.given_names[0], p.family_name, p.date_of_birth)
        counts[key] = counts.get(key, 0) + 1
    clean = {r.person_id for r in prepared.data.records[agency].truth if not r.errors}
    for person in people:
        if counts[(person.given_names[0], person.family_name, person.date_of_birth)] > 1:
            continue
        if person.person_id not in clean:
            continue
        records = records_of(prepared, agency, person)
        if len(records) != 1:
            continue
        events = records[0].events
        if test(person, [e.date for e in events], [e.category for e in events]):
            return person
    raise LookupError("no such person in the synthetic town")


def _request(person: Person) -> broker_pb2.CheckRequest:
    today = dt.date.today()
    child = person.age_on(today) < 18
    return broker_pb2.CheckRequest(
        subject=common_pb2.Subject(
            given_names=[person.given_names[0]],
            family_name=person.family_name,
            date_of_birth=person.date_of_birth.isoformat(),
            address=common_pb2.Address(postcode=person.address.postcode),
        ),
        purpose="child-safeguarding" if child else "adult-safeguarding",
        justification="Referral",
        case_ref="MASH-1",
    )


async def test_activity_before_the_look_back_is_neither_counted_nor_released(
    federation: Federation, prepared: Prepared
) -> None:
    # The demo caller looks back 1825 days for children, 1095 for adults: older activity is as if unrecorded.
    oldest_allowed = dt.date.today() - dt.timedelta(days=1095)
    person = _first(
        prepared,
        "police",
        lambda p, dates, _: bool(dates) and max(dates) < oldest_allowed - dt.timedelta(days=800),
    )
    response = await check_as(federation, DEMO_CALLER, _request(person))
    police = next(r for r in response.results if r.agency_id == "police")
    assert police.finding.outcome == KNOWN
    assert (
        police.finding.latest_activity_date,
        police.finding.activity_count,
        list(police.finding.categories),
    ) == ("", 0, [])


async def test_a_category_the_nhs_never_discloses_is_neither_counted_nor_released(
    federation: Federation, prepared: Prepared
) -> None:
    recent = dt.date.today() - dt.timedelta(days=700)
    person = _first(
        prepared,
        "nhs",
        lambda p, dates, categories: (
            "sexual-health" in categories and len(set(categories)) > 1 and all(d >= recent for d in dates)
        ),
    )
    [record] = records_of(prepared, "nhs", person)
    shown = [e for e in record.events if e.category != "sexual-health"]
    response = await check_as(federation, DEMO_CALLER, _request(person))
    nhs = next(r for r in response.results if r.agency_id == "nhs")
    assert nhs.finding.outcome == KNOWN
    assert "sexual-health" not in nhs.finding.categories
    assert nhs.finding.activity_count == len(shown)
    assert nhs.finding.latest_activity_date == max(e.date for e in shown).isoformat()


async def test_services_refuse_to_start_on_a_tampered_or_production_agreement(tmp_path: Path) -> None:
    path = write_signed_agreement(tmp_path)
    config = BrokerConfig(
        policy=PolicySection(agreement=str(path)),
        agencies=[AgencyEndpoint(id="police", name="Police", address="127.0.0.1:9")],
    )
    original = path.read_text()
    path.write_text(original.replace('deployment = "development"', 'deployment = "production"'))
    with pytest.raises(AgreementRefusedError) as refused:
        await create_server(config, "127.0.0.1:0", insecure_dev=True)
    assert refused.value.reason == "TAMPERED"
    # Signed as production, plaintext is refused outright.
    write_signed_agreement(tmp_path, amend=lambda d: d["agreement"].update({"deployment": "production"}))
    with pytest.raises(InsecureNotAllowedError) as insecure:
        await create_server(config, "127.0.0.1:0", insecure_dev=True)
    assert str(insecure.value) == (
        "the broker runs under an agreement whose deployment is 'production': plaintext (--insecure-dev) is "
        "refused"
    )
