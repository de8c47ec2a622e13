"""Fixtures that start real servers on 127.0.0.1 with real SQLite databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lateral.demo import Federation, Prepared, prepare, start_federation
from lateral.demo.agreement import DEMO_CALLER
from protos.lateral.v1 import broker_pb2_grpc

if TYPE_CHECKING:
    from protos.lateral.v1.broker_pb2_grpc import LateralCheckAsyncStub

pytestmark = pytest.mark.integration

LATERAL = [sys.executable, "-m", "lateral"]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """One synthetic town's agency databases for the whole session (servers only read them)."""
    return prepare(tmp_path_factory.mktemp("town"), people=20_000, seed=1)


@pytest.fixture
async def federation(prepared: Prepared) -> AsyncIterator[Federation]:
    fed = await start_federation(prepared)
    yield fed
    await fed.stop()


@pytest.fixture
async def broker_stub(federation: Federation) -> AsyncIterator[LateralCheckAsyncStub]:
    async with federation.channel(DEMO_CALLER) as channel:
        yield broker_pb2_grpc.LateralCheckStub(channel)


class ServerProcess:
    """A `lateral ... serve` command in its own process, on the port it picked."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*LATERAL, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.port = 0
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if " listening on " in line:  # "... listening on HOST:PORT", maybe then " (N workers)"
                self.port = int(line.rsplit(":", 1)[1].split()[0])
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 30) -> int:
        if not self._ready.wait(timeout) or not self.port:
            raise RuntimeError("server did not start:\n" + "".join(self.lines))
        return self.port

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


class AdapterProcess(ServerProcess):
    """`lateral adapter serve` in plaintext (development), on a free port or the one given (a restart)."""

    def __init__(self, config: Path, port: int = 0) -> None:
        self.config = config
        super().__init__(
            "adapter", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--insecure-dev"
        )


@pytest.fixture
def adapter_processes(prepared: Prepared) -> Iterator[dict[str, AdapterProcess]]:
    procs = {agency: AdapterProcess(path) for agency, path in prepared.configs.items()}
    try:
        for proc in procs.values():
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
