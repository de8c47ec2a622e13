"""The cost of telemetry: check latency and throughput with telemetry off, metrics only, and traces
sampled at 1%, 10% and 100%, in one run.

    python -m bench.tracing [--people 5000] [--checks 600] [--concurrent 2000] [--rounds 3]

The same federation (broker and four adapters in this process) answers the showcase checks, one at a time
and then 32 at a time, exporting over OTLP/gRPC to a receiver in another process (lateral/otlp_sink.py),
as it would to a collector. It runs in plaintext with the audit logs off, as bench.audit isolates the log:
telemetry costs CPU, and the audit log's fsyncs would hide it in their noise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.load import Figures, measure
from bench.record import record
from broker.limits import LimitsSection
from lateral.demo import Prepared, prepare, start_federation
from lateral.demo.agreement import DEMO_CALLER
from lateral.telemetry import Telemetry, TelemetrySection

# Each round runs every mode once, in this order; the figures are each mode's median over the rounds, so
# the machine's drift during the run spreads over all modes instead of favouring the first.
MODES: list[tuple[str, float | None]] = [
    ("off", None),
    ("metrics only", 0.0),
    ("traces 1%", 0.01),
    ("traces 10%", 0.1),
    ("traces 100%", 1.0),
]


def _telemetry(endpoint: str, sampling: float | None) -> Callable[[str], Telemetry] | None:
    if sampling is None:
        return None
    section = TelemetrySection(otlp_endpoint=endpoint, insecure=True, sampling=sampling)
    return lambda service: Telemetry.from_section(section, service)


async def _run(
    prepared: Prepared, endpoint: str, sampling: float | None, checks: int, concurrent: int
) -> Figures:
    federation = await start_federation(
        prepared,
        insecure_dev=True,
        audit=False,
        limits=LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000),
        telemetry=_telemetry(endpoint, sampling),
    )
    try:
        return await measure(
            federation.broker_address,
            [e.request() for e in prepared.examples.all()],
            DEMO_CALLER,
            federation.client_tls(DEMO_CALLER),
            broker_pid=os.getpid(),  # broker and adapters run in this process
            sequential=checks,
            concurrent=concurrent,
        )
    finally:
        await federation.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--checks", type=int, default=600)
    parser.add_argument("--concurrent", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sink = subprocess.Popen([sys.executable, "-m", "lateral.otlp_sink"], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    endpoint = sink.stdout.readline().rsplit(" ", 1)[1].strip()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = prepare(Path(tmp) / "town", people=args.people, seed=3)
            runs: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode, _ in MODES}
            for round_ in range(args.rounds):
                for mode, sampling in MODES:
                    f = asyncio.run(_run(prepared, endpoint, sampling, args.checks, args.concurrent))
                    p50, p99, rate = f.p50, f.p99, f.rate
                    runs[mode].append((p50, p99, rate))
                    print(
                        f"round {round_ + 1}: {mode}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rate:.0f}/s",
                        flush=True,
                    )
            base_p50 = statistics.median(r[0] for r in runs["off"])
            base_rate = statistics.median(r[2] for r in runs["off"])
            for mode, _ in MODES:
                p50 = statistics.median(r[0] for r in runs[mode])
                p99 = statistics.median(r[1] for r in runs[mode])
                rates = [r[2] for r in runs[mode]]
                rate = statistics.median(rates)
                rows.append(
                    f"| {mode} | {p50:.2f} | {p99:.2f} | {100 * (p50 / base_p50 - 1):+.0f}% | {rate:,.0f} "
                    f"({min(rates):,.0f}–{max(rates):,.0f}) | {100 * (rate / base_rate - 1):+.0f}% |"
                )
    finally:
        sink.terminate()
        received = sink.communicate(timeout=20)[0].strip()
    body = "\n".join(
        [
            f"{args.rounds} rounds, each mode once per round (medians; throughput's range in brackets): "
            f"{args.checks} sequential checks, then {args.concurrent:,} at concurrency 32, against a broker "
            f"and four adapters in one process ({args.people:,} synthetic people; plaintext, audit logs off, "
            f"so that only telemetry differs), exporting over OTLP/gRPC to a receiver in another process "
            f"({received}).",
            "",
            "| telemetry | p50 ms | p99 ms | p50 vs off | checks/s at 32 (range) | throughput vs off |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    print(body)
    if not args.no_record:
        command = f"python -m bench.tracing --people {args.people} --checks {args.checks}"
        record("tracing", f"{command} --concurrent {args.concurrent} --rounds {args.rounds}", body)


if __name__ == "__main__":
    main()
