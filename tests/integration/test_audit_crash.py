"""kill -9 the broker while it serves concurrent checks: after a restart its log verifies, and every check a
client saw answered is in it, received and completed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import tomli_w

from audit.keys import load_keys
from audit.reader import read_events
from audit.verify import verify_log
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.auditing import prepare_audit
from protos.lateral.v1 import broker_pb2_grpc
from tests.integration.conftest import ServerProcess


async def test_a_killed_broker_loses_no_answered_check(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> None:
    assert federation.pki is not None
    section = prepare_audit(tmp_path, ["broker"])["broker"]
    config = tmp_path / "broker.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "broker": {"listen": "127.0.0.1:0"},
                "tls": federation.pki.broker_tls.model_dump(),
                "audit": section.model_dump(),
                "limits": {"per_user_per_minute": 100_000, "per_organisation_per_minute": 1_000_000},
                "policy": {"agreement": str(prepared.workdir / AGREEMENT_FILE)},
                "agencies": [
                    {"id": a, "name": a, "address": f"127.0.0.1:{port}"}
                    for a, (_, port) in federation.adapters.items()
                ],
            }
        )
    )
    broker = ServerProcess("broker", "serve", "--config", str(config))
    address = f"127.0.0.1:{broker.wait_ready()}"
    answered: list[str] = []
    enough = asyncio.Event()
    requests = [e.request() for e in prepared.examples.all()]

    async def client(n: int) -> None:
        async with broker_channel(address, DEMO_CALLER, federation.client_tls(DEMO_CALLER)) as channel:
            stub = broker_pb2_grpc.LateralCheckStub(channel)
            for i in range(1000):
                try:
                    response = await stub.Check(requests[(n + i) % len(requests)], timeout=5)
                except grpc.aio.AioRpcError:
                    return
                answered.append(response.check_id)
                if len(answered) >= 40:
                    enough.set()

    clients = [asyncio.create_task(client(n)) for n in range(8)]
    await asyncio.wait_for(enough.wait(), 60)
    broker.proc.send_signal(signal.SIGKILL)
    await asyncio.gather(*clients)
    broker.proc.wait(10)
    # Restart on the same log: it opens, recovers and goes on.
    again = ServerProcess("broker", "serve", "--config", str(config))
    again.wait_ready()
    again.proc.send_signal(signal.SIGTERM)
    again.proc.wait(20)
    result = verify_log(section.url, load_keys(section).signer.public_key())
    assert result.ok, [str(p) for p in result.problems]
    logged: dict[str, set[str]] = {}
    for event in read_events(section.url):
        check_id = (event.payload or {}).get("check_id")
        if check_id:
            logged.setdefault(str(check_id), set()).add(event.kind)
    assert len(answered) >= 40
    missing = [c for c in answered if logged.get(c) != {"check-received", "check-completed"}]
    assert missing == []
