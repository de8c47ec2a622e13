"""Soak: checks at a steady rate for a long time while the adapters restart in turn.

    python -m bench.soak [--minutes 30] [--rate 20] [--restart-every 120] [--sample-every 10]
                         [--deadline 2] [--people 10000] [--audit sqlite|postgresql] [--workers 1]

The federation of bench/federation.py (four adapters of `--people` synthetic people and a broker, each its
own process, mutual TLS, the signed agreement enforced, audit logs on). This process is the case system:
it sends a check every 1/rate s whatever the earlier ones are doing (an open loop, well under capacity),
each with a deadline. Every `--restart-every` s one adapter is restarted on its port, in turn, alternately
with SIGTERM (a graceful stop) and SIGKILL (a crash). Every `--sample-every` s it prints a line: the
broker's resident memory, open file descriptors and threads (with its workers'), the adapters' memory and
descriptors, and the checks of the interval (answered, failed by code, rows UNAVAILABLE or TIMEOUT,
latency).

At the end it stops every service gracefully, verifies each audit log, and matches every acknowledged
check with the broker's log (and each agency's row with that agency's disclosures): "events lost" must be
0. Then the verdict: the first fifth of the run against the last for memory, descriptors, threads,
latency and the error rate outside restart windows (bench/_soak.py says what counts), and the slope of the
broker's memory. Unless --no-record, it plots docs/soak.png and records the figures in docs/benchmarks.md
(section soak).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench._soak import (
    Account,
    Answer,
    Interval,
    Restart,
    Sample,
    Timeline,
    account,
    by_sample,
    plot,
    trends,
)
from bench.e2e import CACHE
from bench.federation import Federation, Files, Town, make_town, start, write_files
from bench.load import Call, Footprint, footprint, open_loop
from bench.record import DOC, record
from lateral.client import broker_channel
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2_grpc

CHART = DOC.parent / "soak.png"


def _say(text: str) -> None:
    print(text, flush=True)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):3d}:{int(seconds % 60):02d}"


@dataclass
class Run:
    """What the soak gathers while it runs."""

    start: float
    timeline: Timeline
    answers: list[Answer]
    samples: list[Sample]
    skipped: int = 0


def _adapters(federation: Federation) -> Footprint:
    parts = [footprint(federation.adapter_pid(a)) for a in federation.agencies]
    return Footprint(sum(p.rss_mb for p in parts), sum(p.fds for p in parts), sum(p.threads for p in parts))


async def _sample(federation: Federation, run: Run, every: float, seconds: float) -> None:
    """A sample and a progress line every `every` s, and one at the end of the load."""
    ticks = [every * k for k in range(1, int(seconds / every) + 1)]
    if not ticks or ticks[-1] < seconds:
        ticks.append(seconds)
    seen = 0
    for tick in ticks:
        await asyncio.sleep(max(0.0, run.start + tick - time.monotonic()))
        broker = await asyncio.to_thread(footprint, federation.broker_pid)
        adapters = await asyncio.to_thread(_adapters, federation)
        run.samples.append(Sample(tick, broker, adapters))
        ended, seen = run.answers[seen:], len(run.answers)
        _say(
            f"{_clock(tick)}  broker {broker.rss_mb:.1f} MB {broker.fds} fds {broker.threads} threads; "
            f"adapters {adapters.rss_mb:.0f} MB {adapters.fds} fds; ended: {Interval.of(ended).line()}"
        )


async def _restart(federation: Federation, run: Run, every: float, seconds: float) -> None:
    """Restarts one adapter every `every` s, in turn, alternately SIGTERM and SIGKILL (each agency gets
    both in turn); none so late that it could not settle before the end."""
    agencies = federation.agencies
    margin = run.timeline.deadline + run.timeline.settle
    k = 0
    while every * (k + 1) + margin < seconds:
        await asyncio.sleep(max(0.0, run.start + every * (k + 1) - time.monotonic()))
        agency, kill = agencies[k % len(agencies)], (k + k // len(agencies)) % 2 == 1
        restart = Restart(agency, "SIGKILL" if kill else "SIGTERM", time.monotonic() - run.start)
        run.timeline.restarts.append(restart)
        await federation.restart(agency, kill=kill)
        restart.ready = time.monotonic() - run.start
        _say(
            f"{_clock(restart.ready)}  restarted {agency} ({restart.signal} at "
            f"{_clock(restart.stopped).strip()}): listening again after "
            f"{restart.ready - restart.stopped:.1f} s"
        )
        k += 1


async def _soak(files: Files, town: Town, args: argparse.Namespace) -> tuple[Run, Account]:
    broker_args = ("--workers", str(args.workers)) if args.workers > 1 else ()
    federation = await start(files, broker_args)
    try:
        channels = [
            broker_channel(federation.address, DEMO_CALLER, federation.client_tls()) for _ in range(4)
        ]
        stubs = [broker_pb2_grpc.LateralCheckStub(c) for c in channels]
        try:
            for n, stub in enumerate(stubs):  # connected and warm before the clock starts
                await stub.Check(town.requests[n], timeout=10)
            seconds = args.minutes * 60
            run = Run(time.monotonic(), Timeline(args.deadline, args.settle), [], [])
            baseline = footprint(federation.broker_pid)
            _say(
                f"soak: {args.minutes:g} min at {args.rate:g} checks/s (deadline {args.deadline:g} s), "
                f"an adapter restarted every {args.restart_every:g} s; "
                f"broker at start {baseline.rss_mb:.1f} MB "
                f"{baseline.fds} fds {baseline.threads} threads"
            )

            def done(call: Call) -> None:
                run.answers.append(Answer.of(call, run.start))

            load = asyncio.create_task(
                open_loop(
                    stubs, town.requests, rate=args.rate, seconds=seconds, timeout=args.deadline, done=done
                )
            )
            tasks = [
                load,
                asyncio.create_task(_sample(federation, run, args.sample_every, seconds)),
                asyncio.create_task(_restart(federation, run, args.restart_every, seconds)),
            ]
            try:
                # A restart that fails (an adapter that does not come back) ends the soak at once.
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in tasks:
                    error = task.exception() if task.done() else None
                    if error is not None:
                        raise error
                run.skipped = load.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for channel in channels:
                await channel.close()
        _say("stopping every service gracefully, then verifying the audit logs...")
        await asyncio.to_thread(federation.stop_processes)
        verifying = time.monotonic()
        audit = await asyncio.to_thread(account, files.audit, run.answers)
        _say(f"audit logs read and verified in {time.monotonic() - verifying:.0f} s")
    finally:
        await asyncio.to_thread(federation.stop)
    return run, audit


def _report(run: Run, audit: Account, args: argparse.Namespace) -> tuple[list[str], list[Interval]]:
    """The summary (markdown lines) and the figures per sample."""
    seconds = args.minutes * 60
    timeline, answers = run.timeline, run.answers
    timeline.recover(answers)
    whole = Interval.of(answers)
    unexpected = sum(map(timeline.unexpected, answers))
    late = sum(1 for a in answers if a.ms > args.deadline * 1000 + 250)
    found, rss_slope = trends(run.samples, answers, timeline, seconds)
    restarts = timeline.restarts
    down = [r.ready - r.stopped for r in restarts]
    recovery = [r.recovered - r.ready for r in restarts if r.recovered is not None]
    failed = ", ".join(f"{n} {code}" for code, n in sorted(whole.failed.items())) or "none"
    agencies = sorted({agency for agency, _ in whole.by_agency})
    lines = [
        f"**{args.minutes:g} minutes at {args.rate:g} checks/s**, deadline {args.deadline:g} s, "
        f"4 agencies of {args.people:,} people, {args.audit} audit logs"
        f"{f', broker with {args.workers} processes' if args.workers > 1 else ''}; "
        f"an adapter restarted every {args.restart_every:g} s in turn, alternately SIGTERM and SIGKILL "
        "(docs/soak.png):",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| checks sent / answered | {whole.sent:,} / {whole.answered:,} |",
        f"| failed calls | {failed} |",
        f"| not sent (256 calls already outstanding) | {run.skipped} |",
        f"| past their deadline by > 250 ms | {late} |",
        f"| latency p50 / p99 (answered checks) | {whole.p50:.1f} / {whole.p99:.1f} ms |",
        f"| restarts | {len(restarts)} ({sum(r.signal == 'SIGKILL' for r in restarts)} SIGKILL) |",
        f"| adapter down (stop asked to listening again), median / max | "
        f"{_median(down):.1f} / {max(down, default=0):.1f} s |",
        f"| first answer after listening again, median / max | "
        f"{_median(recovery):.1f} / {max(recovery, default=0):.1f} s "
        f"({len(restarts) - len(recovery)} never answered) |",
        f"| rows UNAVAILABLE / TIMEOUT (of {sum(whole.rows.values()):,}) | {whole.rows['UNAVAILABLE']:,} / "
        f"{whole.rows['TIMEOUT']:,} |",
        f"| checks with an error outside restart windows | {unexpected} |",
        f"| broker RSS slope after the first fifth | {rss_slope:+.3f} MB/min ({rss_slope * 60:+.1f} MB/h) |",
        *(f"| audit log {service} | {text} |" for service, text in audit.verified.items()),
        f"| acknowledged checks / check-completed events lost | {audit.acknowledged:,} / {audit.lost} |",
        f"| rows differing from the broker's log / disclosures lost at agencies | "
        f"{audit.rows_differing} / {audit.disclosures_lost} |",
        f"| checks received but never completed (their calls failed) | {audit.unfinished} |",
        "",
        f"Rows per agency (an agency's rows may be bad from {args.deadline:g} s before it is stopped to "
        f"{args.settle:g} s after it listens again):",
        "",
        "| agency | restarts | rows answered | UNAVAILABLE | of which not asked (circuit open) | TIMEOUT "
        "| bad outside its restarts |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_agency_row(agency, whole, timeline, answers) for agency in agencies),
        "",
        "First fifth of the run against the last (medians of the samples; latency and errors of the checks "
        "sent then):",
        "",
        "| series | first fifth | last fifth | change | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
        *(
            f"| {t.name} | {t.value(t.first)} | {t.value(t.last)} | {t.last - t.first:+,.2f} | "
            f"{'**grew**' if t.grew else 'flat'} |"
            for t in found
        ),
    ]
    lines += [
        "",
        "Restarts (the first answer is that of the first check sent after the adapter listened again that it "
        "answered):",
        "",
        "| at | agency | signal | down (stop asked to listening) | first answer after listening |",
        "| ---: | --- | --- | ---: | ---: |",
    ]
    for r in restarts:
        at, gone = _clock(r.stopped).strip(), f"{r.ready - r.stopped:.1f} s"
        recovered = f"{r.recovered - r.ready:.1f} s" if r.recovered is not None else "never"
        lines.append(f"| {at} | {r.agency} | {r.signal} | {gone} | {recovered} |")
        _say(f"restart {at} {r.agency} {r.signal}: down {gone}, first answer {recovered} after listening")
    for t in found:
        _say(str(t))
    _say(f"broker RSS slope after the first fifth: {rss_slope:+.3f} MB/min")
    _say(f"events lost: {audit.lost}")
    return lines, by_sample(run.samples, answers)


def _agency_row(agency: str, whole: Interval, timeline: Timeline, answers: list[Answer]) -> str:
    outside = sum(
        1 for a in answers for row in a.rows if row.agency == agency and timeline.unexplained(a, row)
    )
    return (
        f"| {agency} | {sum(r.agency == agency for r in timeline.restarts)} | "
        f"{whole.by_agency[agency, 'answered']:,} | {whole.by_agency[agency, 'UNAVAILABLE']:,} | "
        f"{whole.by_agency[agency, 'CIRCUIT_OPEN']:,} | {whole.by_agency[agency, 'TIMEOUT']:,} | {outside} |"
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="checks per second (open loop)")
    parser.add_argument("--restart-every", type=float, default=120.0, help="seconds between adapter restarts")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--deadline", type=float, default=2.0, help="each check's deadline, seconds")
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds after a restart during which its bad rows are expected",
    )
    parser.add_argument("--people", type=int, default=10_000, help="people per agency")
    parser.add_argument("--audit", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="broker processes")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where generated towns are kept")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        town = make_town(args.cache, args.people)
        files = write_files(Path(tmp), town, 4, args.audit)
        run, audit = asyncio.run(_soak(files, town, args))
    lines, intervals = _report(run, audit, args)
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        plot(run.samples, intervals, run.timeline.restarts, CHART)
        command = (
            f"python -m bench.soak --minutes {args.minutes:g} --rate {args.rate:g} "
            f"--restart-every {args.restart_every:g} --sample-every {args.sample_every:g} "
            f"--deadline {args.deadline:g} --people {args.people} --audit {args.audit}"
            f"{f' --workers {args.workers}' if args.workers > 1 else ''}"
        )
        record("soak", command, body)
    if not audit.ok or audit.lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
