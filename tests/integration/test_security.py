"""Who may call, over real mutual TLS on 127.0.0.1: certificates (none, another CA's, revoked, expired, a case
system calling an adapter), user assertions (forged, expired, replayed, bound to another system), rate
limits; and hostile input through the whole path. Each refusal has its exact status, and no agency sees
the request."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc import error_details_pb2

from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER
from lateral.errors import field_violations, status_of
from lateral.rpc import secure_channel
from pki.assertion import METADATA_KEY, mint
from pki.authority import Authority
from pki.tls import Tls, TlsSection
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc, common_pb2

ADAPTER_LOGGER = "adapters.core.server"


@pytest.fixture
def adapter_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What the in-process adapters log: a match they ran, or one they refused."""
    caplog.set_level(logging.INFO, logger=ADAPTER_LOGGER)
    return caplog


def matches_run(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ADAPTER_LOGGER and r.getMessage().startswith("check ")
    ]


def client_cert(prepared: Prepared, folder: Path, name: str, **kw: object) -> Tls:
    issued = Authority(prepared.pki.folder).issue("northshire-council", "client", name, out=folder, **kw)  # type: ignore[arg-type]
    return Tls(
        TlsSection(
            ca=str(prepared.pki.folder / "ca.crt"),
            cert=str(issued.certificate),
            key=str(issued.key),
        )
    )


async def call(
    federation: Federation, prepared: Prepared, credentials: grpc.ChannelCredentials, token: str | None = None
) -> grpc.aio.AioRpcError:
    metadata = ((METADATA_KEY, token),) if token is not None else ()
    async with secure_channel(federation.broker_address, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await broker_pb2_grpc.LateralCheckStub(channel).Check(
                prepared.examples.three_agencies.request(), timeout=5, metadata=metadata
            )
    return raised.value


def assertion(tls: Tls, **overrides: object) -> str:
    return mint(tls.private_key, tls.identity, user="u.one", role=DEMO_CALLER.role, **overrides)  # type: ignore[arg-type]


# --- certificates ---------------------------------------------------------------------------------------


async def test_no_client_certificate_is_refused_in_the_handshake(
    federation: Federation, prepared: Prepared, adapter_log: pytest.LogCaptureFixture
) -> None:
    ca = (prepared.pki.folder / "ca.crt").read_bytes()
    error = await call(federation, prepared, grpc.ssl_channel_credentials(root_certificates=ca))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert matches_run(adapter_log) == []


async def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
    federation: Federation, prepared: Prepared, tmp_path: Path, adapter_log: pytest.LogCaptureFixture
) -> None:
    other = Authority.init(tmp_path / "other", "northshire")
    issued = other.issue("northshire-council", "client", "case-system")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(prepared.pki.folder / "ca.crt").read_bytes(),
        private_key=issued.key.read_bytes(),
        certificate_chain=issued.certificate.read_bytes(),
    )
    assert (await call(federation, prepared, credentials)).code() == grpc.StatusCode.UNAVAILABLE
    assert matches_run(adapter_log) == []


async def test_an_expired_certificate_is_refused_in_the_handshake(
    federation: Federation, prepared: Prepared, tmp_path: Path, adapter_log: pytest.LogCaptureFixture
) -> None:
    issued = Authority(prepared.pki.folder).issue(
        "northshire-council",
        "client",
        "old-system",
        out=tmp_path,
        not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(prepared.pki.folder / "ca.crt").read_bytes(),
        private_key=issued.key.read_bytes(),
        certificate_chain=issued.certificate.read_bytes(),
    )
    assert (await call(federation, prepared, credentials)).code() == grpc.StatusCode.UNAVAILABLE
    assert matches_run(adapter_log) == []


async def test_a_revoked_certificate_is_refused_without_a_restart(
    federation: Federation, prepared: Prepared, tmp_path: Path, adapter_log: pytest.LogCaptureFixture
) -> None:
    tls = client_cert(prepared, tmp_path, "revoked-system")
    Authority(prepared.pki.folder).revoke(tmp_path / "northshire-council-client-revoked-system.crt")
    error = await call(federation, prepared, tls.channel_credentials(), assertion(tls))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the client certificate has been revoked",
    )
    assert matches_run(adapter_log) == []


