"""Faults under sustained load, with real adapter processes and a broker keeping a real audit log: an adapter
killed and restarted, slowed past the deadline, answering errors, flapping; the audit database going away;
more checks than the broker may hold. For each: every call is answered within its deadline, every row says
truthfully what happened, and the audit log verifies with every answered check in it, received and
completed. (A killed broker: test_audit_crash.py; an agency database going away: test_source_outage.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from audit.keys import AuditSection, load_keys
from audit.reader import read_events
from audit.verify import verify_log
from broker import BrokerConfig, create_server
from broker.admission import OverloadSection
from broker.config import AgencyEndpoint, BrokerSection
from broker.limits import LimitsSection
from broker.resilience import CircuitSection, ResilienceSection
from broker.server import BrokerServer
from lateral.client import broker_channel
from lateral.demo import Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.auditing import prepare_audit
from lateral.errors import status_of
from lateral.status_cli import problems
from policy.trust import PolicySection
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from tests.databases import fresh_database, set_connections
from tests.fault_injection import FaultProxy, FaultyFront, Load, Outcome
from tests.integration.conftest import AdapterProcess

DEADLINE = 2.0
OK = "OK"
# A short circuit for tests: open after 3 failures, first probe after 100 ms.
CIRCUIT = CircuitSection(failures=3, probe_every_ms=100, max_probe_every_ms=400, probe_timeout_ms=300)


@dataclass
class Suite:
    """A broker over police (behind a FaultProxy), fire (behind a FaultyFront), nhs and social care
    (direct), with its audit log, and a load ready to run."""

    broker: BrokerServer
    address: str
    audit: AuditSection
    proxy: FaultProxy
    front: FaultyFront
    adapters: dict[str, AdapterProcess]
    load: Load
    expected: list[dict[str, int]]
    stopped: bool = False

    def restart(self, agency: str) -> None:
        old = self.adapters[agency]
        self.adapters[agency] = AdapterProcess(old.config, old.port)
        self.adapters[agency].wait_ready()

    async def stop_broker(self) -> None:
        await self.load.stop()
        if not self.stopped:
            self.stopped = True
            await self.broker.stop(None)


async def truth(address: str, requests: list[broker_pb2.CheckRequest]) -> list[dict[str, int]]:
    """Each request's answers while every agency is well: what a row must say when its agency answers."""
    async with broker_channel(address, DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        answers = [await stub.Check(request, timeout=5) for request in requests]
    for answer in answers:
        assert {r.status.code for r in answer.results} == {OK}
    return [{r.agency_id: r.finding.outcome for r in answer.results} for answer in answers]


@contextlib.asynccontextmanager
async def running(
    prepared: Prepared,
    adapters: dict[str, AdapterProcess],
    audit: AuditSection,
    overload: OverloadSection | None = None,
) -> AsyncIterator[Suite]:
    proxy, front = FaultProxy(adapters["police"].port), FaultyFront(adapters["fire"].port)
    ports = {
        "police": await proxy.start(),
        "fire": await front.start(),
        "nhs": adapters["nhs"].port,
        "socialcare": adapters["socialcare"].port,
    }
    config = BrokerConfig(
        broker=BrokerSection(max_agency_timeout_ms=10_000),
        audit=audit,
        limits=LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000),
        resilience=ResilienceSection(circuit=CIRCUIT, overload=overload or OverloadSection()),
        policy=PolicySection(agreement=str(prepared.workdir / AGREEMENT_FILE)),
        agencies=[AgencyEndpoint(id=a, name=a.title(), address=f"127.0.0.1:{p}") for a, p in ports.items()],
    )
    broker, port = await create_server(config, "127.0.0.1:0", insecure_dev=True)
    await broker.start()
    address = f"127.0.0.1:{port}"
    requests = [e.request() for e in prepared.examples.all()]
    load = Load(address, DEMO_CALLER, requests, deadline=DEADLINE)
    suite = Suite(broker, address, audit, proxy, front, adapters, load, await truth(address, requests))
    try:
        yield suite
    finally:
        await suite.stop_broker()
        await proxy.stop()
        await front.stop()


