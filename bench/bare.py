"""The bare baseline (issue 12): the transport's limit on this machine, measured in the same run as the real
federation.

    python -m bench.bare adapter --listen 127.0.0.1:0 [--agency ID] [--tls-ca CA --tls-cert C --tls-key K]
    python -m bench.bare broker --listen 127.0.0.1:0 --adapter HOST:PORT [--adapter ...] [tls options]

Each prints `bare adapter|broker listening on <host>:<port>` on stderr when ready and stops cleanly on
SIGTERM (or Ctrl-C). `start_bare(adapters, tls)` starts one broker and N adapters, each its own process as
the real federation runs in the benchmark, and `BareFederation.stop()` ends them.

What is the same as the real system:
- the messages on the wire: the client's `CheckRequest`; a `MatchRequest` per agency built from it as the
  broker builds it (subject, purpose, justification, case ref, a requester, a 32-hex check id); a
  `MatchResponse` of realistic size (a KNOWN finding, two categories, a latest date, a count, a contact,
  clause ids) and a `CheckResponse` with one `AgencyResult` per agency, a check id, a timestamp, the
  aggregate counts, a review reason and the agreement's label. tests/integration/test_bench_bare.py keeps
  their sizes within 30% of a real check's answer for a KNOWN person;
- the transport: grpc.aio servers and channels with the real services' options (`lateral.rpc`), mutual TLS
  with client certificates required when certificates are given (the real federation refuses plaintext),
  long-lived channels from the broker to every adapter, every adapter asked concurrently
  (`asyncio.gather`) with a per-call `timeout=` derived from the caller's deadline, and an agency that
  fails becoming a row (UNAVAILABLE or TIMEOUT), never a failed check.

What is not done, by design: no validation, no rate limits, no caller identity (the user assertion the
client sends is not read), no Cedar policy, no audit log, no telemetry, no matching (the adapter answers a
`MatchResponse` built once at start), no `asyncio.wait_for` guard around each agency call, no health or
reflection services (the real servers register them; they cost nothing per check). Describe and
MatchHousehold answer UNIMPLEMENTED, as do the broker's methods other than Check. Whatever the real system
costs beyond these processes is its own work.

Why a Python broker is the fair baseline: the real broker and adapters are Python on grpc.aio, so a broker
in Go or C++ would measure another runtime's limit, not the floor under ours. Same language, same library,
same options, same process layout and the same bytes, doing no work: the difference between the two is
exactly what our code costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import grpc
from google.protobuf import timestamp_pb2

from lateral.rpc import ADAPTER_SERVICE, CHANNEL_OPTIONS, SERVER_OPTIONS, add_standard_services
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, broker_pb2_grpc, common_pb2

if TYPE_CHECKING:
    from protos.lateral.v1.adapter_pb2_grpc import AgencyAdapterAsyncStub

# Each agency call's timeout when the caller sets no deadline, and its cap when it does.
AGENCY_TIMEOUT_S = 5.0
READY = "listening on"
# The checkout the processes import: this one, whatever the caller's working directory.
ROOT = Path(__file__).resolve().parents[1]
KNOWN = common_pb2.OUTCOME_KNOWN
ONLY_CHECK = "the bare broker answers Check only"
ONLY_MATCH = "the bare adapter answers Match only"
# Who asks, as the real broker would establish it from the client's certificate and user assertion.
REQUESTER = adapter_pb2.Requester(
    organisation="northshire-council", system="case-system", user="demo.manager", role="mash-manager"
)
AGREEMENT = "northshire-mash-lateral-checks v1"
REVIEW_WINDOW_DAYS = 365
REVIEW_REASON = broker_pb2.ReviewReason(
    rule_id="RV1",
    description="Recent activity at two or more agencies: consider a multi-agency strategy discussion "
    "(activity at 4 agencies within 365 days)",
)


def agency_id(n: int) -> str:
    """The id of the n-th adapter (from 1), as the broker's rows and start_bare's adapters name it."""
    return f"agency-{n}"


def agency_name(n: int) -> str:
    """The n-th agency's display name, as long as the real ones ("Northshire NHS Foundation Trust")."""
    return f"Bare Agency {n} Safeguarding Service"


