"""`LateralCheck.Status` and `lateral status`: the federation's health as the broker sees it."""

from __future__ import annotations

import json

import grpc
import pytest

from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc
from tests.integration.test_cli import run

AGREEMENT = "northshire-mash-lateral-checks v1"


def _connection(prepared: Prepared, federation: Federation) -> list[str]:
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    return ["--broker", federation.broker_address, "--ca", tls.ca, "--cert", tls.cert, "--key", tls.key]


async def test_status_shows_every_agency_serving_its_index_under_the_agreement(
    federation: Federation,
) -> None:
    async with federation.channel(DEMO_CALLER) as channel:
        status = await broker_pb2_grpc.LateralCheckStub(channel).Status(broker_pb2.StatusRequest(), timeout=5)
    assert status.agreement == AGREEMENT
    assert status.audit_events >= 2  # the agreement and the log key, at least
    assert status.started_at.seconds > 0
    assert [a.agency_id for a in status.agencies] == ["police", "fire", "nhs", "socialcare"]
    for row in status.agencies:
        index = federation.adapters[row.agency_id][0].servicer.index
        assert (row.health, row.source_health, row.detail) == ("SERVING", "SERVING", "")
        assert (row.describe.record_count, row.describe.activity_count) == (
            index.record_count,
            index.activity_count,
        )
        assert row.describe.agreement == AGREEMENT
        assert row.describe.source_status == "OK"
        assert row.endpoint == f"127.0.0.1:{federation.adapters[row.agency_id][1]}"


async def test_status_marks_a_stopped_adapter_unreachable_and_the_command_exits_1(
    federation: Federation, prepared: Prepared
) -> None:
    code, out, err = await run("status", *_connection(prepared, federation))
    assert code == 0, err
    assert "police" not in err
    assert "SERVING" in out
    assert AGREEMENT in out

    await federation.adapters["police"][0].stop(None)
    code, out, err = await run("status", *_connection(prepared, federation), "--json")
    assert code == 1, err
    police = json.loads(out)["agencies"][0]
    assert (police["agency_id"], police["health"], police["detail"]) == (
        "police",
        "UNREACHABLE",
        "UNAVAILABLE",
    )
    assert "describe" not in police
    code, out, _ = await run("status", *_connection(prepared, federation))
    assert code == 1
    assert "! police: UNREACHABLE (UNAVAILABLE)" in out


async def test_status_needs_a_federation_certificate(federation: Federation) -> None:
    async with grpc.aio.insecure_channel(federation.broker_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await broker_pb2_grpc.LateralCheckStub(channel).Status(broker_pb2.StatusRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # no TLS, no handshake


async def test_status_without_a_broker_exits_3(prepared: Prepared) -> None:
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    code, _, err = await run(
        "status", "--broker", "127.0.0.1:1", "--ca", tls.ca, "--cert", tls.cert, "--key", tls.key
    )
    assert code == 3
    assert "cannot ask the broker at 127.0.0.1:1 (UNAVAILABLE)" in err
