"""The broker's own capacity, and what a second broker process adds.

    python -m bench.scaleout [--workers 1,2] [--concurrent 3000] [--audit postgresql]

In the full federation (bench/e2e.py) the four adapters take most of this machine's two cores, so more
broker processes cannot show there what they add. Here the real broker (mutual TLS, agreement enforced,
audit log on, user assertions verified) asks four bare adapters (bench/bare.py: do-nothing processes
answering with real-sized messages), so the broker is the bottleneck: throughput at concurrency 32 with 1
and with N broker processes (`--workers`, SO_REUSEPORT) sharing one PostgreSQL audit log. The load comes
from 4 channels, as from several case-system connections, so that the kernel can spread them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.bare import BareTls, start_bare
from bench.e2e import CACHE, HEADER, row
from bench.federation import NO_SHEDDING, make_town, start, write_files
from bench.load import Figures
from bench.record import record


async def _measure(folder: Path, workers: int, args: argparse.Namespace) -> Figures:
    town = make_town(args.cache, 10_000)  # the adapters are bare: the town gives only the requests
    files = write_files(folder, town, 4, args.audit)
    pki = files.pki
    bare = await start_bare(
        4, BareTls.of(pki.broker_tls), adapter_tls=[BareTls.of(pki.adapter_tls(a)) for a in files.agencies]
    )
    try:
        federation = await start(
            files,
            ("--workers", str(workers)) if workers > 1 else (),
            adapters=bare.adapter_addresses,
            broker_sections=NO_SHEDDING,
        )
        try:
            return await federation.measure(
                town.requests,
                sequential=args.sequential,
                concurrent=args.concurrent,
                adapter_pids=[a.process.pid for a in bare.adapters],
            )
        finally:
            await asyncio.to_thread(federation.stop)
    finally:
        await bare.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2", help="broker process counts to compare")
    parser.add_argument("--audit", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=3000)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    figures: dict[int, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            figures[n] = asyncio.run(_measure(Path(tmp) / f"w{n}", n, args))
            print(row(f"{n} broker process{'es' if n > 1 else ''}", figures[n]), flush=True)
    base = figures[min(counts)]
    body = "\n".join(
        [
            f"The real broker (mutual TLS, agreement, {args.audit} audit log, assertions) over four bare "
            "adapters, so that the broker is the bottleneck; throughput at concurrency 32 over 4 channels:",
            "",
            *HEADER,
            *(row(f"{n} broker process{'es' if n > 1 else ''}", f) for n, f in figures.items()),
            "",
            *(
                f"{n} processes: {f.rate / base.rate:.2f}x the throughput of {min(counts)}."
                for n, f in figures.items()
                if n != min(counts)
            ),
        ]
    )
    print(body)
    if not args.no_record:
        record(
            "scale-out",
            f"python -m bench.scaleout --workers {args.workers} --audit {args.audit} "
            f"--sequential {args.sequential} --concurrent {args.concurrent}",
            body,
        )


if __name__ == "__main__":
    main()