@pytest.fixture
async def suite(
    prepared: Prepared, adapter_processes: dict[str, AdapterProcess], tmp_path: Path
) -> AsyncIterator[Suite]:
    async with running(prepared, adapter_processes, prepare_audit(tmp_path, ["broker"])["broker"]) as s:
        yield s


def row(outcome: Outcome, agency: str) -> common_pb2.AgencyResult:
    assert outcome.response is not None
    return next(r for r in outcome.response.results if r.agency_id == agency)


def assert_truthful(suite: Suite, outcomes: list[Outcome], faulty: str) -> None:
    """Every call answered within its deadline, one row per agency; the healthy agencies' rows are their
    true answers, the faulty agency's row its true answer or a row saying it could not answer."""
    assert outcomes, "no call was made"
    failed = [(o.code, o.detail) for o in outcomes if o.response is None]
    assert failed == [], failed
    assert max(o.elapsed for o in outcomes) < DEADLINE
    for outcome in outcomes:
        expected = suite.expected[outcome.item]
        assert outcome.response is not None
        got = {r.agency_id: r for r in outcome.response.results}
        assert set(got) == set(expected)
        for agency, r in got.items():
            if agency == faulty and r.status.code != OK:
                assert r.finding == common_pb2.Finding(outcome=r.finding.outcome)  # nothing else said
                assert (r.finding.outcome, r.status.code) in {
                    (common_pb2.OUTCOME_UNAVAILABLE, "UNAVAILABLE"),
                    (common_pb2.OUTCOME_UNAVAILABLE, "INTERNAL"),
                    (common_pb2.OUTCOME_TIMEOUT, "DEADLINE_EXCEEDED"),
                }, (r.finding.outcome, r.status.code)
            else:
                assert (r.finding.outcome, r.status.code) == (expected[agency], OK), agency


async def assert_logged(suite: Suite) -> int:
    """Stops the broker; its log verifies and holds every answered check, received and completed."""
    await suite.stop_broker()
    result = verify_log(suite.audit.url, load_keys(suite.audit).signer.public_key())
    assert result.ok, [str(p) for p in result.problems]
    kinds: dict[str, set[str]] = {}
    for event in read_events(suite.audit.url):
        check_id = (event.payload or {}).get("check_id")
        if check_id:
            kinds.setdefault(str(check_id), set()).add(event.kind)
    answered = [o.response.check_id for o in suite.load.outcomes if o.response is not None]
    missing = [c for c in answered if kinds.get(c) != {"check-received", "check-completed"}]
    assert missing == []
    return len(answered)


def circuit_open(agency: str) -> Callable[[Outcome], bool]:
    def seen(outcome: Outcome) -> bool:
        return outcome.response is not None and row(outcome, agency).status.reason == "CIRCUIT_OPEN"

    return seen


def answering(suite: Suite, agency: str, since: float) -> bool:
    answered = [o for o in suite.load.since(since) if o.response is not None]
    return len(answered) >= 5 and all(row(o, agency).status.code == OK for o in answered[-5:])


async def test_a_killed_adapter_is_not_asked_once_detected_and_is_found_again_when_restarted(
    suite: Suite,
) -> None:
    load = suite.load
    load.start()
    await asyncio.sleep(0.5)
    killed = time.perf_counter()
    suite.adapters["socialcare"].proc.send_signal(signal.SIGKILL)
    suite.adapters["socialcare"].proc.wait(10)
    opened = circuit_open("socialcare")
    await load.run_until(lambda: any(opened(o) for o in load.since(killed)), 10)
    await asyncio.sleep(1.0)
    # Open: the dead agency costs nothing; its row says so at once.
    skipped = [o for o in load.since(killed) if opened(o)]
    assert len(skipped) >= 5
    for outcome in skipped:
        r = row(outcome, "socialcare")
        assert r.status.elapsed_ms <= 5
        assert r.status.detail.startswith("not asked: its adapter kept failing and is probed until it serves")
    async with broker_channel(suite.address, DEMO_CALLER) as channel:
        status = await broker_pb2_grpc.LateralCheckStub(channel).Status(broker_pb2.StatusRequest(), timeout=5)
    circuits = {a.agency_id: a.circuit for a in status.agencies}
    assert circuits == {"police": "closed", "fire": "closed", "nhs": "closed", "socialcare": "open"}
    assert problems(status) == [
        "socialcare: UNREACHABLE (UNAVAILABLE)",
        "socialcare: circuit open: it kept failing; checks do not ask it until it answers a probe",
    ]
    restarted = time.perf_counter()
    suite.restart("socialcare")
    await load.run_until(lambda: answering(suite, "socialcare", restarted), 20)
    assert_truthful(suite, load.outcomes, "socialcare")
    assert await assert_logged(suite) >= 20


