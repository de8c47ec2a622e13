"""Faults on demand between the broker and a real adapter, and a steady load that records what callers saw.

- FaultProxy: a TCP proxy in front of an adapter process that passes traffic, refuses it (every connection
  cut at once, new ones closed on accept: as a dead process looks), or delays the adapter's answers; it
  can keep every byte it passes.
- FaultyFront: a gRPC adapter front that forwards to the real adapter but answers chosen calls with an
  error of its choosing, counting every attempt it receives.
- Load: clients checking in a loop until stopped, each call with a deadline; every outcome kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from lateral.client import broker_channel
from lateral.identity import Caller
from lateral.rpc import (
    ADAPTER_SERVICE,
    SOURCE_HEALTH,
    add_standard_services,
    insecure_channel,
    server_options,
)
from pki.tls import Tls
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc


class FaultProxy:
    """127.0.0.1:port → 127.0.0.1:target, misbehaving as told (mode "pass", "refuse" or "delay")."""

    def __init__(self, target_port: int, *, record: bool = False) -> None:
        self._target = target_port
        # Every byte passed, both ways, when recording (what crosses the wire: tests scan it).
        self.seen: bytearray | None = bytearray() if record else None
        self.mode = "pass"
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def set(self, mode: str, delay: float = 0.0) -> None:
        """Changes behaviour at once; "refuse" also cuts every live connection."""
        assert mode in ("pass", "refuse", "delay"), mode
        self.mode, self.delay = mode, delay
        if mode == "refuse":
            for writer in list(self._live):
                writer.transport.abort()
            self._live.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            client.transport.abort()
            return
        try:
            adapter_reader, adapter = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client.transport.abort()
            return
        self._live.update((client, adapter))
        for task in (
            asyncio.create_task(self._pump(client_reader, adapter, slowed=False)),
            asyncio.create_task(self._pump(adapter_reader, client, slowed=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slowed: bool
    ) -> None:
        """Copies one direction; the adapter's answers wait `delay` each (in order) while mode is "delay"."""
        try:
            while data := await reader.read(65536):
                if slowed and self.mode == "delay":
                    await asyncio.sleep(self.delay)
                if self.mode == "refuse":
                    break
                if self.seen is not None:
                    self.seen += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._live.discard(writer)

    async def stop(self) -> None:
        self.set("refuse")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class FaultyFront(adapter_pb2_grpc.AgencyAdapterServicer):
    """An adapter as the broker sees it: the real one behind, with errors injected on Match.

    `fail_with` answers every Match with that code; `fail_first` answers only the first attempt of every
    `every`-th check with it (a retry then reaches the real adapter). `attempts` counts attempts per check.
    """

    def __init__(self, target_port: int) -> None:
        self._channel = insecure_channel(f"127.0.0.1:{target_port}")
        self._stub = adapter_pb2_grpc.AgencyAdapterStub(self._channel)
        self.fail_with: grpc.StatusCode | None = None
        self.fail_first: grpc.StatusCode | None = None
        self.every = 1
        self.attempts: Counter[str] = Counter()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        self._server = grpc.aio.server(options=server_options())
        adapter_pb2_grpc.add_AgencyAdapterServicer_to_server(self, self._server)
        add_standard_services(self._server, [ADAPTER_SERVICE], [SOURCE_HEALTH])
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return port

    async def Match(
        self,
        request: adapter_pb2.MatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.MatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        self.attempts[request.check_id] += 1
        if self.fail_with is not None:
            await context.abort(self.fail_with, "injected fault")
        first = self.attempts[request.check_id] == 1
        if self.fail_first is not None and first and len(self.attempts) % self.every == 0:
            await context.abort(self.fail_first, "injected fault")
        remaining = context.time_remaining()
        return await self._stub.Match(request, timeout=remaining)

    async def MatchHousehold(
        self,
        request: adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.HouseholdMatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        return await self._stub.MatchHousehold(request, timeout=context.time_remaining())

    async def Describe(
        self,
        request: adapter_pb2.DescribeRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.DescribeRequest, adapter_pb2.DescribeResponse],
    ) -> adapter_pb2.DescribeResponse:
        return await self._stub.Describe(request, timeout=context.time_remaining())

    async def Reidentify(
        self,
        request: adapter_pb2.ReidentifyRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.ReidentifyRequest, adapter_pb2.ReidentifyResponse],
    ) -> adapter_pb2.ReidentifyResponse:
        return await self._stub.Reidentify(request, timeout=context.time_remaining())

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
        await self._channel.close()


@dataclass
class Outcome:
    """One call as its caller saw it."""

    item: int
    started: float
    elapsed: float
    response: broker_pb2.CheckResponse | None = None
    code: grpc.StatusCode = grpc.StatusCode.OK
    detail: str = ""


@dataclass
class Load:
    """`clients` callers checking in a loop, each call with `deadline` seconds, until stop()."""

    address: str
    caller: Caller
    requests: Sequence[broker_pb2.CheckRequest]
    tls: Tls | None = None
    clients: int = 6
    deadline: float = 2.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def _client(self, n: int) -> None:
        async with broker_channel(self.address, self.caller, self.tls) as channel:
            stub = broker_pb2_grpc.LateralCheckStub(channel)
            i = n
            while not self._stopping.is_set():
                item = i % len(self.requests)
                i += self.clients
                started = time.perf_counter()
                try:
                    response = await stub.Check(self.requests[item], timeout=self.deadline)
                except grpc.aio.AioRpcError as error:
                    self.outcomes.append(
                        Outcome(
                            item,
                            started,
                            time.perf_counter() - started,
                            None,
                            error.code(),
                            error.details() or "",
                        )
                    )
                    await asyncio.sleep(0.05)  # a refused caller waits a little, as a case system would
                    continue
                self.outcomes.append(Outcome(item, started, time.perf_counter() - started, response))

    async def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        """Keeps the load on until `done()` holds (checked every 50 ms); fails after `timeout` seconds."""
        limit = time.perf_counter() + timeout
        while not done():
            assert time.perf_counter() < limit, "the awaited state was not reached in time"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    def since(self, at: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.started >= at]
