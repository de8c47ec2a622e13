"""A broker process's life: SIGTERM under load finishes the checks in flight and loses no audit event;
SIGHUP with a new agreement takes effect for the next check without dropping any, and a tampered one is
refused while the broker goes on as before."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import tomli_w
import tomlkit

from adapters.core.config import load_adapter_config
from adapters.core.server import create_server as create_adapter_server
from audit.keys import AuditSection, load_keys
from audit.reader import read_events
from audit.verify import verify_log
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.auditing import prepare_audit
from lateral.rpc import insecure_channel
from policy.agreement import load_agreement
from policy.signing import read_private_key, sign, signatures_path, write_signature
from policy.trust import AgreementRefusedError
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc, common_pb2
from tests.integration.conftest import ServerProcess


def _broker_config(federation: Federation, prepared: Prepared, folder: Path) -> tuple[Path, AuditSection]:
    """A broker of its own (own audit log, own copy of the agreement) over the running adapters."""
    assert federation.pki is not None
    section = prepare_audit(folder, ["broker"])["broker"]
    for name in (AGREEMENT_FILE, signatures_path(Path(AGREEMENT_FILE)).name):
        shutil.copy(prepared.workdir / name, folder / name)
    config = folder / "broker.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "broker": {"listen": "127.0.0.1:0", "shutdown_grace_s": 10.0},
                "tls": federation.pki.broker_tls.model_dump(),
                "audit": section.model_dump(),
                "limits": {"per_user_per_minute": 100_000, "per_organisation_per_minute": 1_000_000},
                "policy": {"agreement": AGREEMENT_FILE, "trusted_keys": list(prepared.party_keys.values())},
                "agencies": [
                    {"id": a, "name": a, "address": f"127.0.0.1:{port}"}
                    for a, (_, port) in federation.adapters.items()
                ],
            }
        )
    )
    return config, section


async def _wait_for_line(proc: ServerProcess, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in proc.lines if text in line]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no line with {text!r} in:\n" + "".join(proc.lines))


def _slow(federation: Federation, agency: str, seconds: float) -> None:
    """Fault injection: the agency's disclosure log takes `seconds` longer to write, so every check spends
    that long in flight."""
    servicer: Any = federation.adapters[agency][0].servicer
    audit: Callable[..., Awaitable[None]] = servicer._audit

    async def slowly(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(seconds)
        await audit(*args, **kwargs)

    servicer._audit = slowly


async def test_sigterm_under_load_finishes_checks_in_flight_and_loses_no_audit_event(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> None:
    config, audit = _broker_config(federation, prepared, tmp_path)
    broker = ServerProcess("broker", "serve", "--config", str(config))
    address = f"127.0.0.1:{broker.wait_ready()}"
    _slow(federation, "police", 0.4)
    calls: list[tuple[float, float, str, str]] = []  # started, ended, status code, check id
    warm = asyncio.Event()
    request = prepared.examples.three_agencies.request()

    async def client() -> None:
        async with broker_channel(address, DEMO_CALLER, federation.client_tls(DEMO_CALLER)) as channel:
            stub = broker_pb2_grpc.LateralCheckStub(channel)
            while True:
                started = time.monotonic()
                try:
                    response = await stub.Check(request, timeout=15)
                except grpc.aio.AioRpcError as error:
                    calls.append((started, time.monotonic(), error.code().name, ""))
                    return
                calls.append((started, time.monotonic(), "OK", response.check_id))
                if len(calls) >= 24:
                    warm.set()

    clients = [asyncio.create_task(client()) for _ in range(12)]
    await asyncio.wait_for(warm.wait(), 60)
    await asyncio.sleep(0.2)  # every client has a check in flight: each takes 0.4 s or more
    signalled = time.monotonic()
    broker.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*clients), 30)
    code = await asyncio.to_thread(broker.proc.wait, 20)
    assert code == 0, "".join(broker.lines)
    await _wait_for_line(broker, "broker stopped")
    assert any("check(s) in flight" in line for line in broker.lines), "".join(broker.lines)

    finished_after = [c for c in calls if c[2] == "OK" and c[0] < signalled < c[1]]
    assert len(finished_after) >= 6, "the checks in flight at SIGTERM were answered"
    failures = [c for c in calls if c[2] != "OK"]
    assert {c[2] for c in failures} <= {"UNAVAILABLE"}, failures
    assert all(c[0] >= signalled - 0.05 for c in failures), "no check the broker had accepted failed"

    result = verify_log(audit.url, load_keys(audit).signer.public_key())
    assert result.ok, [str(p) for p in result.problems]
    logged: dict[str, set[str]] = {}
    for event in read_events(audit.url):
        check_id = (event.payload or {}).get("check_id")
        if check_id:
            logged.setdefault(str(check_id), set()).add(event.kind)
    answered = [c[3] for c in calls if c[2] == "OK"]
    assert [c for c in answered if logged.get(c) != {"check-received", "check-completed"}] == []
    assert [c for c, kinds in logged.items() if kinds != {"check-received", "check-completed"}] == []


def _amend_and_sign(prepared: Prepared, path: Path, version: int, *, sign_it: bool = True) -> None:
    """A new version of the agreement in which P1 no longer lets the council ask the fire service."""
    document = tomlkit.parse(path.read_text())
    header: Any = document["agreement"]
    header["version"] = version
    permissions: Any = document["permissions"]
    p1 = next(p for p in permissions if p["id"] == "P1")
    p1["agencies"] = [a for a in p1["agencies"] if a != "fire"]
    path.write_text(tomlkit.dumps(document))
    if not sign_it:
        return
    signatures_path(path).unlink()
    agreement, data = load_agreement(path)
    for party in agreement.parties:
        key = read_private_key(prepared.workdir / "keys" / f"{party.id}.key")
        write_signature(signatures_path(path), sign(agreement, data, party.id, key))


async def test_sighup_applies_a_new_agreement_to_the_next_check_without_dropping_any(
    federation: Federation, prepared: Prepared, tmp_path: Path
) -> None:
    config, audit = _broker_config(federation, prepared, tmp_path)
    broker = ServerProcess("broker", "serve", "--config", str(config))
    address = f"127.0.0.1:{broker.wait_ready()}"
    request = prepared.examples.three_agencies.request()
    failures: list[str] = []
    answered = 0
    done = asyncio.Event()

    async with broker_channel(address, DEMO_CALLER, federation.client_tls(DEMO_CALLER)) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)

        async def check() -> broker_pb2.CheckResponse:
            return await stub.Check(request, timeout=10)

        first = await check()
        assert first.agreement == "northshire-mash-lateral-checks v1"
        fire = next(r for r in first.results if r.agency_id == "fire")
        assert fire.finding.outcome != common_pb2.OUTCOME_DENIED

        async def load() -> None:
            nonlocal answered
            while not done.is_set():
                try:
                    await check()
                    answered += 1
                except grpc.aio.AioRpcError as error:
                    failures.append(error.code().name)

        loaders = [asyncio.create_task(load()) for _ in range(4)]
        _amend_and_sign(prepared, tmp_path / AGREEMENT_FILE, 2)
        before = answered
        broker.proc.send_signal(signal.SIGHUP)
        line = await _wait_for_line(broker, "broker reloaded:")
        assert "agreement northshire-mash-lateral-checks v1 -> northshire-mash-lateral-checks v2" in line
        await asyncio.sleep(0.3)
        done.set()
        await asyncio.gather(*loaders)
        assert failures == []
        assert answered > before, "checks went on during the reload"

        after = await check()
        assert after.agreement == "northshire-mash-lateral-checks v2"
        fire = next(r for r in after.results if r.agency_id == "fire")
        assert fire.finding.outcome == common_pb2.OUTCOME_DENIED
        assert fire.status.detail.startswith("not asked: ")

        # A version nobody signed: refused, and the broker goes on under v2.
        _amend_and_sign(prepared, tmp_path / AGREEMENT_FILE, 3, sign_it=False)
        broker.proc.send_signal(signal.SIGHUP)
        refused = await _wait_for_line(broker, "broker reload refused, still running as before:")
        assert "does not match this agreement" in refused
        still = await check()
        assert still.agreement == "northshire-mash-lateral-checks v2"

    broker.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(broker.proc.wait, 20) == 0
    loaded = [e.payload for e in read_events(audit.url) if e.kind == "agreement-loaded"]
    assert [p["agreement"] for p in loaded if p] == [
        "northshire-mash-lateral-checks v1",
        "northshire-mash-lateral-checks v2",
    ]


async def test_an_adapter_reload_applies_a_new_agreement_and_refuses_one_nobody_signed(
    prepared: Prepared, tmp_path: Path
) -> None:
    for name in (AGREEMENT_FILE, signatures_path(Path(AGREEMENT_FILE)).name):
        shutil.copy(prepared.workdir / name, tmp_path / name)
    config = load_adapter_config(prepared.configs["fire"])
    policy = config.policy.model_copy(update={"agreement": str(tmp_path / AGREEMENT_FILE)})
    config = config.model_copy(update={"policy": policy, "audit": None, "tls": None})
    server, port = await create_adapter_server(config, "127.0.0.1:0", insecure_dev=True)
    await server.start()
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            adapter = adapter_pb2_grpc.AgencyAdapterStub(channel)

            async def agreement() -> str:
                return (await adapter.Describe(adapter_pb2.DescribeRequest(), timeout=5)).agreement

            assert await server.reload(config) == "nothing changed"
            _amend_and_sign(prepared, tmp_path / AGREEMENT_FILE, 2)
            stricter = config.matching.model_copy(update={"known_probability": 0.9999})
            moved = config.source.model_copy(update={"url": "sqlite:///elsewhere.db"})
            said = await server.reload(config.model_copy(update={"matching": stricter, "source": moved}))
            assert said == (
                "agreement northshire-mash-lateral-checks v1 -> northshire-mash-lateral-checks v2; matching "
                "(restart needed to change source)"
            )
            assert await agreement() == "northshire-mash-lateral-checks v2"
            assert server.servicer.matcher.thresholds.known == 0.9999

            _amend_and_sign(prepared, tmp_path / AGREEMENT_FILE, 3, sign_it=False)
            with pytest.raises(AgreementRefusedError) as refused:
                await server.reload(config)
            assert refused.value.reason == "TAMPERED"
            assert await agreement() == "northshire-mash-lateral-checks v2"
    finally:
        await server.stop(None)
