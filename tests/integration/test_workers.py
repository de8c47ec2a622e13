"""`lateral broker serve --workers 2`: two broker processes on one port (SO_REUSEPORT) behind a supervisor,
over mutual TLS, sharing one audit log. Both answer checks; SIGTERM stops them all and leaves no process;
a killed worker is started again while the other serves; SIGHUP reloads them all; a worker that cannot
start stops the broker with its exit status."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import tomli_w

from audit.keys import AuditSection, load_keys
from audit.reader import read_events
from audit.verify import verify_log
from lateral._workers import reserve_port
from lateral.client import broker_channel
from lateral.demo import Federation, Prepared
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER
from lateral.demo.auditing import prepare_audit
from lateral.workers import STEADY_S, Plan, _Phase, _Supervisor
from pki.assertion import METADATA_KEY, mint
from policy.signing import signatures_path
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc
from tests.integration.conftest import ServerProcess
from tests.integration.test_lifecycle import _amend_and_sign

# The broker's log line for each check it answered, in the worker that answered it.
ANSWERED = re.compile(r"broker\.server: check ([0-9a-f]{32}) for .* worker=(\d+)$")


def _broker_config(
    prepared: Prepared,
    folder: Path,
    agencies: dict[str, int],
    rest: str | None = None,
    audit: dict[str, Any] | None = None,
) -> tuple[Path, AuditSection]:
    """A broker of its own (own SQLite audit log unless `audit` changes its section, own copy of the
    agreement) over the agencies' adapters (id -> port on 127.0.0.1), with mutual TLS."""
    section = prepare_audit(folder, ["broker"])["broker"].model_copy(update=audit or {})
    for name in (AGREEMENT_FILE, signatures_path(Path(AGREEMENT_FILE)).name):
        shutil.copy(prepared.workdir / name, folder / name)
    config = folder / "broker.toml"
    data: dict[str, Any] = {
        "broker": {"listen": "127.0.0.1:0", "shutdown_grace_s": 10.0},
        "tls": prepared.pki.broker_tls.model_dump(),
        "audit": section.model_dump(),
        "limits": {"per_user_per_minute": 100_000, "per_organisation_per_minute": 1_000_000},
        "policy": {"agreement": AGREEMENT_FILE, "trusted_keys": list(prepared.party_keys.values())},
        "agencies": [{"id": a, "name": a, "address": f"127.0.0.1:{port}"} for a, port in agencies.items()],
    }
    if rest is not None:
        data["rest"] = {"listen": rest}
    config.write_text(tomli_w.dumps(data))
    return config, section