async def test_an_adapter_slowed_past_the_deadline_times_out_then_costs_nothing_until_it_recovers(
    suite: Suite,
) -> None:
    load = suite.load
    load.start()
    await asyncio.sleep(0.5)
    slowed = time.perf_counter()
    suite.proxy.set("delay", 5.0)
    opened = circuit_open("police")
    await load.run_until(lambda: any(opened(o) for o in load.since(slowed)), 10)
    answered = [o for o in load.outcomes if o.response is not None]
    assert any(row(o, "police").status.code == "DEADLINE_EXCEEDED" for o in answered)
    await asyncio.sleep(1.0)
    after = [o for o in load.since(time.perf_counter() - 0.8) if o.response is not None]
    assert after
    assert max(o.elapsed for o in after) < 0.5  # no check waits for the slow agency any more
    recovered = time.perf_counter()
    suite.proxy.set("pass")
    await load.run_until(lambda: answering(suite, "police", recovered), 20)
    assert_truthful(suite, load.outcomes, "police")
    await assert_logged(suite)


async def test_errors_are_rows_only_unavailable_is_retried_and_a_failing_agency_is_cut_off(
    suite: Suite,
) -> None:
    load = suite.load
    # The first attempt of every 8th check fails as a lost connection would: retried, nobody notices.
    suite.front.fail_first, suite.front.every = grpc.StatusCode.UNAVAILABLE, 8
    load.start()
    await load.run_until(lambda: len(load.outcomes) >= 40, 20)
    answered = [o for o in load.outcomes if o.response is not None]
    assert all(row(o, "fire").status.code == OK for o in answered)
    attempts = Counter(suite.front.attempts[o.response.check_id] for o in answered if o.response)
    assert set(attempts) == {1, 2}
    assert attempts[2] >= 4
    suite.front.fail_first = None
    await asyncio.sleep(0.3)  # the retried calls are done
    broken = time.perf_counter()
    suite.front.fail_with = grpc.StatusCode.INTERNAL
    opened = circuit_open("fire")
    await load.run_until(lambda: any(opened(o) for o in load.since(broken)), 10)
    internal = [
        o for o in load.outcomes if o.response is not None and row(o, "fire").status.code == "INTERNAL"
    ]
    assert internal
    assert row(internal[0], "fire").status.detail == "the agency's adapter answered INTERNAL"
    assert {suite.front.attempts[o.response.check_id] for o in internal if o.response} == {1}  # not retried
    # Its health says SERVING, so probes let calls through now and then; they fail and it opens again.
    await asyncio.sleep(1.5)
    calls = sum(suite.front.attempts.values())
    await asyncio.sleep(1.5)
    checks = len(load.outcomes)
    assert sum(suite.front.attempts.values()) - calls < 20
    recovered = time.perf_counter()
    suite.front.fail_with = None
    await load.run_until(lambda: answering(suite, "fire", recovered), 20)
    assert_truthful(suite, load.outcomes, "fire")
    assert checks >= 30
    await assert_logged(suite)


