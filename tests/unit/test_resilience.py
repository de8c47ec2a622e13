"""The broker's load shedding (an adaptive limit of checks in flight) and each agency's circuit breaker, with
a fake clock and a fake probe; the same parts with real processes: tests/integration/test_fault_suite.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from broker.admission import Admission, OverloadSection
from broker.resilience import Circuit, CircuitSection, RetrySection, retry_options
from lateral.errors import OverloadedError
from tests.unit.fake_clock import FakeClock


def test_a_fixed_limit_refuses_the_check_beyond_it_with_when_to_retry() -> None:
    admission = Admission(OverloadSection(max_in_flight=2, adaptive=False, target_latency_ms=400))
    admission.enter()
    admission.enter()
    with pytest.raises(OverloadedError) as refused:
        admission.enter()
    assert (
        refused.value.message == "the broker is at capacity and did not start this check; try again shortly"
    )
    assert 0.4 <= refused.value.retry_after_seconds <= 0.8
    admission.leave(5.0)  # however slow, a fixed limit stays
    admission.enter()
    assert (admission.limit, admission.in_flight) == (2, 2)


def test_slow_answers_cut_the_limit_by_a_quarter_at_most_once_per_target_interval() -> None:
    clock = FakeClock()
    admission = Admission(OverloadSection(max_in_flight=100, min_in_flight=10, target_latency_ms=500), clock)
    assert admission.limit == 64
    for _ in range(3):
        admission.enter()
        admission.leave(0.9)
    assert admission.limit == 48  # three slow answers at one instant: one cut
    clock.now += 0.5
    admission.enter()
    admission.leave(0.9)
    assert admission.limit == 36
    for _ in range(20):
        clock.now += 1
        admission.enter()
        admission.leave(0.9)
    assert admission.limit == 10  # never below the minimum


def test_one_slow_agency_does_not_cut_the_limit() -> None:
    admission = Admission(OverloadSection(target_latency_ms=500))
    admission.enter()
    admission.leave(2.4, one_agency_slow=True)
    assert admission.limit == 64


def test_the_limit_grows_by_one_per_limits_worth_of_prompt_answers_only_while_reached() -> None:
    admission = Admission(OverloadSection(max_in_flight=66, target_latency_ms=500))
    admission.enter()
    admission.leave(0.01)
    assert admission.limit == 64  # one check in flight: the limit was not what held anything back
    for _ in range(64):
        admission.enter()
    for _ in range(64):
        admission.leave(0.01)
    assert admission.limit == pytest.approx(64 + 1 / 64)  # only the first leave was at the limit
    for _ in range(200):
        while admission.in_flight < int(admission.limit):
            admission.enter()
        admission.leave(0.01)
    assert admission.limit == 66  # never above the maximum


def test_the_minimum_must_not_exceed_the_maximum() -> None:
    with pytest.raises(ValidationError, match="min_in_flight must not exceed max_in_flight"):
        OverloadSection(max_in_flight=4, min_in_flight=8)


def test_retries_are_grpcs_own_for_unavailable_only_and_can_be_turned_off() -> None:
    options = dict(retry_options(RetrySection(attempts=3, initial_backoff_ms=20, max_backoff_ms=200)))
    config = json.loads(str(options["grpc.service_config"]))
    assert config["methodConfig"][0]["retryPolicy"] == {
        "maxAttempts": 3,
        "initialBackoff": "0.020s",
        "maxBackoff": "0.200s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    assert options["grpc.enable_retries"] == 1
    off = dict(retry_options(RetrySection(attempts=1)))
    assert off["grpc.enable_retries"] == 0
    assert "retryPolicy" not in json.loads(str(off["grpc.service_config"]))["methodConfig"][0]


def state(circuit: Circuit) -> str:
    return circuit.state.value


class Probe:
    """Answers as told, counting the probes."""

    def __init__(self) -> None:
        self.serving = False
        self.calls = 0

    async def __call__(self, timeout: float) -> bool:
        self.calls += 1
        return self.serving


async def test_a_circuit_opens_after_the_failures_in_a_row_and_a_success_resets_the_count() -> None:
    changes: list[tuple[str, str]] = []
    probe = Probe()
    circuit = Circuit(
        "police", CircuitSection(failures=3, probe_every_ms=10), probe, lambda a, s: changes.append((a, s))
    )
    circuit.failed()
    circuit.failed()
    circuit.succeeded()
    circuit.failed()
    circuit.failed()
    assert circuit.allows
    circuit.failed()
    assert (circuit.allows, changes) == (False, [("police", "open")])
    assert circuit.refusal() == "not asked: its adapter kept failing and is probed until it serves (for 0 s)"
    await circuit.close()


async def test_an_open_circuit_is_probed_on_its_own_with_growing_waits_until_the_agency_serves() -> None:
    probe = Probe()
    section = CircuitSection(failures=1, probe_every_ms=10, max_probe_every_ms=40)
    circuit = Circuit("fire", section, probe)
    circuit.failed()
    await asyncio.sleep(0.2)
    # Waits of about 10, 20, 40, 40, 40 ms: a handful of probes, not one per millisecond.
    assert 3 <= probe.calls <= 8
    assert state(circuit) == "open"
    probe.serving = True
    await asyncio.sleep(0.1)
    assert state(circuit) == "half-open"
    assert circuit.allows
    circuit.succeeded()
    assert state(circuit) == "closed"
    await circuit.close()


async def test_a_failure_when_half_open_opens_the_circuit_again_at_once() -> None:
    probe = Probe()
    probe.serving = True
    circuit = Circuit("nhs", CircuitSection(failures=5, probe_every_ms=10), probe)
    for _ in range(5):
        circuit.failed()
    await asyncio.sleep(0.05)
    assert state(circuit) == "half-open"
    circuit.failed()
    assert state(circuit) == "open"
    await circuit.close()


async def test_a_probe_that_breaks_counts_as_a_failed_probe() -> None:
    async def broken(timeout: float) -> bool:
        raise RuntimeError("boom")

    circuit = Circuit("nhs", CircuitSection(failures=1, probe_every_ms=10), broken)
    circuit.failed()
    await asyncio.sleep(0.05)
    assert state(circuit) == "open"
    await circuit.close()
