"""The agency database goes away while the adapter serves: answers keep coming from the last good index,
health and Describe say DEGRADED, and the adapter recovers on its own when the database returns. Also:
the adapter's sessions cannot write, on every database it supports."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.core import create_server, load_adapter_config
from adapters.core.connect import source_engine
from lateral.demo.agreement import DEMO_CALLER, write_signed_agreement
from lateral.rpc import ADAPTER_SERVICE as SERVICE_NAME
from lateral.rpc import SOURCE_HEALTH, insecure_channel
from policy.engine import subject_kind
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, common_pb2
from synth import SynthConfig, generate, write_adapter_configs
from synth.output import write_databases
from tests.databases import fresh_database, set_connections

TODAY = dt.date(2026, 11, 21)


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from fresh_database("postgresql")


async def _until(check: object, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_an_outage_degrades_the_adapter_and_it_recovers_on_its_own(
    postgres: str, tmp_path: Path
) -> None:
    data = generate(SynthConfig(people=2000, seed=4), TODAY)
    write_databases(data, {"police": postgres})
    write_signed_agreement(tmp_path)
    config = load_adapter_config(write_adapter_configs(tmp_path, {"police": postgres})["police"])
    config = config.model_copy(update={"refresh": config.refresh.model_copy(update={"interval_seconds": 1})})
    records = data.records["police"]
    server, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            adapter = adapter_pb2_grpc.AgencyAdapterStub(channel)
            health: Any = health_pb2_grpc.HealthStub(channel)

            async def status() -> tuple[str, int]:
                info = await adapter.Describe(adapter_pb2.DescribeRequest(), timeout=5)
                reply = await health.Check(health_pb2.HealthCheckRequest(service=SOURCE_HEALTH), timeout=5)
                return info.source_status, reply.status

            async def answer() -> int:
                seed = next(r for r in records.people if r.date_of_birth is not None)
                assert seed.date_of_birth is not None
                child = subject_kind(seed.date_of_birth.isoformat(), dt.date.today()) == "child"
                request = adapter_pb2.MatchRequest(
                    check_id="c",
                    subject=common_pb2.Subject(
                        given_names=list(seed.given_names),
                        family_name=seed.family_name,
                        date_of_birth=seed.date_of_birth.isoformat() if seed.date_of_birth else "",
                    ),
                    purpose="child-safeguarding" if child else "adult-safeguarding",
                    justification="j",
                    case_ref="C1",
                    requester=adapter_pb2.Requester(
                        organisation=DEMO_CALLER.organisation, role=DEMO_CALLER.role
                    ),
                )
                return (await adapter.Match(request, timeout=5)).finding.outcome

            assert await status() == ("OK", health_pb2.HealthCheckResponse.SERVING)
            before = await answer()
            set_connections(postgres, allowed=False)

            async def degraded() -> bool:
                return (await status()) == ("DEGRADED", health_pb2.HealthCheckResponse.NOT_SERVING)

            await _until(degraded)
            info = await adapter.Describe(adapter_pb2.DescribeRequest(), timeout=5)
            assert info.source_detail.startswith("since ")
            assert "cannot read the agency database" in info.source_detail
            assert await answer() == before  # still answering, from the last good index
            set_connections(postgres, allowed=True)

            async def recovered() -> bool:
                return (await status()) == ("OK", health_pb2.HealthCheckResponse.SERVING)

            await _until(recovered)
            assert await answer() == before
    finally:
        set_connections(postgres, allowed=True)
        await server.stop(None)


async def test_an_index_too_old_to_trust_stops_the_adapter_answering_until_the_database_returns(
    postgres: str, tmp_path: Path
) -> None:
    data = generate(SynthConfig(people=500, seed=5), TODAY)
    write_databases(data, {"police": postgres})
    write_signed_agreement(tmp_path)
    config = load_adapter_config(write_adapter_configs(tmp_path, {"police": postgres})["police"])
    refresh = config.refresh.model_copy(update={"interval_seconds": 1, "stale_after_seconds": 3})
    config = config.model_copy(update={"refresh": refresh})
    server, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    request = adapter_pb2.MatchRequest(
        check_id="c",
        subject=common_pb2.Subject(given_names=["Ann"], family_name="Other", date_of_birth="1980-01-01"),
        purpose="adult-safeguarding",
        justification="j",
        case_ref="C1",
        requester=adapter_pb2.Requester(organisation=DEMO_CALLER.organisation, role=DEMO_CALLER.role),
    )
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            adapter = adapter_pb2_grpc.AgencyAdapterStub(channel)
            health: Any = health_pb2_grpc.HealthStub(channel)

            async def serving() -> int:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
                return int(reply.status)

            assert (await adapter.Match(request, timeout=5)).finding.outcome == common_pb2.OUTCOME_NOT_KNOWN
            set_connections(postgres, allowed=False)

            async def stale() -> bool:
                return await serving() == health_pb2.HealthCheckResponse.NOT_SERVING

            await _until(stale)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await adapter.Match(request, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert refused.value.details() == (
                "the agency database has been unreadable for too long: its index is more than 3 seconds "
                "old, so this agency does not answer from it; contact the agency"
            )
            info = await adapter.Describe(adapter_pb2.DescribeRequest(), timeout=5)
            assert "not answering: its index of" in info.source_detail
            set_connections(postgres, allowed=True)

            async def back() -> bool:
                return await serving() == health_pb2.HealthCheckResponse.SERVING

            await _until(back)
            assert (await adapter.Match(request, timeout=5)).finding.outcome == common_pb2.OUTCOME_NOT_KNOWN
    finally:
        set_connections(postgres, allowed=True)
        await server.stop(None)


@pytest.fixture
def mariadb() -> Iterator[str]:
    yield from fresh_database("mariadb")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_the_adapters_sessions_cannot_write(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'x.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres" if kind == "postgresql" else "mariadb")
    )
    setup = sa.create_engine(url)
    with setup.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    setup.dispose()
    engine = source_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM t")).scalar() == 0
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()
