"""Load against a broker, as a case system would make it: sequential checks for latency, then many at once
for throughput; with the CPU the broker process spent meanwhile."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from lateral.client import broker_channel
from lateral.identity import Caller
from pki.tls import Tls
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc


@dataclass(frozen=True)
class Figures:
    p50: float
    p95: float
    p99: float
    rate: float  # checks/s at the given concurrency
    concurrent_p50: float
    concurrent_p99: float
    cpu_ms_per_check: float  # broker process CPU per check (at concurrency)
    errors: int
    # CPU per check of every process of the federation, broker and adapters (at concurrency); 0 if not asked
    total_cpu_ms_per_check: float = 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process and its live child processes (a broker's workers) have used (Linux
    /proc)."""
    total, family = 0.0, {pid}
    for entry in sorted(Path("/proc").iterdir(), key=lambda e: int(e.name) if e.name.isdigit() else 0):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:
            continue  # ended meanwhile
        if int(entry.name) in family or int(fields[1]) in family:
            family.add(int(entry.name))
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def sequential_ms(
    stub: broker_pb2_grpc.LateralCheckAsyncStub,
    requests: Sequence[broker_pb2.CheckRequest],
    count: int,
    warmup: int = 30,
) -> list[float]:
    """The latency (ms) of `count` checks made one after another, after `warmup` checks not counted."""
    times: list[float] = []
    for i in range(count + warmup if count else 0):
        started = time.perf_counter()
        await stub.Check(requests[i % len(requests)], timeout=10)
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(
    address: str,
    requests: Sequence[broker_pb2.CheckRequest],
    caller: Caller,
    tls: Tls | None,
    *,
    broker_pid: int,
    sequential: int,
    concurrent: int,
    concurrency: int = 32,
    channels: int = 4,
    adapter_pids: Sequence[int] = (),
) -> Figures:
    """Sequential checks (after a warm-up), then `concurrent` checks `concurrency` at a time over a few
    channels, as several case-system connections would."""
    opened = [broker_channel(address, caller, tls) for _ in range(channels)]
    stubs = [broker_pb2_grpc.LateralCheckStub(c) for c in opened]
    errors = 0
    try:
        times = await sequential_ms(stubs[0], requests, sequential)
        left = concurrent
        latencies: list[float] = []

        async def worker(n: int) -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                started = time.perf_counter()
                try:
                    await stubs[n % len(stubs)].Check(requests[left % len(requests)], timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        cpu_before, started = cpu_seconds(broker_pid), time.perf_counter()
        others_before = sum(cpu_seconds(pid) for pid in adapter_pids)
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(broker_pid) - cpu_before
        others = sum(cpu_seconds(pid) for pid in adapter_pids) - others_before
    finally:
        for channel in opened:
            await channel.close()
    return Figures(
        p50=statistics.median(times) if times else 0.0,
        p95=_percentile(times, 0.95) if times else 0.0,
        p99=_percentile(times, 0.99) if times else 0.0,
        rate=concurrent / elapsed,
        concurrent_p50=statistics.median(latencies),
        concurrent_p99=_percentile(latencies, 0.99),
        cpu_ms_per_check=1000 * cpu / concurrent,
        errors=errors,
        total_cpu_ms_per_check=1000 * (cpu + others) / concurrent if adapter_pids else 0.0,
    )
