"""The whole system against the bare limit of its own transport, in one run.

    python -m bench.e2e [--people 1000000] [--sizes 10000,100000,1000000] [--agencies 4,8,16]
                        [--scale-people 100000] [--workers 2] [--sequential 300] [--concurrent 2000]

Every service is its own process on this machine (bench/federation.py): adapters of synthetic people, a
broker with mutual TLS, the signed agreement enforced and audit logs on (SQLite files, then PostgreSQL).
The baseline (bench/bare.py) is the same processes and messages doing no work. This process is the case
system: sequential checks for latency, then checks 32 at a time for throughput, and the broker's CPU.
Last, the broker as several processes (--workers) against one, with PostgreSQL audit logs.

Writes the figures to docs/benchmarks.md (section e2e) and the curves to docs/e2e-people.png and
docs/e2e-agencies.png.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.bare import BareTls, start_bare
from bench.federation import NO_SHEDDING, Federation, Files, Town, make_town, start, write_files
from bench.load import Figures, measure
from bench.record import DOC, record
from lateral.demo.agreement import DEMO_CALLER
from pki.tls import Tls

CACHE = Path(__file__).resolve().parent.parent / ".bench-cache"


async def _system(
    files: Files, town: Town, args: argparse.Namespace, broker_args: tuple[str, ...] = ()
) -> Figures:
    federation: Federation = await start(files, broker_args, broker_sections=NO_SHEDDING)
    try:
        return await federation.measure(town.requests, sequential=args.sequential, concurrent=args.concurrent)
    finally:
        await asyncio.to_thread(federation.stop)


async def _bare(files: Files, town: Town, args: argparse.Namespace) -> Figures:
    """The same processes, certificates and messages, doing no work."""
    pki = files.pki
    bare = await start_bare(
        len(files.agencies),
        BareTls.of(pki.broker_tls),
        adapter_tls=[BareTls.of(pki.adapter_tls(a)) for a in files.agencies],
    )
    try:
        return await measure(
            bare.broker_address,
            town.requests,
            DEMO_CALLER,
            Tls(pki.client_tls(DEMO_CALLER.organisation)),
            broker_pid=bare.broker.process.pid,
            sequential=args.sequential,
            concurrent=args.concurrent,
            adapter_pids=[a.process.pid for a in bare.adapters],
        )
    finally:
        await bare.stop()


def _run(
    folder: Path,
    town: Town,
    agencies: int,
    audit: str,
    args: argparse.Namespace,
    broker_args: tuple[str, ...] = (),
) -> Figures:
    files = write_files(folder, town, agencies, audit)
    return asyncio.run(_system(files, town, args, broker_args))


def _run_bare(folder: Path, town: Town, agencies: int, args: argparse.Namespace) -> Figures:
    files = write_files(folder, town, agencies, "sqlite")
    return asyncio.run(_bare(files, town, args))


def _say(text: str) -> None:
    print(text, flush=True)


def row(name: str, f: Figures, bare: Figures | None = None) -> str:
    """One line of the figures table (HEADER), with ratios to the bare baseline when given."""

    def ratio(ours: float, theirs: float) -> str:
        return f" ({ours / theirs:.1f}x)" if bare is not None else ""

    return (
        f"| {name} | {f.p50:.2f}{ratio(f.p50, bare.p50) if bare else ''} | {f.p95:.2f} | {f.p99:.2f} | "
        f"{f.rate:,.0f}{f' ({100 * f.rate / bare.rate:.0f}%)' if bare else ''} | "
        f"{f.concurrent_p50:.1f} / {f.concurrent_p99:.1f} | {f.cpu_ms_per_check:.2f} | "
        f"{f.total_cpu_ms_per_check:.2f} | {f.errors} |"
    )


HEADER = [
    "| federation | p50 ms (vs bare) | p95 ms | p99 ms | checks/s at 32 (vs bare) | at 32: p50 / p99 ms "
    "| broker CPU ms/check | all processes' CPU ms/check | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000, help="people per agency, main comparison")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="people per agency, for the curve")
    parser.add_argument("--agencies", default="4,8,16", help="agency counts, for the curve")
    parser.add_argument("--scale-people", type=int, default=100_000, help="people per agency, agency curve")
    parser.add_argument(
        "--workers", default="2", help="broker processes to compare with one (PostgreSQL audit); '' for none"
    )
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=2000)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where generated towns are kept")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(n) for n in args.agencies.split(",")]
    workers = [int(n) for n in args.workers.split(",") if n]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        town = make_town(args.cache, args.people)
        _say(
            f"4 agencies of {args.people:,}: bare baseline, then the system with SQLite and PostgreSQL audit"
        )
        bare = _run_bare(base / "bare", town, 4, args)
        _say(row("bare", bare))
        sqlite = _run(base / "sqlite", town, 4, "sqlite", args)
        _say(row("sqlite", sqlite, bare))
        postgres = _run(base / "postgresql", town, 4, "postgresql", args)
        _say(row("postgresql", postgres, bare))
        lines += [
            f"**4 agencies of {args.people:,} people each**, mutual TLS, agreement enforced, audit on:",
            "",
            *HEADER,
            row("bare baseline (no work)", bare),
            row("Lateral, SQLite audit logs", sqlite, bare),
            row("Lateral, PostgreSQL audit logs", postgres, bare),
        ]
        people: dict[int, Figures] = {}
        for size in sizes:
            people[size] = (
                sqlite
                if size == args.people
                else _run(base / f"p{size}", make_town(args.cache, size), 4, "sqlite", args)
            )
            _say(row(f"{size:,} people", people[size]))
        scale_town = make_town(args.cache, args.scale_people)
        agencies: dict[int, tuple[Figures, Figures]] = {}
        for count in counts:
            agencies[count] = (
                _run_bare(base / f"b{count}", scale_town, count, args),
                _run(base / f"a{count}", scale_town, count, "sqlite", args),
            )
            _say(row(f"{count} agencies", agencies[count][1], agencies[count][0]))
        scaled: dict[int, Figures] = {1: postgres}
        for n in workers:
            scaled[n] = _run(base / f"w{n}", town, 4, "postgresql", args, ("--workers", str(n)))
            _say(row(f"{n} broker processes", scaled[n]))
    lines += [
        "",
        "**Cost against people per agency** (4 agencies, SQLite audit logs; docs/e2e-people.png):",
        "",
        *HEADER,
        *(row(f"{size:,} people per agency", f) for size, f in people.items()),
        "",
        f"**Cost against agencies** ({args.scale_people:,} people each, SQLite audit logs; "
        "docs/e2e-agencies.png):",
        "",
        *HEADER,
        *(
            line
            for count, (b, f) in agencies.items()
            for line in (row(f"{count} agencies, bare", b), row(f"{count} agencies, Lateral", f, b))
        ),
        "",
        *_per_agency_call(agencies),
        "",
        f"**Scale-out**: the broker as several processes on one port (SO_REUSEPORT) sharing one PostgreSQL "
        f"audit log; 4 agencies of {args.people:,} (broker CPU summed over its processes):",
        "",
        *HEADER,
        *(row(f"{n} broker process{'es' if n > 1 else ''}", f) for n, f in sorted(scaled.items())),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        _plots(people, agencies)
        command = (
            f"python -m bench.e2e --people {args.people} --sizes {args.sizes} --agencies {args.agencies} "
            f"--scale-people {args.scale_people} --workers '{args.workers}' --sequential {args.sequential} "
            f"--concurrent {args.concurrent}"
        )
        record("e2e", command, body)


def _per_agency_call(agencies: dict[int, tuple[Figures, Figures]]) -> list[str]:
    """Broker CPU per agency call: the slope of CPU per check against the number of agencies asked."""
    if len(agencies) < 2:
        return []
    low, high = min(agencies), max(agencies)

    def slope(which: int) -> float:
        return (agencies[high][which].cpu_ms_per_check - agencies[low][which].cpu_ms_per_check) / (high - low)

    def fixed(which: int) -> float:
        return agencies[low][which].cpu_ms_per_check - slope(which) * low

    return [
        f"Broker CPU per agency call (slope of CPU per check from {low} to {high} agencies): "
        f"Lateral {slope(1):.3f} ms, bare {slope(0):.3f} ms; per check before any call: Lateral "
        f"{fixed(1):.2f} ms, bare {fixed(0):.2f} ms."
    ]


def _plots(people: dict[int, Figures], agencies: dict[int, tuple[Figures, Figures]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    sizes = sorted(people)
    axis.plot(sizes, [people[s].p50 for s in sizes], marker="o", label="p50")
    axis.plot(sizes, [people[s].p99 for s in sizes], marker="o", label="p99")
    axis.set_xscale("log")
    axis.set_xlabel("people per agency (4 agencies)")
    axis.set_ylabel("check latency, ms (sequential)")
    axis.set_ylim(bottom=0)
    axis.legend()
    axis.set_title("Lateral: latency against people per agency")
    figure.tight_layout()
    figure.savefig(DOC.parent / "e2e-people.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    counts = sorted(agencies)
    axis.plot(counts, [agencies[c][1].p50 for c in counts], marker="o", label="Lateral p50")
    axis.plot(counts, [agencies[c][1].p99 for c in counts], marker="o", label="Lateral p99")
    axis.plot(counts, [agencies[c][0].p50 for c in counts], marker="s", linestyle="--", label="bare p50")
    axis.set_xlabel("agencies")
    axis.set_ylabel("check latency, ms (sequential)")
    axis.set_ylim(bottom=0)
    axis.legend()
    axis.set_title("Lateral: latency against number of agencies")
    figure.tight_layout()
    figure.savefig(DOC.parent / "e2e-agencies.png", dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