def canned_match_response(agency: str, today: dt.date | None = None) -> adapter_pb2.MatchResponse:
    """The adapter's one answer: a KNOWN finding as large as a real one (≈ 150-190 bytes)."""
    latest = (today or dt.date.today()) - dt.timedelta(days=30)
    return adapter_pb2.MatchResponse(
        agency_id=agency,
        finding=common_pb2.Finding(
            outcome=KNOWN,
            categories=["child-protection-plan", "concern-for-welfare"],
            latest_activity_date=latest.isoformat(),
            activity_count=3,
            contact=common_pb2.Contact(
                name="Named Safeguarding Lead",
                role="Multi-Agency Safeguarding Hub",
                phone="01632 960000",
                email="safeguarding.lead@agency.example",
            ),
        ),
        clause_ids=["P1"],
    )


def match_request(request: broker_pb2.CheckRequest, check_id: str) -> adapter_pb2.MatchRequest:
    """What every agency is asked, built from the check as the real broker builds it."""
    return adapter_pb2.MatchRequest(
        check_id=check_id,
        subject=request.subject,
        purpose=request.purpose,
        justification=request.justification,
        case_ref=request.case_ref,
        requester=REQUESTER,
    )


def check_response(check_id: str, rows: Sequence[common_pb2.AgencyResult]) -> broker_pb2.CheckResponse:
    """The broker's answer: the rows, the counts (every KNOWN finding is recent) and the canned review."""
    known = sum(1 for row in rows if row.finding.outcome == KNOWN)
    checked_at = timestamp_pb2.Timestamp()
    checked_at.GetCurrentTime()
    return broker_pb2.CheckResponse(
        check_id=check_id,
        checked_at=checked_at,
        results=rows,
        agencies_with_activity=known,
        agencies_with_recent_activity=known,
        review_window_days=REVIEW_WINDOW_DAYS,
        review_required=known >= 2,
        review_reasons=[REVIEW_REASON] if known >= 2 else [],
        agreement=AGREEMENT,
    )


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def answered_row(
    agency: str, name: str, response: adapter_pb2.MatchResponse, started: float
) -> common_pb2.AgencyResult:
    """An agency's row for its answer, as the real broker makes it (its finding and clauses, PERMITTED)."""
    status = common_pb2.AgencyStatus(
        code="OK", elapsed_ms=_elapsed_ms(started), reason="PERMITTED", clause_ids=response.clause_ids
    )
    return common_pb2.AgencyResult(
        agency_id=agency, agency_name=name, finding=response.finding, status=status
    )


def failed_row(agency: str, name: str, code: grpc.StatusCode, started: float) -> common_pb2.AgencyResult:
    """An agency's row when its call failed: TIMEOUT for a missed deadline, else UNAVAILABLE."""
    timed_out = code == grpc.StatusCode.DEADLINE_EXCEEDED
    return common_pb2.AgencyResult(
        agency_id=agency,
        agency_name=name,
        finding=common_pb2.Finding(
            outcome=common_pb2.OUTCOME_TIMEOUT if timed_out else common_pb2.OUTCOME_UNAVAILABLE
        ),
        status=common_pb2.AgencyStatus(
            code=code.name,
            detail=f"the agency's adapter answered {code.name}",
            elapsed_ms=_elapsed_ms(started),
        ),
    )


class _TlsFiles(Protocol):
    @property
    def ca(self) -> str: ...
    @property
    def cert(self) -> str: ...
    @property
    def key(self) -> str: ...


