"""Bulk checks at scale, and the published finding reproduced on synthetic data.

    python -m bench.bulk [--people 100000] [--cases 2000]

A synthetic town (its police, fire, NHS and social care databases) runs as a federation on this machine
over mutual TLS. Then, as a MASH would:

1. **Bulk**: every child with an open social-care record (up to --cases) is checked against every agency
   with `lateral bulk-check` (a separate process, as a case system would be): checks per second, and the
   share of the caseload known to police and to fire.
2. **Households**: the home of each of those children is checked against fire with `CheckHousehold`: how
   many of the families' homes have had fire incidents that children's services would not otherwise know
   of (fire incidents are not in a social-care record). Real multi-agency matching found these among its
   most valuable findings; the generator puts fire activity at 30% of social-care families' homes against
   2% elsewhere, and the figures below can be compared with that.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.record import record
from broker.limits import LimitsSection
from lateral.demo import Prepared, prepare, start_federation
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2


def _caseload(prepared: Prepared, path: Path, cases: int) -> list[tuple[str, object]]:
    """Children of the town with a social-care record, as a caseload CSV."""
    today = dt.date.today()
    truth = prepared.data.records["socialcare"].truth
    known = {row.person_id for row in truth}
    children = [p for p in prepared.data.population.people() if p.person_id in known and p.age_on(today) < 17]
    children = children[:cases]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["query_id", "case_id", "given_name", "family_name", "date_of_birth", "gender", "postcode"]
        )
        for i, p in enumerate(children):
            writer.writerow(
                [
                    f"c{i}",
                    f"CIN-{i:05d}",
                    p.given_names[0],
                    p.family_name,
                    p.date_of_birth,
                    p.gender,
                    p.address.postcode,
                ]
            )
    return [(f"c{i}", p.address) for i, p in enumerate(children)]


def _bulk(prepared: Prepared, address: str, caseload: Path, output: Path) -> float:
    tls = prepared.pki.client_tls(DEMO_CALLER.organisation)
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own command
        [
            sys.executable,
            "-m",
            "lateral",
            "bulk-check",
            "--input",
            str(caseload),
            "--output",
            str(output),
            "--purpose",
            "child-safeguarding",
            "--justification",
            "Review of open social-care cases",
            "--case-ref-column",
            "case_id",
            "--role",
            DEMO_CALLER.role,
            "--user",
            "bench",
            "--ca",
            tls.ca,
            "--cert",
            tls.cert,
            "--key",
            tls.key,
            "--broker",
            address,
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


async def _households(federation: object, homes: list[object]) -> tuple[int, int]:
    """(homes checked, homes where fire reports activity)."""
    seen: dict[tuple[str, str], int] = {}
    async with federation.channel(DEMO_CALLER) as channel:  # type: ignore[attr-defined]
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        for home in homes:
            key = (home.line, home.postcode)  # type: ignore[attr-defined]
            if key in seen:
                continue
            response = await stub.CheckHousehold(
                broker_pb2.HouseholdRequest(
                    address=common_pb2.Address(lines=[key[0]], postcode=key[1]),
                    purpose="household-safeguarding",
                    justification="Review of open social-care cases",
                    case_ref="BENCH",
                ),
                timeout=10,
            )
            fire = next(r for r in response.results if r.agency_id == "fire")
            seen[key] = int(
                fire.finding.outcome == common_pb2.OUTCOME_KNOWN and fire.finding.activity_count > 0
            )
    return len(seen), sum(seen.values())


async def _run(people: int, cases: int, folder: Path) -> str:
    started = time.perf_counter()
    prepared = await asyncio.to_thread(prepare, folder / "town", people=people, seed=11)
    counts = {a: len(r.people) for a, r in prepared.data.records.items()}
    prepare_s = time.perf_counter() - started
    # A bench, not a person: lift the per-user rate limit that protects the service from one user.
    federation = await start_federation(
        prepared, limits=LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000)
    )
    try:
        caseload = folder / "caseload.csv"
        homes = _caseload(prepared, caseload, cases)
        output = folder / "results.csv"
        seconds = await asyncio.to_thread(_bulk, prepared, federation.broker_address, caseload, output)
        with output.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        answered = [r for r in rows if not r["error_code"]]
        share = {
            a: sum(r[f"{a}_outcome"] == "KNOWN" for r in answered) / max(1, len(answered))
            for a in ("police", "fire", "nhs")
        }
        checked_homes, fire_homes = await _households(federation, [h for _, h in homes])
    finally:
        await federation.stop()
    return "\n".join(
        [
            f"A synthetic town of {people:,} people (records: "
            + ", ".join(f"{a} {n:,}" for a, n in sorted(counts.items()))
            + f"; prepared in {prepare_s:.0f} s); the federation over mutual TLS with audit logs, on this "
            "machine.",
            "",
            "| measure | figure |",
            "| --- | ---: |",
            f"| children with a social-care record checked in bulk | {len(answered):,} of {len(rows):,} |",
            f"| bulk throughput (`lateral bulk-check`, 8 at once) | {len(rows) / seconds:,.1f} checks/s |",
            f"| share of the caseload known to police | {share['police']:.1%} |",
            f"| share known to fire (as people) | {share['fire']:.1%} |",
            f"| share known to the NHS trust | {share['nhs']:.1%} |",
            f"| their homes checked with CheckHousehold | {checked_homes:,} |",
            f"| homes with fire incidents children's services would not otherwise know of | {fire_homes:,} "
            f"({fire_homes / max(1, checked_homes):.1%}) |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        body = asyncio.run(_run(args.people, args.cases, Path(tmp)))
    print(body)
    if not args.no_record:
        record("bulk", f"python -m bench.bulk --people {args.people} --cases {args.cases}", body)


if __name__ == "__main__":
    main()
