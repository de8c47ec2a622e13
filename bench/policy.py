"""Policy decision latency: the Northshire four-agency agreement and a generated 200-clause one.

    python -m bench.policy

For each agreement: a cold decision (Cedar evaluates the sliced policy set for the agency and requester), a
warm one (the engine's cache: the same requester, role, purpose, agency, minute and subject), and, as the
same-run baseline, Cedar evaluating the whole unsliced policy set for the same requests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
import tomllib
from collections.abc import Callable
from typing import Any

import cedarpy

from bench.record import record
from lateral.demo.agreement import EXAMPLE_AGREEMENT
from policy.agreement import Agreement, parse_agreement
from policy.cedar import ACTION, AGENCY, ORGANISATION, compile_policies
from policy.engine import PolicyEngine, Request

AGENCIES = ["police", "fire", "nhs", "socialcare"]
ROLES = ["mash-social-worker", "mash-manager", "designated-safeguarding-lead", "safeguarding-nurse", "gp"]
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def _example_data() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE_AGREEMENT.read_text())


def large_agreement(clauses: int = 200, seed: int = 7) -> Agreement:
    """The Northshire agreement grown to `clauses` clauses: 60 more requesting organisations (schools, GP
    practices, housing), each with a few permissions, and more restrictions and review rules."""
    rng = random.Random(seed)
    data = _example_data()
    orgs = [f"requester-{i:02d}" for i in range(60)]
    for org in orgs:
        data["parties"].append(
            {
                "id": org,
                "name": f"Requester {org}",
                "kind": "education",
                "certificate_identity": f"spiffe://northshire/org/{org}",
                "lawful_basis": ["UK GDPR Article 6(1)(e)"],
                "safeguarding_contact": {"name": "Designated Safeguarding Lead"},
            }
        )
    restrictions = 20
    for i in range(clauses - len(data["permissions"]) - len(data["restrictions"]) - restrictions):
        data["permissions"].append(
            {
                "id": f"G{i:03d}",
                "description": "generated permission",
                "requesters": rng.sample(orgs, 2),
                "roles": rng.sample(ROLES, 2),
                "purposes": ["child-safeguarding"],
                "agencies": rng.sample(AGENCIES, 2),
                "release": ["outcome", *rng.sample(["category", "latest_date", "count", "contact"], 2)],
                "lookback_days": rng.choice([365, 730, 1825]),
                **(
                    {"hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"}}
                    if rng.random() < 0.3
                    else {}
                ),
            }
        )
    for i in range(restrictions):
        data["restrictions"].append(
            {
                "id": f"X{i:02d}",
                "description": "generated restriction",
                "agencies": [rng.choice(AGENCIES)],
                "categories": [f"category-{i}"],
                "requesters": rng.sample(orgs, 3),
            }
        )
    return parse_agreement(data, "generated")


def _requests(agreement: Agreement, n: int, seed: int = 3) -> list[Request]:
    rng = random.Random(seed)
    requesters = sorted({r for p in agreement.permissions for r in p.requesters})
    return [
        Request(
            rng.choice(requesters),
            rng.choice(ROLES),
            "child-safeguarding",
            rng.choice(AGENCIES),
            MONDAY_10 + dt.timedelta(minutes=rng.randrange(7 * 1440)),
            "child",
        )
        for _ in range(n)
    ]


def _timed(calls: list[Callable[[], Any]]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def measure(agreement: Agreement, n: int) -> dict[str, tuple[float, float]]:
    engine = PolicyEngine(agreement)
    requests = _requests(agreement, n)
    for r in requests:  # parse every slice once, as a running service has
        engine._policies(r.agency, r.organisation)
    whole = cedarpy.PolicySet.from_str(compile_policies(agreement))
    entities = cedarpy.Entities.from_json_str("[]")

    def cold(r: Request) -> Callable[[], Any]:
        minute = engine.minute_of_week(r.at)
        return lambda: engine._decide.__wrapped__(
            engine, r.organisation, r.role, r.purpose, r.agency, minute, r.subject
        )

    def unsliced(r: Request) -> Callable[[], Any]:
        request = {
            "principal": f'{ORGANISATION}::"{r.organisation}"',
            "action": f'{ACTION}::"check"',
            "resource": f'{AGENCY}::"{r.agency}"',
            "context": {
                "role": r.role,
                "purpose": r.purpose,
                "minute_of_week": engine.minute_of_week(r.at),
                "subject": r.subject,
            },
        }
        return lambda: cedarpy.is_authorized(request, whole, entities)

    def warm(r: Request) -> Callable[[], Any]:
        return lambda: engine.decide(r)

    cold_times = _timed([cold(r) for r in requests])
    for r in requests:  # the second time round, a running service answers from its cache
        engine.decide(r)
    results = {
        "decision, cold (sliced Cedar evaluation)": cold_times,
        "decision, warm (cached)": _timed([warm(r) for r in requests]),
        "baseline: Cedar over the whole policy set": _timed([unsliced(r) for r in requests]),
    }
    allowed = sum(engine.decide(r).allowed for r in requests)
    results["(requests allowed)"] = (allowed, len(requests))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from tests.unit.policy_fixtures import example

    rows = []
    for name, agreement in (
        ("Northshire, 4 agencies", example()),
        ("generated, 200 clauses", large_agreement()),
    ):
        clauses = len(agreement.permissions) + len(agreement.restrictions)
        results = measure(agreement, args.requests)
        allowed, total = results.pop("(requests allowed)")
        for what, (p50, p99) in results.items():
            rows.append(f"| {name} ({clauses} clauses) | {what} | {p50:,.1f} | {p99:,.1f} |")
        rows.append(f"| {name} ({clauses} clauses) | requests allowed | {allowed:,.0f} of {total:,.0f} | |")
    body = "\n".join(
        [
            f"{args.requests:,} random requests per agreement (requester, role, agency, minute of the week).",
            "",
            "| agreement | measure | p50 µs | p99 µs |",
            "| --- | --- | ---: | ---: |",
            *rows,
        ]
    )
    print(body)
    if not args.no_record:
        record("policy", "python -m bench.policy", body)


if __name__ == "__main__":
    main()
