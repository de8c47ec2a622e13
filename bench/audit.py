"""The cost of the audit log: check latency with the log off, on SQLite and on PostgreSQL, in one run.

    python -m bench.audit [--people 5000] [--checks 400]

The same federation (broker and four adapters in this process, plaintext so that only the log differs)
answers the same showcase checks, one at a time, with every service's log off, on SQLite files (WAL,
fsync on every commit) and on PostgreSQL. A check writes two broker events and one per agency asked.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import uuid
from pathlib import Path

from adapters.core.config import load_adapter_config
from adapters.core.server import create_server as create_adapter
from audit.keys import AuditSection
from bench.federation import drop_database, postgres_database
from bench.load import sequential_ms
from bench.record import record
from broker.config import AgencyEndpoint, BrokerConfig
from broker.limits import LimitsSection
from broker.server import create_server as create_broker
from lateral.client import broker_channel
from lateral.demo import Prepared, prepare
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from policy.trust import PolicySection
from protos.lateral.v1 import broker_pb2_grpc


def _sections(prepared: Prepared, mode: str, base: str) -> dict[str, AuditSection | None]:
    """Each service's audit section for the mode: none, its own SQLite file, or its own PostgreSQL schema."""
    out: dict[str, AuditSection | None] = {}
    for service, section in prepared.audit.items():
        if mode == "off":
            out[service] = None
        elif mode == "sqlite":
            out[service] = section.model_copy(
                update={"url": f"sqlite:///{base}/{service}-{uuid.uuid4().hex[:6]}.db"}
            )
        else:
            out[service] = section.model_copy(update={"url": postgres_database()})
    return out


async def _run(prepared: Prepared, mode: str, checks: int, base: str) -> list[float]:
    sections = _sections(prepared, mode, base)
    adapters = {}
    for agency, path in prepared.configs.items():
        config = load_adapter_config(path).model_copy(update={"audit": sections[agency], "tls": None})
        server, port = await create_adapter(config, "127.0.0.1:0", insecure_dev=True)
        await server.start()
        adapters[agency] = (server, port)
    broker, port = await create_broker(
        BrokerConfig(
            audit=sections["broker"],
            limits=LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000),
            policy=PolicySection(agreement=str(prepared.workdir / AGREEMENT_FILE)),
            agencies=[
                AgencyEndpoint(id=a, name=a, address=f"127.0.0.1:{p}") for a, (_, p) in adapters.items()
            ],
        ),
        "127.0.0.1:0",
        insecure_dev=True,
    )
    await broker.start()
    requests = [e.request() for e in prepared.examples.all()]
    try:
        async with broker_channel(f"127.0.0.1:{port}", DEMO_CALLER) as channel:
            return await sequential_ms(broker_pb2_grpc.LateralCheckStub(channel), requests, checks, 20)
    finally:
        await broker.stop(None)
        await asyncio.gather(*(server.stop(None) for server, _ in adapters.values()))
        for section in sections.values():
            if section is not None and section.url.startswith("postgresql"):
                drop_database(section.url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--checks", type=int, default=400)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(Path(tmp) / "town", people=args.people, seed=3)
        baseline = None
        for mode in ("off", "sqlite", "postgresql"):
            times = sorted(asyncio.run(_run(prepared, mode, args.checks, tmp)))
            p50, p99 = statistics.median(times), times[int(0.99 * (len(times) - 1))]
            baseline = baseline or p50
            rate = 1000 / statistics.mean(times)
            rows.append(f"| {mode} | {p50:.2f} | {p99:.2f} | {p50 - baseline:+.2f} | {rate:,.0f} |")
    body = "\n".join(
        [
            f"{args.checks} sequential checks (the four showcase checks in turn) against a broker and four "
            f"adapters in one process, {args.people:,} synthetic people; each check writes 2 broker events "
            "and 1 per agency asked.",
            "",
            "| audit log | p50 ms | p99 ms | p50 vs off | checks/s |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    print(body)
    if not args.no_record:
        record("audit", f"python -m bench.audit --people {args.people} --checks {args.checks}", body)


if __name__ == "__main__":
    main()