async def test_a_flapping_adapter_never_fails_a_check_and_is_asked_again_once_steady(suite: Suite) -> None:
    load = suite.load
    load.start()
    for _ in range(8):
        await asyncio.sleep(0.3)
        suite.proxy.set("refuse")
        await asyncio.sleep(0.3)
        suite.proxy.set("pass")
    steady = time.perf_counter()
    await load.run_until(lambda: answering(suite, "police", steady), 20)
    assert_truthful(suite, load.outcomes, "police")
    unavailable = [o for o in load.outcomes if o.response is not None and row(o, "police").status.code != OK]
    assert unavailable  # the flapping was seen
    await assert_logged(suite)


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from fresh_database("postgresql")


async def test_checks_fail_closed_while_the_audit_database_is_down_and_resume_when_it_returns(
    prepared: Prepared, adapter_processes: dict[str, AdapterProcess], tmp_path: Path, postgres: str
) -> None:
    audit = prepare_audit(tmp_path, ["broker"])["broker"].model_copy(update={"url": postgres})
    async with running(prepared, adapter_processes, audit) as suite:
        load = suite.load
        load.start()
        await asyncio.sleep(0.5)
        down = time.perf_counter()
        await asyncio.to_thread(set_connections, postgres, False)
        await load.run_until(lambda: sum(o.response is None for o in load.since(down)) >= 5, 10)
        refused = [o for o in load.since(down) if o.response is None]
        assert {(o.code, o.detail) for o in refused} == {
            (
                grpc.StatusCode.UNAVAILABLE,
                "the audit log cannot be written, so nothing was done; try again shortly",
            )
        }
        back = time.perf_counter()
        await asyncio.to_thread(set_connections, postgres, True)
        await load.run_until(lambda: sum(o.response is not None for o in load.since(back)) >= 10, 20)
        answered = [o for o in load.outcomes if o.response is not None]
        assert_truthful(suite, answered, "")
        assert max(o.elapsed for o in load.outcomes) < DEADLINE
        assert await assert_logged(suite) >= 20


async def test_above_capacity_the_excess_is_refused_at_once_with_retry_info_and_not_recorded(
    prepared: Prepared, adapter_processes: dict[str, AdapterProcess], tmp_path: Path
) -> None:
    audit = prepare_audit(tmp_path, ["broker"])["broker"]
    fixed = OverloadSection(max_in_flight=2, min_in_flight=1, adaptive=False)
    async with running(prepared, adapter_processes, audit, fixed) as suite:
        load = suite.load
        suite.proxy.set(
            "delay", 0.3
        )  # every check now takes 0.3 s, so six callers want three times the limit
        load.start()
        await load.run_until(lambda: sum(o.response is not None for o in load.outcomes) >= 10, 20)
        await load.stop()
        shed = [o for o in load.outcomes if o.response is None]
        assert shed
        assert {(o.code, o.detail) for o in shed} == {
            (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "the broker is at capacity and did not start this check; try again shortly",
            )
        }
        assert max(o.elapsed for o in shed) < 0.2
        answered = [o for o in load.outcomes if o.response is not None]
        assert_truthful(suite, answered, "")
        # Refused before the audit log: only the answered checks were recorded.
        assert await assert_logged(suite) == len(answered)
        received = [e for e in read_events(audit.url) if e.kind == "check-received"]
        assert len(received) == len(answered) + len(suite.expected)  # and the checks that found the truth


async def test_a_shed_call_carries_retry_info(
    prepared: Prepared, adapter_processes: dict[str, AdapterProcess], tmp_path: Path
) -> None:
    audit = prepare_audit(tmp_path, ["broker"])["broker"]
    fixed = OverloadSection(max_in_flight=1, min_in_flight=1, adaptive=False, target_latency_ms=400)
    async with running(prepared, adapter_processes, audit, fixed) as suite:
        suite.proxy.set("delay", 0.5)
        request = prepared.examples.three_agencies.request()
        async with broker_channel(suite.address, DEMO_CALLER) as channel:
            stub = broker_pb2_grpc.LateralCheckStub(channel)
            first = asyncio.ensure_future(stub.Check(request, timeout=DEADLINE))
            await asyncio.sleep(0.2)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Check(request, timeout=DEADLINE)
            await first
        status = status_of(raised.value)
        assert status is not None
        info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info)
        assert 0.4 <= info.retry_delay.ToTimedelta().total_seconds() <= 0.8
