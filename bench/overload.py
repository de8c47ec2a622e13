"""Goodput above capacity: with load shedding, the broker keeps answering about as many checks as the
agencies can, on time and complete; without, every check queues and goodput collapses.

    python -m bench.overload [--multiples 1,2,4] [--seconds 20] [--deadline 2] [--agency-capacity 2]
                             [--service-ms 25]

The real broker (mutual TLS, the agreement enforced, its audit log on SQLite, user assertions verified)
asks four finite agencies: bare adapter processes (bench/bare.py) answering `--agency-capacity` calls at a
time, each taking `--service-ms` without using the CPU, as an agency's own server on its own machine would.
The agencies, not this machine's two cores, are then the bottleneck, as in a deployment. (In the one-machine
federation of bench/e2e.py the whole machine saturates first, and calls queue in gRPC before any handler
runs, where no limit on checks in flight can see them.)

The broker is started twice: with load shedding off (no limit on checks in flight) and with the default
adaptive limit (broker/admission.py). Capacity is measured first, closed loop (32 callers), shedding off.
Then checks arrive open loop (at a steady rate, whether or not earlier ones were answered, as referrals do)
at 1, 2 and 4 times that capacity, each with a deadline. Goodput is the checks answered within their
deadline with every agency's answer (no TIMEOUT or UNAVAILABLE row) per second. Refused checks
(RESOURCE_EXHAUSTED) come back at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.bare import BareTls, start_bare
from bench.e2e import CACHE
from bench.federation import Federation, make_town, start, write_files
from bench.load import Call, open_loop, percentile
from bench.record import record
from lateral.client import broker_channel
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc

# The broker's [resilience.overload] in each mode: "off" holds every check it is sent.
MODES = {
    "off": {"adaptive": False, "max_in_flight": 100_000},
    "adaptive": {},
}


def _complete(response: broker_pb2.CheckResponse) -> bool:
    return all(r.status.code == "OK" for r in response.results)


@dataclass
class Run:
    """One offered rate in one mode: every call as its caller saw it."""

    mode: str
    multiple: float
    offered: float
    seconds: float
    calls: list[Call] = field(default_factory=list)
    skipped: int = 0
    # The load generator's own CPU, in cores: near 1, it may itself be what delays answers.
    client_cores: float = 0.0

    @property
    def codes(self) -> Counter[str]:
        return Counter(c.code.name for c in self.calls)

    @property
    def on_time(self) -> list[float]:
        """The checks answered within their deadline with every agency's answer."""
        return [c.ms for c in self.calls if c.response is not None and _complete(c.response)]

    @property
    def incomplete(self) -> int:
        """Checks answered, but with an agency that timed out or was not asked."""
        return sum(1 for c in self.calls if c.response is not None and not _complete(c.response))

    def per_second(self, code: str) -> float:
        return self.codes[code] / self.seconds

    def row(self, capacity: float) -> str:
        ok = self.on_time
        p50 = f"{statistics.median(ok):.0f}" if ok else "-"
        p99 = f"{percentile(ok, 0.99):.0f}" if ok else "-"
        goodput = len(ok) / self.seconds
        return (
            f"| {self.multiple:g}x | {self.mode} | {self.offered:.0f} | {goodput:.1f} | "
            f"{100 * goodput / capacity:.0f}% | {self.per_second('RESOURCE_EXHAUSTED'):.1f} | "
            f"{self.per_second('DEADLINE_EXCEEDED'):.1f} | {self.incomplete / self.seconds:.1f} | {p50} | "
            f"{p99} | {self.client_cores:.2f} |"
        )


