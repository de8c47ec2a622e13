"""Building the index from the agency's own database server: PostgreSQL (psycopg 3, server-side cursor)
against SQLite as the same-run baseline, for about 1,000,000 person records.

    python -m bench.source [--records 1000000]

The parent writes one synthetic police force into a fresh PostgreSQL database and a SQLite file; a child
process per source builds the index, so each peak memory is the build's own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.record import record

POSTGRES = os.environ.get("LATERAL_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _child(config_path: Path) -> dict[str, Any]:
    from adapters.core import load_adapter_config
    from adapters.core.refresh import build_index

    config = load_adapter_config(config_path)
    started = time.perf_counter()
    index = build_index(config)
    seconds = time.perf_counter() - started
    peak = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return {
        "records": index.record_count,
        "activity": index.activity_count,
        "seconds": seconds,
        "peak_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    from synth import SynthConfig, generate, write_adapter_configs
    from synth.config import police_knowing
    from synth.output import write_databases

    admin = sa.make_url(POSTGRES)
    name = f"lateral_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    postgres = admin.set(database=name).render_as_string(hide_password=False)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            print(f"generating about {args.records:,} police records...", file=sys.stderr, flush=True)
            data = generate(
                SynthConfig(people=int(args.records / 0.75), seed=21, coverage=police_knowing(0.75))
            )
            sqlite = f"sqlite:///{folder / 'police.db'}"
            for label, url in (("SQLite (baseline)", sqlite), ("PostgreSQL", postgres)):
                print(f"writing {label}...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                write_databases(data, {"police": url})
                written = time.perf_counter() - started
                configs = folder / label.split()[0].lower()
                configs.mkdir()
                config = write_adapter_configs(configs, {"police": url})["police"]
                out = subprocess.run(  # noqa: S603 - this same program
                    [sys.executable, "-m", "bench.source", "--child", str(config)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                child = json.loads(out.stdout)
                rate = child["records"] / child["seconds"]
                rows.append(
                    f"| {label} | {child['records']:,} | {child['activity']:,} | {child['seconds']:.1f} s | "
                    f"{rate:,.0f}/s | {child['peak_mb']:,.0f} MB | {written:.0f} s |"
                )
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()
    body = "\n".join(
        [
            "One synthetic police force; the index built by `build_index` in a child process (batches of "
            "10,000 rows from a server-side cursor on PostgreSQL). *Written* is the generator's write, for "
            "scale.",
            "",
            "| source | records | activity rows | build | rate | peak RSS | written |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    print(body)
    if not args.no_record:
        record("source", f"python -m bench.source --records {args.records}", body)


if __name__ == "__main__":
    main()
