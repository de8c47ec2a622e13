"""The bare baseline (bench/bare.py): a broker and adapters in processes of their own, doing no work, over
the federation's mutual TLS, answering with messages as large as the real system's."""

from __future__ import annotations

import os
import re
import time

import grpc
import pytest

from bench.bare import (
    BareFederation,
    BareTls,
    agency_id,
    agency_name,
    answered_row,
    canned_match_response,
    check_response,
    match_request,
    start_bare,
)
from lateral.client import broker_channel
from lateral.demo import Prepared, start_federation
from lateral.demo.agreement import DEMO_CALLER
from pki.tls import Tls
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2_grpc, common_pb2

pytestmark = pytest.mark.integration

KNOWN = common_pb2.OUTCOME_KNOWN


def _gone(federation: BareFederation) -> list[int]:
    """The pids of the federation's processes that are still running (or not yet reaped)."""
    alive = []
    for bare in federation.processes:
        try:
            os.kill(bare.process.pid, 0)
        except ProcessLookupError:
            continue
        alive.append(bare.process.pid)
    return alive


async def test_bare_federation_answers_a_real_check_over_mutual_tls_and_refuses_plaintext(
    prepared: Prepared,
) -> None:
    pki = prepared.pki
    started = time.perf_counter()
    federation = await start_bare(
        4,
        BareTls.of(pki.broker_tls),
        adapter_tls=[BareTls.of(pki.adapter_tls(agency)) for agency in sorted(pki.adapters)],
    )
    try:
        assert time.perf_counter() - started < 10
        assert len({federation.broker_address, *federation.adapter_addresses}) == 5
        tls = Tls(pki.client_tls(DEMO_CALLER.organisation))
        async with broker_channel(federation.broker_address, DEMO_CALLER, tls) as channel:
            response = await broker_pb2_grpc.LateralCheckStub(channel).Check(
                prepared.examples.three_agencies.request(), timeout=5
            )
        assert re.fullmatch(r"[0-9a-f]{32}", response.check_id)
        assert abs(response.checked_at.seconds - time.time()) < 60
        assert [(r.agency_id, r.agency_name) for r in response.results] == [
            (agency_id(n), agency_name(n)) for n in range(1, 5)
        ]
        assert [r.status.code for r in response.results] == ["OK"] * 4
        for n, row in enumerate(response.results, start=1):
            assert row.finding == canned_match_response(agency_id(n)).finding
            assert row.finding.outcome == KNOWN
            assert len(row.finding.categories) == 2
            assert list(row.status.clause_ids) == ["P1"]
        assert (response.agencies_with_activity, response.agencies_with_recent_activity) == (4, 4)
        assert response.review_required
        assert [r.rule_id for r in response.review_reasons] == ["RV1"]

        # No client certificate: the handshake fails, at the broker and at an adapter alike.
        anonymous = grpc.ssl_channel_credentials(root_certificates=tls.ca)
        async with grpc.aio.secure_channel(federation.broker_address, anonymous) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await broker_pb2_grpc.LateralCheckStub(channel).Check(
                    prepared.examples.three_agencies.request(), timeout=5
                )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        async with grpc.aio.secure_channel(federation.adapter_addresses[0], anonymous) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await adapter_pb2_grpc.AgencyAdapterStub(channel).Match(adapter_pb2.MatchRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        codes = await federation.stop()
    assert codes == [0] * 5, [bare.lines for bare in federation.processes]
    assert _gone(federation) == []


async def test_an_adapter_that_is_down_is_a_row_not_a_failed_check(prepared: Prepared) -> None:
    federation = await start_bare(2, None)
    try:
        assert await federation.adapters[1].stop(5) == 0
        async with grpc.aio.insecure_channel(federation.broker_address) as channel:
            response = await broker_pb2_grpc.LateralCheckStub(channel).Check(
                prepared.examples.unknown.request(), timeout=5
            )
        assert [r.status.code for r in response.results] == ["OK", "UNAVAILABLE"]
        assert [r.finding.outcome for r in response.results] == [KNOWN, common_pb2.OUTCOME_UNAVAILABLE]
        assert (response.agencies_with_activity, response.review_required) == (1, False)
    finally:
        await federation.stop()
    assert _gone(federation) == []


def _within(bare: int, real: int, margin: float = 0.3) -> bool:
    return (1 - margin) * real <= bare <= (1 + margin) * real


async def test_bare_messages_are_as_large_as_a_real_checks_for_a_known_person(prepared: Prepared) -> None:
    """The real federation's answer for someone three agencies know, against the bare one's, byte for byte
    within 30%: the baseline must carry the same load on the wire to be a limit of the same system."""
    example = prepared.examples.three_agencies
    federation = await start_federation(prepared)
    try:
        async with federation.channel(DEMO_CALLER) as channel:
            real = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request(), timeout=10)
    finally:
        await federation.stop()
    known = [r for r in real.results if r.finding.outcome == KNOWN]
    assert len(known) == 3
    started = time.perf_counter()
    bare_rows = []
    for n in range(1, 5):
        canned = canned_match_response(agency_id(n))
        for row in known:
            real_match = adapter_pb2.MatchResponse(
                agency_id=row.agency_id, finding=row.finding, clause_ids=row.status.clause_ids
            )
            assert _within(canned.ByteSize(), real_match.ByteSize()), (canned, real_match)
        bare_rows.append(answered_row(agency_id(n), agency_name(n), canned, started))
    bare = check_response(real.check_id, bare_rows)
    assert _within(bare.ByteSize(), real.ByteSize()), (bare.ByteSize(), real.ByteSize())
    # What each agency is asked is built from the check as the broker builds it: the check id, the subject
    # and the reasons as sent, and who asks.
    sent = example.request()
    asked = match_request(sent, real.check_id)
    assert asked.check_id == real.check_id
    assert asked.subject == sent.subject
    assert (asked.purpose, asked.justification, asked.case_ref) == (
        sent.purpose,
        sent.justification,
        sent.case_ref,
    )
    assert asked.requester.role == DEMO_CALLER.role
