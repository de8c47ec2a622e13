"""Several services on one audit log at once: two separately started brokers (not the --workers supervisor)
answering concurrent checks on one PostgreSQL log, and services opening a brand-new log at the same instant.
The log keeps sequence numbers 1..N with no gap or duplicate, names its key once and verifies."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import multiprocessing
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.keys import load_keys
from audit.reader import read_events
from audit.rotation import ensure_key
from audit.store import AuditLog, checkpoints, engine_for, head, metadata
from audit.verify import verify_log
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc
from tests.databases import fresh_database
from tests.integration.conftest import ServerProcess
from tests.integration.test_workers import _adapters, _broker_config

CLIENTS = 8  # per broker
CHECKS = 30  # per client


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from fresh_database("postgresql")


def _rows(url: str, table: sa.Table) -> list[dict[str, Any]]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        engine.dispose()


async def _open_together(url: str, configs: list[Path], timeout: float = 60) -> list[ServerProcess]:
    """Starts a broker for each configuration, all opening the new PostgreSQL log at `url` at the same
    instant, not merely starting together: an uncommitted transaction has created the log's tables, so each
    broker's own CREATE TABLE (or its wait for the lock of `audit.store.exclusive`, behind the broker
    holding it) waits. Once all wait, the transaction rolls back and they go on at once."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    engine = engine_for(url)
    brokers: list[ServerProcess] = []
    try:
        with engine.connect() as gate, engine.connect() as watch:
            metadata.create_all(gate)  # not committed
            brokers = [ServerProcess("broker", "serve", "--config", str(c)) for c in configs]
            deadline = time.monotonic() + timeout
            while watch.execute(waiting).scalar_one() < len(brokers):
                watch.rollback()  # a new view of pg_stat_activity
                ended = [b for b in brokers if b.proc.poll() is not None]
                if ended or time.monotonic() > deadline:
                    raise AssertionError(
                        "the brokers do not wait:\n" + "".join(ended[0].lines if ended else [])
                    )
                await asyncio.sleep(0.05)
            gate.rollback()
    except BaseException:
        for broker in brokers:
            broker.stop()
        raise
    finally:
        engine.dispose()
    return brokers


