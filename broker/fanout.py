"""Asking every agency at once on long-lived channels, each call bounded by the caller's deadline.

An agency that is down, failing or slow becomes a row with its status; it never fails the check. Calls that
never reached an adapter are retried, and an agency that keeps failing is not asked until a probe finds it
back (broker/resilience.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.trace import SpanKind

from broker.config import AgencyEndpoint
from broker.resilience import Circuit, ResilienceSection, retry_options
from lateral.errors import status_of
from lateral.metrics import BrokerMetrics
from lateral.rpc import ADAPTER_SERVICE, SOURCE_HEALTH, insecure_channel, secure_channel
from lateral.telemetry import Telemetry, outgoing_metadata
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, broker_pb2, common_pb2

log = logging.getLogger(__name__)

# Codes that mean the agency is there but would not answer this request.
_TIMEOUT_CODES = {grpc.StatusCode.DEADLINE_EXCEEDED}
# Answers from an adapter that works: they count towards closing its circuit, never towards opening it.
_WORKING = {grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT}
# A timeout shorter than this says more about the caller's deadline than about the agency.
_MEANINGFUL_TIMEOUT_S = 0.25


class AgencyClient:
    """One agency's adapter, reached over one long-lived channel."""

    def __init__(
        self,
        endpoint: AgencyEndpoint,
        credentials: grpc.ChannelCredentials | None,
        telemetry: Telemetry,
        metrics: BrokerMetrics,
        resilience: ResilienceSection,
    ) -> None:
        self.endpoint = endpoint
        self._telemetry = telemetry
        self._metrics = metrics
        options = retry_options(resilience.retry)
        self._channel = (
            insecure_channel(endpoint.address, options=options)
            if credentials is None
            else secure_channel(endpoint.address, credentials, options=options)
        )
        self._stub = adapter_pb2_grpc.AgencyAdapterStub(self._channel)
        # The health stubs' types describe the synchronous stub only.
        self._health: Any = health_pb2_grpc.HealthStub(self._channel)
        self.circuit = Circuit(endpoint.id, resilience.circuit, self._serving, metrics.circuit)

    async def _serving(self, timeout: float) -> bool:
        """The circuit's probe: whether the adapter's health service says it serves."""
        try:
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=ADAPTER_SERVICE), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def _row(
        self,
        finding: common_pb2.Finding,
        code: grpc.StatusCode,
        detail: str,
        started: float,
        reason: str = "",
        clauses: Sequence[str] = (),
    ) -> common_pb2.AgencyResult:
        return common_pb2.AgencyResult(
            agency_id=self.endpoint.id,
            agency_name=self.endpoint.name,
            finding=finding,
            status=common_pb2.AgencyStatus(
                code=code.name,
                detail=detail,
                elapsed_ms=int((time.perf_counter() - started) * 1000),
                reason=reason,
                clause_ids=clauses,
            ),
        )

    def _refused(self, error: grpc.aio.AioRpcError, started: float) -> common_pb2.AgencyResult:
        """The agency's own copy of the agreement refused the request: its decision wins for its data."""
        reason, clauses = "NOT_PERMITTED", []
        status = status_of(error)
        for detail in status.details if status is not None else ():
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
                clauses = [c for c in info.metadata.get("clauses", "").split(",") if c]
        return self._row(
            common_pb2.Finding(outcome=common_pb2.OUTCOME_DENIED),
            grpc.StatusCode.PERMISSION_DENIED,
            f"refused by the agency: {error.details()}",
            started,
            reason,
            clauses,
        )

    async def match(
        self,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        timeout: float,
    ) -> common_pb2.AgencyResult:
        """Asks the agency (Match, or MatchHousehold for an address), never raising: failures become
        UNAVAILABLE or TIMEOUT rows. Traced as a client span whose context travels with the call."""
        started = time.perf_counter()
        if not self.circuit.allows:
            self._metrics.agency(self.endpoint.id, "UNAVAILABLE", 0.0)
            return self._circuit_row(started)
        attributes = {"lateral.agency": self.endpoint.id}
        with self._telemetry.span("lateral.agency.call", attributes, kind=SpanKind.CLIENT) as span:
            row = await self._ask(request, timeout, started)
            self._count(row, timeout)
            outcome = common_pb2.Outcome.Name(row.finding.outcome).removeprefix("OUTCOME_")
            if span.is_recording():
                span.set_attribute("lateral.outcome", outcome)
                span.set_attribute("rpc.grpc.status_code", row.status.code)
        self._metrics.agency(self.endpoint.id, outcome, time.perf_counter() - started)
        return row

    def _circuit_row(self, started: float) -> common_pb2.AgencyResult:
        return self._row(
            common_pb2.Finding(outcome=common_pb2.OUTCOME_UNAVAILABLE),
            grpc.StatusCode.UNAVAILABLE,
            self.circuit.refusal(),
            started,
            "CIRCUIT_OPEN",
        )

    def _count(self, row: common_pb2.AgencyResult, timeout: float) -> None:
        """Tells the circuit how the call went."""
        code = grpc.StatusCode[row.status.code]
        if code in _WORKING:
            self.circuit.succeeded()
        elif code not in _TIMEOUT_CODES or timeout >= _MEANINGFUL_TIMEOUT_S:
            self.circuit.failed()

    async def _ask(
        self,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        timeout: float,
        started: float,
    ) -> common_pb2.AgencyResult:
        metadata = outgoing_metadata()
        try:
            # The per-call timeout is the deadline the adapter sees; the outer guard covers a channel stuck
            # before the call starts.
            call = (
                self._stub.MatchHousehold(request, timeout=timeout, metadata=metadata)
                if isinstance(request, adapter_pb2.HouseholdMatchRequest)
                else self._stub.Match(request, timeout=timeout, metadata=metadata)
            )
            response = await asyncio.wait_for(call, timeout + 0.1)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            return self._failed(error, f"check {request.check_id}", timeout, started)
        return self._row(response.finding, grpc.StatusCode.OK, "", started, "PERMITTED", response.clause_ids)

    def _failed(
        self, error: grpc.aio.AioRpcError | TimeoutError, what: str, timeout: float, started: float
    ) -> common_pb2.AgencyResult:
        """The row of a call without an answer: refused under the agency's agreement, timed out, or failed."""
        code = error.code() if isinstance(error, grpc.aio.AioRpcError) else grpc.StatusCode.DEADLINE_EXCEEDED
        if isinstance(error, grpc.aio.AioRpcError) and code == grpc.StatusCode.PERMISSION_DENIED:
            log.info("%s: %s refused it under its agreement", what, self.endpoint.id)
            return self._refused(error, started)
        if code in _TIMEOUT_CODES:
            outcome, detail = common_pb2.OUTCOME_TIMEOUT, f"no answer within {timeout * 1000:.0f} ms"
        else:
            outcome, detail = common_pb2.OUTCOME_UNAVAILABLE, f"the agency's adapter answered {code.name}"
        log.warning("%s: %s %s", what, self.endpoint.id, code.name)
        return self._row(common_pb2.Finding(outcome=outcome), code, detail, started)

    async def reidentify(
        self, request: adapter_pb2.ReidentifyRequest, timeout: float
    ) -> tuple[common_pb2.AgencyResult, adapter_pb2.ReidentifyResponse | None]:
        """Asks the agency who its record of a review candidate is (docs/proactive.md); never raising. The
        row says how the call went, as a check's row would; the answer comes with it when there is one."""
        started = time.perf_counter()
        if not self.circuit.allows:
            return self._circuit_row(started), None
        try:
            call = self._stub.Reidentify(request, timeout=timeout, metadata=outgoing_metadata())
            response = await asyncio.wait_for(call, timeout + 0.1)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            row = self._failed(error, f"review {request.review_id}", timeout, started)
            self._count(row, timeout)
            return row, None
        row = self._row(
            common_pb2.Finding(outcome=response.outcome),
            grpc.StatusCode.OK,
            "",
            started,
            "PERMITTED",
            response.clause_ids,
        )
        self._count(row, timeout)
        return row, response

    async def health(self, timeout: float) -> broker_pb2.AgencyHealth:
        """The adapter's health, its database's health and its Describe, asked at once; never raising."""
        e = self.endpoint
        started = time.perf_counter()
        row = broker_pb2.AgencyHealth(
            agency_id=e.id, agency_name=e.name, endpoint=e.address, circuit=self.circuit.state.value
        )

        def serving(status: int) -> str:
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))

        try:
            service, source, describe = await asyncio.gather(
                self._health.Check(health_pb2.HealthCheckRequest(service=ADAPTER_SERVICE), timeout=timeout),
                self._health.Check(health_pb2.HealthCheckRequest(service=SOURCE_HEALTH), timeout=timeout),
                self._stub.Describe(adapter_pb2.DescribeRequest(), timeout=timeout),
            )
        except grpc.aio.AioRpcError as error:
            row.health, row.detail = "UNREACHABLE", error.code().name
        else:
            row.health, row.source_health = serving(service.status), serving(source.status)
            row.describe.CopyFrom(describe)
        row.round_trip_ms = int((time.perf_counter() - started) * 1000)
        return row

    async def close(self) -> None:
        await self.circuit.close()
        await self._channel.close()