async def test_a_case_system_calling_an_adapter_directly_is_refused(
    federation: Federation, prepared: Prepared, adapter_log: pytest.LogCaptureFixture
) -> None:
    tls = federation.client_tls(DEMO_CALLER)
    assert tls is not None
    request = prepared.examples.three_agencies.request()
    address = f"127.0.0.1:{federation.adapters['police'][1]}"
    async with secure_channel(address, tls.channel_credentials()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await adapter_pb2_grpc.AgencyAdapterStub(channel).Match(
                adapter_pb2.MatchRequest(
                    check_id="x",
                    subject=request.subject,
                    purpose=request.purpose,
                    justification=request.justification,
                    case_ref=request.case_ref,
                    requester=adapter_pb2.Requester(organisation="northshire-council", role="mash-manager"),
                ),
                timeout=5,
            )
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only the federation's broker may ask this adapter for matches",
    )
    assert matches_run(adapter_log) == []


async def test_an_adapter_certificate_may_not_ask_for_checks(
    federation: Federation, prepared: Prepared, adapter_log: pytest.LogCaptureFixture
) -> None:
    issued = prepared.pki.adapters["police"]
    tls = Tls(prepared.pki.section(issued))
    error = await call(federation, prepared, tls.channel_credentials(), assertion(tls))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "only case systems (client certificates) may ask for checks, not a adapter",
    )
    assert matches_run(adapter_log) == []


# --- user assertions ------------------------------------------------------------------------------------


@pytest.fixture
def council(federation: Federation) -> Tls:
    tls = federation.client_tls(DEMO_CALLER)
    assert tls is not None
    return tls


async def test_a_forged_assertion_is_refused(
    federation: Federation, prepared: Prepared, council: Tls, adapter_log: pytest.LogCaptureFixture
) -> None:
    forged = mint(ec.generate_private_key(ec.SECP256R1()), council.identity, user="u", role="mash-manager")
    error = await call(federation, prepared, council.channel_credentials(), forged)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the user assertion is not signed by the calling system's key",
    )
    assert matches_run(adapter_log) == []


async def test_an_expired_assertion_is_refused(
    federation: Federation, prepared: Prepared, council: Tls, adapter_log: pytest.LogCaptureFixture
) -> None:
    old = assertion(council, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    error = await call(federation, prepared, council.channel_credentials(), old)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the user assertion has expired",
    )
    assert matches_run(adapter_log) == []


async def test_a_long_lived_assertion_is_refused(
    federation: Federation, prepared: Prepared, council: Tls, adapter_log: pytest.LogCaptureFixture
) -> None:
    error = await call(federation, prepared, council.channel_credentials(), assertion(council, lifetime=3600))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the user assertion lives longer than 300 s",
    )
    assert matches_run(adapter_log) == []


async def test_a_replayed_assertion_is_refused(
    federation: Federation, prepared: Prepared, council: Tls, adapter_log: pytest.LogCaptureFixture
) -> None:
    token = assertion(council)
    async with secure_channel(federation.broker_address, council.channel_credentials()) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        first = await stub.Check(
            prepared.examples.unknown.request(), timeout=5, metadata=((METADATA_KEY, token),)
        )
        assert first.results
        ran = len(matches_run(adapter_log))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Check(
                prepared.examples.unknown.request(), timeout=5, metadata=((METADATA_KEY, token),)
            )
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the user assertion has already been used (replay)",
    )
    assert len(matches_run(adapter_log)) == ran