def _adapters(federation: Federation) -> dict[str, int]:
    return {agency: port for agency, (_, port) in federation.adapters.items()}


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _exists(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _still_running(pids: set[int], timeout: float) -> list[int]:
    """The processes among `pids` still running after waiting up to `timeout` seconds for them to end."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _exists(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def _wait_for_line(proc: ServerProcess, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.lines:
            if found := re.search(pattern, line):
                return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "".join(proc.lines))


async def _checks(
    address: str, federation: Federation, prepared: Prepared, channels: int, each: int
) -> list[broker_pb2.CheckResponse]:
    """`channels` × `each` checks, each channel a new connection (opened once the previous one has closed,
    so that gRPC cannot share one connection between them)."""
    request = prepared.examples.three_agencies.request()
    answers: list[broker_pb2.CheckResponse] = []
    for _ in range(channels):
        async with broker_channel(address, DEMO_CALLER, federation.client_tls(DEMO_CALLER)) as channel:
            stub = broker_pb2_grpc.LateralCheckStub(channel)
            answers += await asyncio.gather(*(stub.Check(request, timeout=15) for _ in range(each)))
    return answers


async def _answered_by(proc: ServerProcess, ids: list[str], timeout: float = 10) -> dict[str, int]:
    """Which worker answered each check, from the workers' log lines (each ends `worker=N`)."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list[int]] = {}
        for line in list(proc.lines):
            if match := ANSWERED.search(line.rstrip("\n")):
                found.setdefault(match[1], []).append(int(match[2]))
        if all(i in found for i in ids) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [i for i in ids if len(found.get(i, [])) != 1] == [], "every check answered once, by one worker"
    return {i: found[i][0] for i in ids}


def _verify_audit(audit: AuditSection, ids: list[str], workers_started: int) -> None:
    """The shared log verifies, has contiguous sequence numbers, and holds every check once, received and
    completed; each worker that started recorded the agreement it loaded."""
    result = verify_log(audit.url, load_keys(audit).signer.public_key())
    assert result.ok, [str(p) for p in result.problems]
    events = read_events(audit.url)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.kind == "agreement-loaded" for e in events) == workers_started
    logged: dict[str, list[str]] = {}
    for event in events:
        if check_id := (event.payload or {}).get("check_id"):
            logged.setdefault(str(check_id), []).append(event.kind)
    assert {i: sorted(logged.get(i, [])) for i in ids} == {
        i: ["check-completed", "check-received"] for i in ids
    }


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """systemd's notification socket, as the supervisor (and only it) sees it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        yield sock


async def _received(sock: socket.socket) -> list[str]:
    return (await asyncio.to_thread(sock.recv, 4096)).decode().split("\n")


@contextlib.contextmanager
def _supervisor(*args: str) -> Iterator[ServerProcess]:
    """`lateral broker serve ... --workers N`; afterwards nothing of it is left running, whatever happened."""
    broker = ServerProcess("broker", "serve", *args)
    try:
        yield broker
    finally:
        workers = _children(broker.proc.pid)
        broker.stop()
        for pid in workers:
            if _exists(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _rest_headers(federation: Federation) -> dict[str, str]:
    tls = federation.client_tls(DEMO_CALLER)
    assert tls is not None
    return {
        "X-Lateral-Certificate": base64.b64encode(tls.cert).decode(),
        METADATA_KEY: mint(tls.private_key, tls.identity, user=DEMO_CALLER.user, role=DEMO_CALLER.role),
    }


def _rest_body(prepared: Prepared) -> dict[str, Any]:
    a = prepared.examples.three_agencies.args
    return {
        "subject": {
            "given_names": a["given-name"].split(),
            "family_name": a["family-name"],
            "date_of_birth": a["dob"],
            "address": {"postcode": a["postcode"]},
        },
        "purpose": a["purpose"],
        "justification": a["justification"],
        "case_ref": a["case-ref"],
    }


AGREEMENT = "northshire-mash-lateral-checks"


async def test_two_workers_answer_on_one_port_share_one_audit_log_and_stop_together(
    federation: Federation, prepared: Prepared, tmp_path: Path, notify: socket.socket
) -> None:
    # gRPC on port 0: the supervisor reserves a free port for the workers. REST needs a fixed port: hold a
    # free one (SO_REUSEPORT, never listening) meanwhile; both workers serving means both could bind it.
    with reserve_port("127.0.0.1") as held:
        rest_port = held.getsockname()[1]
        config, audit = _broker_config(prepared, tmp_path, _adapters(federation), f"127.0.0.1:{rest_port}")
        with _supervisor("--config", str(config), "--workers", "2") as broker:
            port = await asyncio.to_thread(broker.wait_ready, 60)
            said = await _wait_for_line(broker, r"^broker listening on .*$")
            assert said[0] == f"broker listening on 127.0.0.1:{port} (2 workers)"
            assert await _received(notify) == ["READY=1", f"STATUS=serving on port {port} with 2 workers"]
            workers = _children(broker.proc.pid)
            assert len(workers) == 2
            # A gRPC object starts gRPC's threads (7 or more): the supervisor has created none.
            assert len(os.listdir(f"/proc/{broker.proc.pid}/task")) == 1

            answers = await _checks(f"127.0.0.1:{port}", federation, prepared, channels=30, each=4)
            ids = [a.check_id for a in answers]
            trusted = ssl.create_default_context(cafile=str(prepared.pki.folder / "ca.crt"))
            for _ in range(6):
                async with httpx.AsyncClient(verify=trusted, timeout=15) as http:  # a new connection each
                    response = await http.post(
                        f"https://127.0.0.1:{rest_port}/v1/checks",
                        json=_rest_body(prepared),
                        headers=_rest_headers(federation),
                    )
                assert response.status_code == 200, response.text
                ids.append(response.json()["check_id"])
            answered = await _answered_by(broker, ids)
            assert sorted(set(answered.values())) == [1, 2], "both workers answered checks"

            broker.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(broker.proc.wait, 30) == 0
            assert await _received(notify) == ["STOPPING=1"]
            assert [pid for pid in workers if _exists(pid)] == []
            await _wait_for_line(broker, r"^broker stopped$")
            stopped = {m[1] for line in broker.lines if (m := re.match(r"broker worker (\d) stopped$", line))}
            assert stopped == {"1", "2"}
    _verify_audit(audit, ids, workers_started=2)


async def test_a_killed_worker_is_started_again_while_the_other_serves(
    federation: Federation, prepared: Prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, audit = _broker_config(prepared, tmp_path, _adapters(federation))
    # The supervisor is killed at the end, leaving its folder of notification sockets: here, not in /tmp.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with _supervisor("--config", str(config), "--workers", "2") as broker:
        address = f"127.0.0.1:{await asyncio.to_thread(broker.wait_ready, 60)}"
        answers = await _checks(address, federation, prepared, channels=4, each=4)
        victim = int((await _wait_for_line(broker, r"broker worker 2 started \(pid (\d+)\)"))[1])
        assert victim in _children(broker.proc.pid)

        os.kill(victim, signal.SIGKILL)
        await _wait_for_line(
            broker,
            rf"broker worker 2 \(pid {victim}\) ended \(killed by SIGKILL\): starting it again in 1 s$",
        )
        answers += await _checks(address, federation, prepared, channels=6, each=3)  # worker 1 serves on
        again = await _wait_for_line(broker, r"broker worker 2 \(pid (\d+)\) serves again", timeout=60)
        restarted = int(again[1])
        assert restarted != victim
        assert not _exists(victim)
        assert restarted in _children(broker.proc.pid)
        assert len(_children(broker.proc.pid)) == 2

        by_worker: dict[str, int] = {}
        for _ in range(40):  # until the new worker 2 has answered on a new connection
            more = await _checks(address, federation, prepared, channels=1, each=2)
            answers += more
            by_worker |= await _answered_by(broker, [a.check_id for a in more])
            if 2 in by_worker.values():
                break
        assert 2 in by_worker.values(), "the restarted worker answers"

        # The supervisor itself killed: its workers are told to stop (SIGTERM), and do, gracefully.
        workers = _children(broker.proc.pid)
        broker.proc.kill()
        assert await asyncio.to_thread(broker.proc.wait, 10) == -signal.SIGKILL
        assert await asyncio.to_thread(_still_running, workers, 30) == [], "no worker outlives its supervisor"
        assert sum(bool(re.match(r"broker worker \d stopped$", line)) for line in broker.lines) == 2
    _verify_audit(audit, [a.check_id for a in answers], workers_started=3)


async def test_sighup_reloads_every_worker_and_tells_systemd_once_all_have(
    federation: Federation, prepared: Prepared, tmp_path: Path, notify: socket.socket
) -> None:
    config, audit = _broker_config(prepared, tmp_path, _adapters(federation))
    with _supervisor("--config", str(config), "--workers", "2") as broker:
        port = await asyncio.to_thread(broker.wait_ready, 60)
        assert await _received(notify) == ["READY=1", f"STATUS=serving on port {port} with 2 workers"]

        _amend_and_sign(prepared, tmp_path / AGREEMENT_FILE, 2)
        broker.proc.send_signal(signal.SIGHUP)
        reloading = await _received(notify)
        assert reloading[0] == "RELOADING=1"
        assert re.fullmatch(r"MONOTONIC_USEC=\d+", reloading[1])
        change = f"agreement {AGREEMENT} v1 -> {AGREEMENT} v2"
        assert await _received(notify) == [
            "READY=1",
            f"STATUS=serving on port {port} with 2 workers; reloaded: {change}",
        ]
        await _wait_for_line(broker, rf"^broker reload finished in 2 workers: reloaded: {change}$")

        answers = await _checks(f"127.0.0.1:{port}", federation, prepared, channels=24, each=2)
        assert {a.agreement for a in answers} == {f"{AGREEMENT} v2"}
        answered = await _answered_by(broker, [a.check_id for a in answers])
        assert sorted(set(answered.values())) == [1, 2], "both workers answered under the new agreement"

        broker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(broker.proc.wait, 30) == 0
    loaded = [
        e.payload["agreement"] for e in read_events(audit.url) if e.kind == "agreement-loaded" and e.payload
    ]
    assert sorted(loaded) == [f"{AGREEMENT} v1", f"{AGREEMENT} v1", f"{AGREEMENT} v2", f"{AGREEMENT} v2"]


@pytest.mark.parametrize("fault", ["agreement missing", "port taken"])
async def test_a_worker_that_cannot_start_stops_the_broker_with_its_exit_status(
    prepared: Prepared, tmp_path: Path, fault: str
) -> None:
    config, _ = _broker_config(prepared, tmp_path, {"police": 1})
    with contextlib.ExitStack() as stack:
        args = ["--config", str(config), "--workers", "2"]
        if fault == "agreement missing":
            (tmp_path / AGREEMENT_FILE).unlink()
            status, error = 2, f"error: {tmp_path / AGREEMENT_FILE}: file not found"
        else:
            taken = stack.enter_context(socket.create_server(("127.0.0.1", 0)))  # no SO_REUSEPORT
            address = f"127.0.0.1:{taken.getsockname()[1]}"
            args += ["--listen", address]
            status, error = 1, f"error: the broker cannot listen on {address}: is another server using it?"
        started = time.monotonic()
        with _supervisor(*args) as broker:
            assert await asyncio.to_thread(broker.proc.wait, 60) == status
            assert time.monotonic() - started < 30
            await asyncio.sleep(0.2)  # the last lines through the pipe
            lines = [line.rstrip("\n") for line in broker.lines]
            assert error in lines, lines
            assert f"broker worker 1 could not start (exit status {status}): stopping" in lines
            assert not any("broker worker 2 started" in line for line in lines), "the others never started"
            assert not any(" listening on " in line for line in lines)


def test_a_reserved_port_takes_no_connection_and_only_sharing_sockets_may_bind_it() -> None:
    with reserve_port("127.0.0.1") as held:
        port = held.getsockname()[1]
        with pytest.raises(OSError, match="Address already in use") as taken:
            socket.create_server(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        with socket.create_server(("127.0.0.1", port), reuse_port=True) as listener:
            listener.settimeout(5)
            for _ in range(10):
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    accepted, _ = listener.accept()
                    accepted.close()


class _FakeProcess:
    """Stands in for a worker's process: records the signals sent to it."""

    def __init__(self, pid: int, sent: list[tuple[int, int]]) -> None:
        self.pid = pid
        self._sent = sent

    def send_signal(self, sig: int) -> None:
        self._sent.append((self.pid, sig))

    def poll(self) -> int | None:
        return None


