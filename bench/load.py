"""Load against a broker, as a case system would make it: sequential checks for latency, then many at once
for throughput; with the CPU the broker process spent meanwhile. Or checks at a steady rate (an open loop),
for a soak."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Sequence
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


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of values, by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _family(pid: int) -> dict[int, list[str]]:
    """A process and its live descendants (a broker's workers), each with its /proc stat fields."""
    family: dict[int, list[str]] = {}
    # Ascending pids: a parent is met before its children (pids are not reused within a benchmark).
    for entry in sorted(Path("/proc").iterdir(), key=lambda e: int(e.name) if e.name.isdigit() else 0):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:
            continue  # ended meanwhile
        if int(entry.name) == pid or int(fields[1]) in family:
            family[int(entry.name)] = fields
    return family


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process and its live child processes (a broker's workers) have used (Linux
    /proc)."""
    total = sum(int(fields[11]) + int(fields[12]) for fields in _family(pid).values())
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Footprint:
    """What a process and its children hold: resident memory, open file descriptors, threads."""

    rss_mb: float
    fds: int
    threads: int


def footprint(pid: int) -> Footprint:
    """The footprint of a process and its live children (Linux /proc); zero if it has ended."""
    rss_kb = fds = threads = 0
    for member in _family(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
            count = sum(1 for _ in Path(f"/proc/{member}/fd").iterdir())
        except OSError:
            continue  # ended meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb += int(fields.get("VmRSS", "0 kB").split()[0])
        threads += int(fields["Threads"])
        fds += count
    return Footprint(rss_kb / 1024, fds, threads)


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


@dataclass(frozen=True)
class Call:
    """One check of an open loop: when it was sent (time.monotonic()), how long until its answer or its
    error (ms), the status code, and the answer."""

    sent: float
    ms: float
    code: grpc.StatusCode
    response: broker_pb2.CheckResponse | None


async def open_loop(
    stubs: Sequence[broker_pb2_grpc.LateralCheckAsyncStub],
    requests: Sequence[broker_pb2.CheckRequest],
    *,
    rate: float,
    seconds: float,
    timeout: float,
    done: Callable[[Call], None],
    outstanding: int = 256,
) -> int:
    """Sends a check every 1/rate s for `seconds`, whether or not the earlier ones have been answered (as
    referrals arrive: a slow answer does not slow the arrivals, so it cannot hide itself), in turn over the
    stubs, each with a deadline of `timeout` s; `done` hears each call as it ends. Returns once the last
    has ended.

    Returns:
        How many checks were not sent because `outstanding` calls were already waiting (0 while the broker
        keeps up).
    """
    pending: set[asyncio.Task[None]] = set()
    skipped = 0

    async def one(n: int) -> None:
        sent = time.monotonic()
        try:
            response = await stubs[n % len(stubs)].Check(requests[n % len(requests)], timeout=timeout)
        except grpc.aio.AioRpcError as error:
            done(Call(sent, (time.monotonic() - sent) * 1000, error.code(), None))
        else:
            done(Call(sent, (time.monotonic() - sent) * 1000, grpc.StatusCode.OK, response))

    start = time.monotonic()
    for n in range(int(seconds * rate)):
        # Each send has its own time on the schedule: a late wake-up sends at once, and the rate holds.
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(pending) >= outstanding:
            skipped += 1
            continue
        task = asyncio.create_task(one(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(set(pending))
    return skipped


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
        p95=percentile(times, 0.95) if times else 0.0,
        p99=percentile(times, 0.99) if times else 0.0,
        rate=concurrent / elapsed,
        concurrent_p50=statistics.median(latencies),
        concurrent_p99=percentile(latencies, 0.99),
        cpu_ms_per_check=1000 * cpu / concurrent,
        errors=errors,
        total_cpu_ms_per_check=1000 * (cpu + others) / concurrent if adapter_pids else 0.0,
    )