async def test_an_assertion_bound_to_another_system_is_refused(
    federation: Federation,
    prepared: Prepared,
    council: Tls,
    tmp_path: Path,
    adapter_log: pytest.LogCaptureFixture,
) -> None:
    other = client_cert(prepared, tmp_path, "other-system")
    claims = jwt.decode(assertion(council), options={"verify_signature": False})
    claims["iss"] = other.identity.uri  # signed by the council's key, claiming to be another system
    token = jwt.encode(claims, council.private_key, algorithm="ES256")
    error = await call(federation, prepared, council.channel_credentials(), token)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "the user assertion was made for another system than the caller",
    )
    # And an assertion made by the other system, presented on the council's connection:
    error = await call(federation, prepared, council.channel_credentials(), assertion(other))
    assert error.details() == "the user assertion is not signed by the calling system's key"
    assert matches_run(adapter_log) == []


async def test_a_role_not_allowed_for_the_purpose_is_refused(
    federation: Federation, prepared: Prepared, council: Tls, adapter_log: pytest.LogCaptureFixture
) -> None:
    token = mint(council.private_key, council.identity, user="u.two", role="receptionist")
    error = await call(federation, prepared, council.channel_credentials(), token)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (error.details() or "").startswith(
        "the data-sharing agreement does not permit this check: police: no permission lets role "
        "'receptionist' of northshire-council ask police for child-safeguarding"
    )
    assert matches_run(adapter_log) == []


async def test_a_user_over_the_rate_limit_is_told_when_to_retry(
    federation: Federation, prepared: Prepared, council: Tls
) -> None:
    limit = 60  # the default per user per minute
    async with secure_channel(federation.broker_address, council.channel_credentials()) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        request = prepared.examples.unknown.request()
        request.purpose = "gossip"  # refused as invalid, after the limit is counted: no agency is asked
        # The bucket refills at limit/60 per second while the calls run: on a slow machine a few more pass.
        started, invalid = time.monotonic(), 0
        while True:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Check(request, timeout=5, metadata=((METADATA_KEY, assertion(council)),))
            if raised.value.code() != grpc.StatusCode.INVALID_ARGUMENT:
                break
            invalid += 1
            assert invalid <= limit + (time.monotonic() - started) * limit / 60 + 1
    assert invalid >= limit
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (raised.value.details() or "").startswith("this user's rate limit is reached; try again in ")
    status = status_of(raised.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1.0


# --- hostile input --------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "Robert'); DROP TABLE nominal;--",
    "' OR '1'='1",
    "%s%s%s%n",
    "{0.__class__}",
    "Ann\u202eeM",  # right-to-left override
    "Ann\x00",
    "Ann\u200b",  # zero-width space
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_names_are_refused_clearly(
    federation: Federation, prepared: Prepared, council: Tls, name: str, adapter_log: pytest.LogCaptureFixture
) -> None:
    request = prepared.examples.unknown.request()
    request.subject.family_name = name
    async with federation.channel(DEMO_CALLER) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await broker_pb2_grpc.LateralCheckStub(channel).Check(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(raised.value)] == ["subject.family_name"]
    assert name not in (raised.value.details() or "")
    assert matches_run(adapter_log) == []


async def test_names_that_look_like_sql_but_are_valid_are_simply_not_known(
    federation: Federation, prepared: Prepared
) -> None:
    request = prepared.examples.unknown.request()
    request.subject.family_name = "O'Drop-Table"
    request.subject.given_names[:] = ["Select"]
    async with federation.channel(DEMO_CALLER) as channel:
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(request, timeout=5)
    assert {r.finding.outcome for r in response.results} == {common_pb2.OUTCOME_NOT_KNOWN}
    assert {r.status.code for r in response.results} == {"OK"}


async def test_a_one_megabyte_request_is_refused_before_it_is_read(
    federation: Federation, prepared: Prepared
) -> None:
    request = prepared.examples.unknown.request()
    request.justification = "x" * 1_000_000
    async with federation.channel(DEMO_CALLER) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await broker_pb2_grpc.LateralCheckStub(channel).Check(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (raised.value.details() or "")


async def test_the_broker_still_answers_after_all_of_that(federation: Federation, prepared: Prepared) -> None:
    async with federation.channel(DEMO_CALLER) as channel:
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(
            prepared.examples.three_agencies.request(), timeout=5
        )
    assert isinstance(response, broker_pb2.CheckResponse)
    assert response.agencies_with_activity == 3
