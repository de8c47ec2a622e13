"""Adapters in their own processes: one killed, one frozen past the deadline. The check still answers on
time, with a row per agency saying what happened."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from broker import BrokerConfig, create_server
from broker.config import AgencyEndpoint, BrokerSection
from lateral.client import broker_channel
from lateral.demo import Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.examples import Example
from policy.trust import PolicySection
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from tests.integration.conftest import AdapterProcess


@pytest.fixture
def example(prepared: Prepared) -> Example:
    """A child known to police, NHS and social care; not to fire."""
    example = prepared.examples.three_agencies
    assert example.expected["fire"] == common_pb2.OUTCOME_NOT_KNOWN
    return example


@pytest.fixture
async def broker_address(
    prepared: Prepared, adapter_processes: dict[str, AdapterProcess]
) -> AsyncIterator[str]:
    config = BrokerConfig(
        broker=BrokerSection(max_agency_timeout_ms=10_000),
        policy=PolicySection(agreement=str(prepared.workdir / AGREEMENT_FILE)),
        agencies=[
            AgencyEndpoint(id=agency, name=agency.title(), address=f"127.0.0.1:{proc.port}")
            for agency, proc in adapter_processes.items()
        ],
    )
    server, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def check(address: str, example: Example, timeout: float) -> tuple[broker_pb2.CheckResponse, float]:
    async with broker_channel(address, DEMO_CALLER) as channel:
        started = time.perf_counter()
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request(), timeout=timeout)
        return response, time.perf_counter() - started


def rows(response: broker_pb2.CheckResponse) -> dict[str, tuple[int, str]]:
    return {r.agency_id: (r.finding.outcome, r.status.code) for r in response.results}


def healthy(example: Example) -> dict[str, tuple[int, str]]:
    return {agency: (outcome, "OK") for agency, outcome in example.expected.items()}


async def test_all_up_in_separate_processes(broker_address: str, example: Example) -> None:
    response, _ = await check(broker_address, example, 5)
    assert rows(response) == healthy(example)


async def test_killed_adapter_is_an_unavailable_row_and_the_rest_answer(
    broker_address: str, adapter_processes: dict[str, AdapterProcess], example: Example
) -> None:
    await check(broker_address, example, 5)  # channels are connected before the kill
    police = adapter_processes["police"].proc
    police.send_signal(signal.SIGKILL)
    police.wait(10)
    response, _ = await check(broker_address, example, 5)
    assert rows(response) == {**healthy(example), "police": (common_pb2.OUTCOME_UNAVAILABLE, "UNAVAILABLE")}
    row = response.results[0]
    assert row.status.detail == "the agency's adapter answered UNAVAILABLE"
    assert row.finding == common_pb2.Finding(outcome=common_pb2.OUTCOME_UNAVAILABLE)
    # Activity still counts from the agencies that answered.
    assert (response.agencies_with_activity, response.review_required) == (2, True)


async def test_hanging_adapter_is_a_timeout_row_within_the_callers_deadline(
    broker_address: str, adapter_processes: dict[str, AdapterProcess], example: Example
) -> None:
    await check(broker_address, example, 5)
    adapter_processes["fire"].proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    deadline = 1.5
    response, elapsed = await check(broker_address, example, deadline)
    assert elapsed < deadline
    assert rows(response) == {**healthy(example), "fire": (common_pb2.OUTCOME_TIMEOUT, "DEADLINE_EXCEEDED")}
    fire = response.results[1]
    assert fire.status.detail.startswith("no answer within ")
    assert 1000 <= fire.status.elapsed_ms < deadline * 1000
    # The other agencies answered promptly, not after the hung one.
    assert all(r.status.elapsed_ms < 1000 for r in response.results if r.agency_id != "fire")


async def test_caller_without_deadline_gets_the_brokers_default(
    broker_address: str, adapter_processes: dict[str, AdapterProcess], example: Example
) -> None:
    adapter_processes["nhs"].proc.send_signal(signal.SIGSTOP)
    async with broker_channel(broker_address, DEMO_CALLER) as channel:
        started = time.perf_counter()
        response = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request())
        elapsed = time.perf_counter() - started
    # default_deadline_ms 3000 less the 100 ms reserve
    assert 2.8 <= elapsed < 3.5
    assert rows(response)["nhs"] == (common_pb2.OUTCOME_TIMEOUT, "DEADLINE_EXCEEDED")


async def test_a_check_with_too_little_of_its_deadline_left_is_refused_at_once(
    broker_address: str, example: Example
) -> None:
    async with broker_channel(broker_address, DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        await stub.Check(example.request(), timeout=5)  # connected
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Check(example.request(), timeout=0.12)  # less than the reserve and 50 ms
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "the check arrived with too little of its deadline left to ask any agency",
    )
    assert time.perf_counter() - started < 0.12