async def test_two_brokers_started_together_answer_concurrent_checks_on_one_postgresql_log(
    federation: Federation, prepared: Prepared, tmp_path: Path, postgres: str
) -> None:
    # Two configuration files, each broker on a port of its own, both on one fresh PostgreSQL log with the
    # same keys; checkpoints often, so that both brokers sign several while the other appends.
    config, audit = _broker_config(
        prepared, tmp_path, _adapters(federation), audit={"url": postgres, "checkpoint_every": 20}
    )
    shutil.copy(config, tmp_path / "broker-2.toml")
    brokers = await _open_together(postgres, [config, tmp_path / "broker-2.toml"])
    try:
        ports = await asyncio.gather(*(asyncio.to_thread(b.wait_ready, 60) for b in brokers))
        addresses = [f"127.0.0.1:{port}" for port in ports]
        requests = [e.request() for e in prepared.examples.all()]
        answered: list[list[str]] = [[], []]
        failed: list[str] = []
        # What each broker says of its last checkpoint (the Status RPC), sampled while the checks run.
        signed: list[set[str]] = [set(), set()]
        done = asyncio.Event()

        async def client(broker: int, n: int) -> None:
            tls = federation.client_tls(DEMO_CALLER)
            async with broker_channel(addresses[broker], DEMO_CALLER, tls) as channel:
                stub = broker_pb2_grpc.LateralCheckStub(channel)
                for i in range(CHECKS):
                    try:
                        response = await stub.Check(requests[(n + i) % len(requests)], timeout=30)
                    except grpc.aio.AioRpcError as error:
                        failed.append(f"broker {broker + 1}: {error.code().name} {error.details()}")
                        continue
                    answered[broker].append(response.check_id)

        async def sample() -> None:
            tls = federation.client_tls(DEMO_CALLER)
            async with contextlib.AsyncExitStack() as stack:
                channels = [
                    await stack.enter_async_context(broker_channel(a, DEMO_CALLER, tls)) for a in addresses
                ]
                stubs = [broker_pb2_grpc.LateralCheckStub(c) for c in channels]
                while True:
                    for broker, stub in enumerate(stubs):
                        status = await stub.Status(broker_pb2.StatusRequest(), timeout=10)
                        if status.HasField("audit_checkpoint_at"):
                            at = status.audit_checkpoint_at.ToDatetime(tzinfo=dt.UTC)
                            signed[broker].add(at.isoformat(timespec="microseconds"))
                    if done.is_set():
                        return
                    await asyncio.sleep(0.5)

        started = time.monotonic()
        sampler = asyncio.create_task(sample())
        await asyncio.wait_for(
            asyncio.gather(*(client(b, n) for b in (0, 1) for n in range(CLIENTS))), timeout=240
        )
        seconds = time.monotonic() - started
        done.set()
        await asyncio.wait_for(sampler, 30)

        for broker in brokers:
            broker.proc.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(asyncio.to_thread(b.proc.wait, 30) for b in brokers))
        assert codes == [0, 0], "".join(brokers[0].lines + brokers[1].lines)
    finally:
        for broker in brokers:
            broker.stop()

    assert failed == []
    checks = len(answered[0]) + len(answered[1])
    assert [len(a) for a in answered] == [CLIENTS * CHECKS] * 2
    events = read_events(audit.url)
    # Sequence numbers 1..N, no gap, no duplicate; the head row says N.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [(r["id"], r["size"]) for r in _rows(audit.url, head)] == [(1, len(events))]
    # The key named once, each broker's agreement, and each check received and completed, nothing else.
    kinds = Counter(e.kind for e in events)
    assert kinds == {"log-key": 1, "agreement-loaded": 2, "check-received": checks, "check-completed": checks}
    assert events[0].kind == "log-key"
    logged: dict[str, list[str]] = {}
    for event in events:
        if check_id := (event.payload or {}).get("check_id"):
            logged.setdefault(str(check_id), []).append(event.kind)
    ids = answered[0] + answered[1]
    assert len(set(ids)) == checks
    assert {i: sorted(logged.get(i, [])) for i in ids} == {
        i: ["check-completed", "check-received"] for i in ids
    }
    # Every event, every checkpoint (whichever broker signed it) and their consistency verify.
    result = verify_log(audit.url, load_keys(audit).signer.public_key())
    assert result.ok, [str(p) for p in result.problems]
    assert result.size == len(events)
    # Both brokers signed checkpoints: a time each reported is a checkpoint in the log, which verified.
    stored = {str(r["at"]) for r in _rows(audit.url, checkpoints)}
    assert result.checkpoints == len(stored) >= 2
    assert [bool(s & stored) for s in signed] == [True, True], (signed, stored)
    print(f"\n{checks} checks at two brokers in {seconds:.1f} s: {len(events)} events, {len(stored)} signed")


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _open_in_turn(tasks: list[tuple[str, bytes, bytes | None]], barrier: Any, results: Any) -> None:
    """A process that opens each log in turn as a starting service does (AuditLog, then ensure_key with its
    key and maybe the previous one) and appends one event. Each open starts at the barrier, together with
    the other process's open of the same log."""
    for n, (url, signer_pem, previous_pem) in enumerate(tasks):
        signer = serialization.load_pem_private_key(signer_pem, password=None)
        previous = serialization.load_pem_private_key(previous_pem, password=None) if previous_pem else None
        assert isinstance(signer, Ed25519PrivateKey)
        assert previous is None or isinstance(previous, Ed25519PrivateKey)
        barrier.wait(60)
        try:
            log = AuditLog(url, signer)
            try:
                ensure_key(log, signer, previous)
                log.append("opened", {"task": n})
            finally:
                log.close()
        except Exception as error:
            results.put((n, f"{type(error).__name__}: {error} ({error.__context__!r})"))
        else:
            results.put((n, "ok"))


ROUNDS = 5


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_services_opening_one_new_log_at_the_same_instant_both_start_and_name_its_key_once(
    kind: str, tmp_path: Path
) -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            urls = [f"sqlite:///{tmp_path / f'log-{n}.db'}" for n in range(ROUNDS)]
        else:
            urls = [
                stack.enter_context(contextlib.contextmanager(fresh_database)(kind)) for _ in range(ROUNDS)
            ]
        # Each round: both processes open a brand-new log with the first key, then both hand over to another.
        tasks = [
            task for url in urls for task in ((url, _pem(first), None), (url, _pem(second), _pem(first)))
        ]
        context = multiprocessing.get_context("spawn")  # not fork: this process may have gRPC's threads
        barrier, results = context.Barrier(2), context.Queue()
        processes = [context.Process(target=_open_in_turn, args=(tasks, barrier, results)) for _ in range(2)]
        for process in processes:
            process.start()
        try:
            outcomes = [results.get(timeout=120) for _ in range(2 * len(tasks))]
        finally:
            for process in processes:
                process.join(30)
                if process.is_alive():
                    process.kill()
        assert [o for o in outcomes if o[1] != "ok"] == []
        for url in urls:
            events = read_events(url)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert [(r["id"], r["size"]) for r in _rows(url, head)] == [(1, len(events))]
            assert [e.kind for e in events] == [
                "log-key",
                "opened",
                "opened",
                "key-rotated",
                "opened",
                "opened",
            ]
            result = verify_log(url, first.public_key())
            assert result.ok, [str(p) for p in result.problems]