HEADER = [
    "| offered | shedding | offered checks/s | goodput checks/s | of capacity | refused/s | timed out/s "
    "| incomplete/s | p50 ms (good) | p99 ms (good) | load generator cores |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]


async def _offer(
    federation: Federation, run: Run, requests: list[broker_pb2.CheckRequest], deadline: float
) -> None:
    channels = [broker_channel(federation.address, DEMO_CALLER, federation.client_tls()) for _ in range(4)]
    stubs = [broker_pb2_grpc.LateralCheckStub(c) for c in channels]
    try:
        for n, stub in enumerate(stubs):  # connected and warm before the clock starts
            await stub.Check(requests[n], timeout=10)
        cpu = time.process_time()
        run.skipped = await open_loop(
            stubs,
            requests,
            rate=run.offered,
            seconds=run.seconds,
            timeout=deadline,
            done=run.calls.append,
            outstanding=100_000,
        )
        run.client_cores = (time.process_time() - cpu) / run.seconds
    finally:
        for channel in channels:
            await channel.close()


async def _mode(
    folder: Path, mode: str, args: argparse.Namespace, capacity: float | None
) -> tuple[float, list[Run]]:
    town = make_town(args.cache, 10_000)  # the adapters are bare: the town gives only the requests
    files = write_files(folder, town, 4, "sqlite")
    pki = files.pki
    bare = await start_bare(
        4,
        BareTls.of(pki.broker_tls),
        adapter_tls=[BareTls.of(pki.adapter_tls(a)) for a in files.agencies],
        capacity=args.agency_capacity,
        service_ms=args.service_ms,
    )
    try:
        federation = await start(
            files,
            adapters=bare.adapter_addresses,
            broker_sections={"resilience": {"overload": MODES[mode]}},
        )
    except BaseException:
        await bare.stop()
        raise
    runs = []
    try:
        if capacity is None:
            figures = await federation.measure(
                town.requests,
                sequential=50,
                concurrent=args.capacity_checks,
                adapter_pids=[a.process.pid for a in bare.adapters],
            )
            capacity = figures.rate
            print(f"capacity (closed loop, 32 callers, shedding off): {capacity:.1f} checks/s", flush=True)
        for multiple in args.multiples:
            run = Run(mode, multiple, multiple * capacity, args.seconds)
            started = time.perf_counter()
            await _offer(federation, run, town.requests, args.deadline)
            print(
                f"{mode:>8} {multiple:g}x: {len(run.on_time) / run.seconds:.1f} good/s of {run.offered:.0f} "
                f"offered, {dict(run.codes)}, {run.incomplete} incomplete "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            runs.append(run)
            await asyncio.sleep(3)  # what was still in flight drains
    finally:
        await asyncio.to_thread(federation.stop)
        await bare.stop()
    return capacity, runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agency-capacity", type=int, default=2, help="answers each agency gives at once")
    parser.add_argument("--service-ms", type=float, default=25.0, help="how long each answer takes")
    parser.add_argument("--multiples", default="1,2,4", help="offered load, in multiples of capacity")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per offered rate")
    parser.add_argument("--deadline", type=float, default=2.0, help="each check's deadline, seconds")
    parser.add_argument(
        "--capacity-checks", type=int, default=1500, help="closed-loop checks to find capacity"
    )
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    args.multiples = [float(m) for m in args.multiples.split(",")]
    runs: list[Run] = []
    capacity: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            capacity, more = asyncio.run(_mode(Path(tmp) / mode, mode, args, capacity))
            runs += more
    assert capacity is not None
    lines = [*HEADER, *(r.row(capacity) for r in sorted(runs, key=lambda r: (r.multiple, r.mode)))]
    print("\n".join(lines))
    if args.no_record:
        return
    body = "\n".join(
        [
            "Goodput above capacity, with and without load shedding. The real broker (audit log on SQLite) "
            f"over four finite agencies, each answering {args.agency_capacity} at a time in "
            f"{args.service_ms:g} ms (bare adapters: the agencies are the bottleneck, not this machine); "
            f"capacity {capacity:.1f} checks/s (closed loop, 32 callers, shedding off). Checks arrive "
            f"open loop for {args.seconds:g} s per rate, each with a {args.deadline:g} s deadline; goodput "
            "counts the checks answered within it with every agency's answer.",
            "",
            *lines,
        ]
    )
    multiples = ",".join(f"{m:g}" for m in args.multiples)
    record(
        "overload",
        f"python -m bench.overload --multiples {multiples} --seconds {args.seconds:g} --deadline "
        f"{args.deadline:g} --agency-capacity {args.agency_capacity} --service-ms {args.service_ms:g}",
        body,
    )


if __name__ == "__main__":
    main()