@dataclass(frozen=True)
class BareTls:
    """A process's mutual-TLS files: the federation's CA, its certificate and its key (PEM)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(cls, section: _TlsFiles) -> BareTls:
        """From a `pki.tls.TlsSection`, e.g. `prepared.pki.broker_tls` or `prepared.pki.adapter_tls(a)`."""
        return cls(Path(section.ca), Path(section.cert), Path(section.key))

    def args(self) -> list[str]:
        return ["--tls-ca", str(self.ca), "--tls-cert", str(self.cert), "--tls-key", str(self.key)]

    def server_credentials(self) -> grpc.ServerCredentials:
        """A client certificate from the CA is required, as on every real server."""
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.ca.read_bytes(),
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.ca.read_bytes(), self.key.read_bytes(), self.cert.read_bytes()
        )


class BareAdapter(adapter_pb2_grpc.AgencyAdapterServicer):
    """Answers every Match with the same pre-built response: at once, or as a finite agency would, `capacity`
    at a time, each taking `service_ms` (without using the CPU), the others waiting their turn."""

    def __init__(self, agency: str, capacity: int = 0, service_ms: float = 0.0) -> None:
        self._response = canned_match_response(agency)
        self._slots = asyncio.Semaphore(capacity) if capacity else None
        self._service = service_ms / 1000

    async def Match(
        self,
        request: adapter_pb2.MatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.MatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        if self._slots is not None:
            async with self._slots:
                await asyncio.sleep(self._service)
        return self._response

    async def Describe(
        self,
        request: adapter_pb2.DescribeRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.DescribeRequest, adapter_pb2.DescribeResponse],
    ) -> adapter_pb2.DescribeResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_MATCH)

    async def MatchHousehold(
        self,
        request: adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.HouseholdMatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_MATCH)

    async def Reidentify(
        self,
        request: adapter_pb2.ReidentifyRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.ReidentifyRequest, adapter_pb2.ReidentifyResponse],
    ) -> adapter_pb2.ReidentifyResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_MATCH)


@dataclass(frozen=True)
class _Agency:
    id: str
    name: str
    stub: AgencyAdapterAsyncStub


class BareBroker(broker_pb2_grpc.LateralCheckServicer):
    """Asks every adapter at once on long-lived channels and aggregates one row per agency."""

    def __init__(self, addresses: Sequence[str], tls: BareTls | None) -> None:
        credentials = tls.channel_credentials() if tls is not None else None
        self._channels = [
            grpc.aio.insecure_channel(a, options=CHANNEL_OPTIONS)
            if credentials is None
            else grpc.aio.secure_channel(a, credentials, options=CHANNEL_OPTIONS)
            for a in addresses
        ]
        self._agencies = [
            _Agency(agency_id(n), agency_name(n), adapter_pb2_grpc.AgencyAdapterStub(c))
            for n, c in enumerate(self._channels, start=1)
        ]

    @staticmethod
    async def _ask(
        agency: _Agency, request: adapter_pb2.MatchRequest, timeout: float
    ) -> common_pb2.AgencyResult:
        started = time.perf_counter()
        try:
            response = await agency.stub.Match(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            return failed_row(agency.id, agency.name, error.code(), started)
        return answered_row(agency.id, agency.name, response, started)

    async def Check(
        self,
        request: broker_pb2.CheckRequest,
        context: grpc.aio.ServicerContext[broker_pb2.CheckRequest, broker_pb2.CheckResponse],
    ) -> broker_pb2.CheckResponse:
        remaining = context.time_remaining()
        timeout = AGENCY_TIMEOUT_S if remaining is None else max(0.001, min(AGENCY_TIMEOUT_S, remaining))
        check_id = uuid.uuid4().hex
        asked = match_request(request, check_id)
        rows = await asyncio.gather(*(self._ask(a, asked, timeout) for a in self._agencies))
        return check_response(check_id, rows)

    async def ListAgencies(
        self,
        request: broker_pb2.ListAgenciesRequest,
        context: grpc.aio.ServicerContext[broker_pb2.ListAgenciesRequest, broker_pb2.ListAgenciesResponse],
    ) -> broker_pb2.ListAgenciesResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)

    async def CheckHousehold(
        self,
        request: broker_pb2.HouseholdRequest,
        context: grpc.aio.ServicerContext[broker_pb2.HouseholdRequest, broker_pb2.CheckResponse],
    ) -> broker_pb2.CheckResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)

    async def Status(
        self,
        request: broker_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[broker_pb2.StatusRequest, broker_pb2.StatusResponse],
    ) -> broker_pb2.StatusResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)

    async def ListReviewCandidates(
        self,
        request: broker_pb2.ListReviewCandidatesRequest,
        context: grpc.aio.ServicerContext[
            broker_pb2.ListReviewCandidatesRequest, broker_pb2.ListReviewCandidatesResponse
        ],
    ) -> broker_pb2.ListReviewCandidatesResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)

    async def RequestReview(
        self,
        request: broker_pb2.ReviewRequest,
        context: grpc.aio.ServicerContext[broker_pb2.ReviewRequest, broker_pb2.ReviewResponse],
    ) -> broker_pb2.ReviewResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)

    async def CheckMany(
        self,
        request_iterator: AsyncIterator[broker_pb2.BulkItem],
        context: grpc.aio.ServicerContext[broker_pb2.BulkItem, broker_pb2.BulkResult],
    ) -> AsyncIterator[broker_pb2.BulkResult]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, ONLY_CHECK)
        yield broker_pb2.BulkResult()  # never reached: makes this the stream the method must be

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))


# The processes.


async def _serve(
    what: str,
    listen: str,
    tls: BareTls | None,
    adapters: Sequence[str],
    agency: str,
    capacity: int = 0,
    service_ms: float = 0.0,
) -> None:
    """Serves until SIGTERM or SIGINT, saying when it listens, then stops (a second for calls in flight)."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    broker: BareBroker | None = None
    if what == "broker":
        broker = BareBroker(adapters, tls)
        broker_pb2_grpc.add_LateralCheckServicer_to_server(broker, server)
    else:
        adapter_pb2_grpc.add_AgencyAdapterServicer_to_server(
            BareAdapter(agency, capacity, service_ms), server
        )
        if capacity:  # a finite agency stands for a real one: the broker's circuit breaker probes its health
            add_standard_services(server, [ADAPTER_SERVICE])
    port = (
        server.add_insecure_port(listen)
        if tls is None
        else server.add_secure_port(listen, tls.server_credentials())
    )
    await server.start()
    print(f"bare {what} {READY} {listen.rsplit(':', 1)[0]}:{port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1.0)
    if broker is not None:
        await broker.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["adapter", "broker"])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--adapter", action="append", default=[], help="an adapter's HOST:PORT (broker)")
    parser.add_argument("--agency", default=agency_id(1), help="the agency id the adapter answers with")
    parser.add_argument("--capacity", type=int, default=0, help="answers at once (adapter; 0: unlimited)")
    parser.add_argument("--service-ms", type=float, default=0.0, help="each answer's time (with --capacity)")
    parser.add_argument("--tls-ca")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args(argv)
    files = (args.tls_ca, args.tls_cert, args.tls_key)
    if any(files) and not all(files):
        parser.error("mutual TLS needs all of --tls-ca, --tls-cert and --tls-key")
    if args.what == "broker" and not args.adapter:
        parser.error("the broker needs at least one --adapter HOST:PORT")
    tls = BareTls(*(Path(f) for f in files)) if all(files) else None
    asyncio.run(
        _serve(args.what, args.listen, tls, args.adapter, args.agency, args.capacity, args.service_ms)
    )