def _supervisor_of_two(folder: Path, sent: list[tuple[int, int]]) -> _Supervisor:
    plan = Plan(Path("broker.toml"), "127.0.0.1", 4000, 2, 10.0, False, None, "text")
    supervisor = _Supervisor(plan, 4000, folder, cast(Any, None))
    for worker in supervisor.workers:
        worker.proc = cast(Any, _FakeProcess(100 + worker.index, sent))
    return supervisor


def _waiting(supervisor: _Supervisor) -> list[int]:
    """The workers a reload still waits for."""
    return [w.index for w in supervisor.workers if w.hup_pending or w.hup_sent_us is not None]


def test_a_reload_ends_with_the_ready_after_each_workers_own_reloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    sent: list[tuple[int, int]] = []
    supervisor = _supervisor_of_two(tmp_path, sent)
    first, second = supervisor.workers
    supervisor.phase = _Phase.SERVING
    first.ready = True  # the second is being started again: it may have read the files already
    supervisor._reload()
    assert sent == [(101, signal.SIGHUP)]
    assert second.hup_pending
    hup = first.hup_sent_us
    assert hup is not None

    # The end of a reload that began before this SIGHUP: not this one.
    supervisor._on_notification(first, {"RELOADING": "1", "MONOTONIC_USEC": str(hup - 1)})
    supervisor._on_notification(first, {"READY": "1", "STATUS": "reloaded: nothing changed"})
    assert _waiting(supervisor) == [1, 2]
    supervisor._on_notification(first, {"RELOADING": "1", "MONOTONIC_USEC": str(hup + 1)})
    supervisor._on_notification(first, {"READY": "1", "STATUS": "reloaded: agreement v1 -> v2"})
    assert _waiting(supervisor) == [2]
    assert first.said == "reloaded: agreement v1 -> v2"

    supervisor._tick()
    assert supervisor.reload_deadline is not None, "the second has not reloaded yet"
    supervisor._on_notification(second, {"READY": "1", "STATUS": "serving on port 4000"})
    assert sent == [(101, signal.SIGHUP), (102, signal.SIGHUP)], "SIGHUP once it serves"
    supervisor._on_notification(second, {"RELOADING": "1", "MONOTONIC_USEC": str(2**62)})
    supervisor._on_notification(second, {"READY": "1", "STATUS": "reloaded: agreement v1 -> v2"})
    supervisor._tick()
    assert supervisor.reload_deadline is None


def test_a_worker_that_keeps_ending_soon_after_starting_waits_longer_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    supervisor = _supervisor_of_two(tmp_path, [])
    supervisor.phase = _Phase.SERVING
    worker = supervisor.workers[1]
    pauses = []
    for _ in range(7):
        worker.started_at = time.monotonic() - 5
        supervisor._ended(worker, -signal.SIGKILL, 102)
        assert worker.start_at is not None
        pauses.append(round(worker.start_at - time.monotonic()))
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    worker.started_at = time.monotonic() - STEADY_S
    supervisor._ended(worker, 1, 102)
    assert worker.failures == 1, "after a minute serving, the pause starts again from 1 s"
    assert supervisor.failed is None