class FanOut:
    """The clients of every configured agency, in configuration order."""

    def __init__(
        self,
        endpoints: Sequence[AgencyEndpoint],
        credentials: grpc.ChannelCredentials | None = None,
        telemetry: Telemetry | None = None,
        metrics: BrokerMetrics | None = None,
        resilience: ResilienceSection | None = None,
    ) -> None:
        """One client per agency: mutual TLS with credentials, plaintext (development) without."""
        telemetry = telemetry or Telemetry.off()
        metrics = metrics or BrokerMetrics(telemetry)
        self.resilience = resilience or ResilienceSection()
        self.clients = {
            e.id: AgencyClient(e, credentials, telemetry, metrics, self.resilience) for e in endpoints
        }

    async def ask(
        self,
        agencies: Sequence[str],
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        timeout: float,
    ) -> dict[str, common_pb2.AgencyResult]:
        """Asks the given agencies concurrently; one row per agency."""
        rows = await asyncio.gather(*(self.clients[a].match(request, timeout) for a in agencies))
        return dict(zip(agencies, rows, strict=True))

    async def health(self, timeout: float) -> list[broker_pb2.AgencyHealth]:
        """Every agency's health and description, asked concurrently, in configuration order."""
        return list(await asyncio.gather(*(c.health(timeout) for c in self.clients.values())))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))
