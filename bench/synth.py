"""How fast `lateral synth` makes a town: people, agency records, databases and truth.

    python -m bench.synth --people 1000000

Baseline in the same run: drawing the same names through Faker's own generator (what the generator avoids
by sampling Faker's name lists directly).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench.record import record


def _faker_baseline(names: int) -> float:
    """Seconds Faker's generator would take for `names` given+family name pairs (timed on a sample)."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(1)
    sample = min(names, 50_000)
    started = time.perf_counter()
    for _ in range(sample):
        fake.first_name()
        fake.last_name()
    return (time.perf_counter() - started) * names / sample


def _ours_names(names: int) -> float:
    import random

    from synth.names import pools

    pool = pools()["english"]
    rng = random.Random(1)
    started = time.perf_counter()
    for _ in range(names):
        pool.given(rng, "female")
        pool.surname(rng)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-record", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    from synth import SynthConfig, generate, sqlite_urls, write_databases, write_truth

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        data = generate(SynthConfig(people=args.people, seed=args.seed))
        generated = time.perf_counter() - started
        write_databases(data, sqlite_urls(folder))
        written = time.perf_counter() - started - generated
        write_truth(data, folder / "truth")
        total = time.perf_counter() - started
        sizes = {p.stem: p.stat().st_size for p in folder.glob("*.db")}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    records = {agency: len(r.people) for agency, r in data.records.items()}
    events = {agency: sum(len(p.events) for p in r.people) for agency, r in data.records.items()}
    ours, faker = _ours_names(args.people), _faker_baseline(args.people)

    rows = "\n".join(
        f"| {agency} | {records[agency]:,} | {events[agency]:,} | {sizes[agency] / 1e6:.1f} MB |"
        for agency in records
    )
    body = f"""
| figure | value |
| --- | --- |
| people (households) | {args.people:,} ({len(data.population.households):,}) |
| generate people, coverage, records with errors | {generated:.1f} s ({args.people / generated:,.0f}/s) |
| write four SQLite databases | {written:.1f} s |
| write people, truth and manifest | {total - generated - written:.1f} s |
| **total** (target < 300 s at 1,000,000) | **{total:.1f} s** |
| peak resident memory | {peak_mb:,.0f} MB |
| baseline: {args.people:,} name pairs via Faker's generator | {faker:.1f} s |
| the same via direct sampling of Faker's name lists | {ours:.1f} s ({faker / ours:.0f}x faster) |

| agency | records | activity | SQLite file |
| --- | ---: | ---: | ---: |
{rows}
"""
    print(body)
    if not args.no_record:
        record("synth", f"python -m bench.synth --people {args.people}", body)


if __name__ == "__main__":
    main()
