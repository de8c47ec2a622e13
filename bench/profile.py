"""Where a running broker (or an adapter) spends its CPU under load: py-spy samples one process of a
benchmark federation (bench/federation.py) while checks run 32 at a time, and the samples are summed per
function.

    python -m bench.profile [--process broker|adapter] [--people 10000] [--agencies 4]
                            [--audit sqlite|postgresql] [--checks 3000]
                            [--top 30] [--keep broker.collapsed]

Prints the functions with the most samples on the stack (inclusive) and at the top of it (self), as a share
of all samples; --keep saves py-spy's collapsed stacks (for a flame graph: inferno, speedscope). py-spy (in
the `bench` extra) needs permission to read another process's memory: root, or ptrace allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.e2e import CACHE
from bench.federation import NO_SHEDDING, make_town, start, write_files


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is not installed: pip install 'lateral[bench]'")
    return found


def summarise(collapsed: str, top: int) -> str:
    """Per-function shares of py-spy's collapsed stacks ("frame;frame;frame count" lines)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    if not total:
        return "no samples"
    lines = [f"{total:,} samples", "", "| on the stack | at the top | function |", "| ---: | ---: | --- |"]
    for frame, samples in inclusive.most_common(top):
        lines.append(f"| {100 * samples / total:.1f}% | {100 * own[frame] / total:.1f}% | `{frame}` |")
    lines += ["", "| at the top | function |", "| ---: | --- |"]
    for frame, samples in own.most_common(top):
        lines.append(f"| {100 * samples / total:.1f}% | `{frame}` |")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """'check (broker/server.py:256)' with the path cut to the package."""
    name, _, where = frame.partition(" (")
    path, _, _line = where.rstrip(")").rpartition(":")
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(Path(path).parts[-2:])
    return f"{name} ({path})"


async def _profile(args: argparse.Namespace, folder: Path) -> str:
    town = make_town(args.cache, args.people)
    files = write_files(folder, town, args.agencies, args.audit)
    federation = await start(files, broker_sections=NO_SHEDDING)
    raw = folder / "broker.collapsed"
    try:
        # Warm up (caches, connections) before sampling.
        await federation.measure(town.requests, sequential=50, concurrent=200)
        pid = federation.broker_pid if args.process == "broker" else federation.adapters[0].proc.pid
        spy = subprocess.Popen(  # noqa: S603, ASYNC220 - our own command line, returns at once
            [
                _py_spy(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await asyncio.sleep(1)
        figures = await federation.measure(town.requests, sequential=0, concurrent=args.checks)
        spy.send_signal(signal.SIGINT)
        _, error = spy.communicate(timeout=60)
        if not raw.exists():
            sys.exit(f"py-spy recorded nothing: {error.decode(errors='replace').strip()}")
        if args.keep is not None:
            args.keep.write_text(raw.read_text())
    finally:
        await asyncio.to_thread(federation.stop)
    heading = (
        f"{args.process}: {args.agencies} agencies of {args.people:,}, {args.audit} audit logs: "
        f"{args.checks:,} checks 32 at a time, {figures.rate:,.0f} checks/s, "
        f"broker CPU {figures.cpu_ms_per_check:.2f} ms per check"
    )
    return heading + "\n\n" + summarise(raw.read_text(), args.top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--process", choices=["broker", "adapter"], default="broker")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=4)
    parser.add_argument("--audit", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", type=Path, default=None, help="also keep the collapsed stacks here")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(asyncio.run(_profile(args, Path(tmp))))


if __name__ == "__main__":
    main()