@dataclass
class BareProcess:
    """One bare server in its own process; `address` once it listens, its stderr lines as they come."""

    what: str
    process: asyncio.subprocess.Process
    address: str = ""
    lines: list[str] = field(default_factory=list)
    ready: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        """Reads stderr to its end (so the pipe never fills), resolving `ready` with the address."""
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if not self.ready.done() and line.startswith(f"bare {self.what} {READY} "):
                self.ready.set_result(line.rsplit(" ", 1)[1])
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"bare {self.what} exited:\n" + "\n".join(self.lines)))

    def _signal(self, sig: signal.Signals) -> None:
        # os.kill, not Popen.send_signal: that polls first and may reap a child which has just exited, from
        # under asyncio's child watcher (which then reports exit code 255). Until the watcher reaps it, the
        # pid is still this child's.
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)

    async def stop(self, timeout: float) -> int:
        """SIGTERM, then SIGKILL if it has not exited within timeout; returns its exit code."""
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self.process.wait()
        if self.reader is not None:
            await self.reader
        return self.process.returncode if self.process.returncode is not None else -1


async def _spawn(what: str, args: Sequence[str], ready_timeout: float) -> BareProcess:
    """Starts `python -m bench.bare <what> ...` from this checkout and waits until it listens."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bare",
        what,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    bare = BareProcess(what, process)
    bare.reader = asyncio.create_task(bare.read())
    try:
        bare.address = await asyncio.wait_for(asyncio.shield(bare.ready), ready_timeout)
    except BaseException:
        bare.ready.cancel()  # nobody will ask for it now
        await bare.stop(1.0)
        raise
    return bare


@dataclass
class BareFederation:
    """A bare broker and its adapters, each in its own process."""

    broker: BareProcess
    adapters: list[BareProcess]

    @property
    def broker_address(self) -> str:
        return self.broker.address

    @property
    def adapter_addresses(self) -> list[str]:
        return [a.address for a in self.adapters]

    @property
    def processes(self) -> list[BareProcess]:
        return [self.broker, *self.adapters]

    async def stop(self, timeout: float = 5.0) -> list[int]:
        """Stops the broker, then the adapters (SIGTERM, SIGKILL after timeout); returns the exit codes,
        broker first (0 for a clean stop)."""
        codes = [await self.broker.stop(timeout)]
        codes += await asyncio.gather(*(a.stop(timeout) for a in self.adapters))
        return codes

    async def __aenter__(self) -> BareFederation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_bare(
    adapters: int,
    tls: BareTls | None,
    *,
    adapter_tls: Sequence[BareTls] = (),
    ready_timeout: float = 30.0,
    capacity: int = 0,
    service_ms: float = 0.0,
) -> BareFederation:
    """Starts `adapters` bare adapters, then a bare broker asking them all, on 127.0.0.1 ports of their
    own, each in its own process; returns once every one listens.

    Args:
        tls: the broker's certificate (server and client to the adapters) and, without adapter_tls, the
            adapters' too; None runs everything in plaintext.
        adapter_tls: the adapters' own certificates, used in turn (e.g. `prepared.pki.adapter_tls(a)` for
            each agency). Any certificate of the federation's CA will do: the bare servers check only that.
        capacity, service_ms: each adapter answers `capacity` at a time, each in `service_ms` (a finite
            agency, for bench/overload.py); 0: at once.

    Raises:
        RuntimeError: a process exited before it listened (its stderr is in the message).
        TimeoutError: a process did not listen within ready_timeout seconds.
    """
    if adapters < 1:
        raise ValueError("a bare federation needs at least one adapter")

    def adapter_args(n: int) -> list[str]:
        own = adapter_tls[(n - 1) % len(adapter_tls)] if adapter_tls else tls
        finite = ["--capacity", str(capacity), "--service-ms", str(service_ms)] if capacity else []
        return ["--listen", "127.0.0.1:0", "--agency", agency_id(n), *finite, *(own.args() if own else [])]

    spawned = [
        asyncio.ensure_future(_spawn("adapter", adapter_args(n), ready_timeout))
        for n in range(1, adapters + 1)
    ]
    await asyncio.wait(spawned)
    started = [task.result() for task in spawned if not task.cancelled() and task.exception() is None]
    try:
        for task in spawned:
            task.result()  # the first failure, if any
        targets = [arg for a in started for arg in ("--adapter", a.address)]
        broker = await _spawn(
            "broker", ["--listen", "127.0.0.1:0", *targets, *(tls.args() if tls else [])], ready_timeout
        )
    except BaseException:
        await asyncio.gather(*(a.stop(1.0) for a in started))
        raise
    return BareFederation(broker, started)


if __name__ == "__main__":
    main()
