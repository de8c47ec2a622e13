"""The LateralCheck gRPC service: validate, fan out, aggregate."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import grpc
from google.protobuf import timestamp_pb2

from broker.config import BrokerConfig
from broker.fanout import FanOut
from broker.review import summarise
from lateral.errors import InvalidRequestError, maps_errors
from lateral.rpc import SERVER_OPTIONS, add_standard_services, bind
from policy.validation import validate_check_request
from protos.lateral.v1 import adapter_pb2, broker_pb2, broker_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = broker_pb2.DESCRIPTOR.services_by_name["LateralCheck"].full_name


class BrokerServicer(broker_pb2_grpc.LateralCheckServicer):
    def __init__(self, config: BrokerConfig, fanout: FanOut) -> None:
        self._config = config
        self._fanout = fanout
        self._purposes = {p.id: p for p in config.purposes}

    def _agency_timeout(self, remaining: float | None) -> float:
        """The per-agency deadline: the caller's remaining time less a reserve, capped by configuration."""
        b = self._config.broker
        budget = b.default_deadline_ms / 1000 if remaining is None else remaining
        return max(0.001, min(budget - b.reserve_ms / 1000, b.max_agency_timeout_ms / 1000))

    @maps_errors
    async def Check(
        self,
        request: broker_pb2.CheckRequest,
        context: grpc.aio.ServicerContext[broker_pb2.CheckRequest, broker_pb2.CheckResponse],
    ) -> broker_pb2.CheckResponse:
        violations = validate_check_request(request, self._purposes)
        if violations:
            log.info("check rejected: invalid %s", ", ".join(v.field for v in violations))
            raise InvalidRequestError(violations)
        check_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        match_request = adapter_pb2.MatchRequest(
            check_id=check_id,
            subject=request.subject,
            purpose=request.purpose,
            justification=request.justification,
            case_ref=request.case_ref,
            # Identity comes from the transport once mTLS lands; a plaintext caller is unauthenticated.
            requester=adapter_pb2.Requester(organisation="unauthenticated", system="insecure-dev"),
        )
        results = await self._fanout.ask_all(match_request, self._agency_timeout(context.time_remaining()))
        summary = summarise(results, self._config.review, now.date())
        checked_at = timestamp_pb2.Timestamp()
        checked_at.FromDatetime(now.replace(tzinfo=None))
        log.info(
            "check %s for %s: %d/%d agencies with activity, review %s",
            check_id,
            request.purpose,
            summary.agencies_with_activity,
            len(results),
            "required" if summary.reasons else "not required",
        )
        return broker_pb2.CheckResponse(
            check_id=check_id,
            checked_at=checked_at,
            results=results,
            agencies_with_activity=summary.agencies_with_activity,
            agencies_with_recent_activity=summary.agencies_with_recent_activity,
            review_window_days=self._config.review.window_days,
            review_required=bool(summary.reasons),
            review_reasons=summary.reasons,
        )

    @maps_errors
    async def ListAgencies(
        self,
        request: broker_pb2.ListAgenciesRequest,
        context: grpc.aio.ServicerContext[broker_pb2.ListAgenciesRequest, broker_pb2.ListAgenciesResponse],
    ) -> broker_pb2.ListAgenciesResponse:
        return broker_pb2.ListAgenciesResponse(
            agencies=[
                broker_pb2.AgencyInfo(agency_id=a.id, agency_name=a.name) for a in self._config.agencies
            ],
            purposes=[
                broker_pb2.PurposeInfo(
                    purpose_id=p.id,
                    description=p.description,
                    requires_case_ref=p.requires_case_ref,
                    requires_justification=p.requires_justification,
                )
                for p in self._config.purposes
            ],
        )


class BrokerServer:
    """A bound broker server and the agency channels it owns; stop() closes both."""

    def __init__(self, server: grpc.aio.Server, fanout: FanOut) -> None:
        self.server = server
        self._fanout = fanout

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.server.stop(grace)
        await self._fanout.close()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def create_server(
    config: BrokerConfig, address: str | None = None, *, insecure_dev: bool = False
) -> tuple[BrokerServer, int]:
    """Builds a bound, not yet started, broker with one long-lived channel per agency.

    Args:
        config: the broker configuration.
        address: host:port to listen on; the configuration's when None. Port 0 picks a free port.
        insecure_dev: serve and call agencies in plaintext (development only; prints a warning).

    Returns:
        The server and the port it is bound to.
    """
    fanout = FanOut(config.agencies)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    broker_pb2_grpc.add_LateralCheckServicer_to_server(BrokerServicer(config, fanout), server)
    add_standard_services(server, [SERVICE_NAME])
    try:
        port = bind(server, address or config.broker.listen, insecure_dev=insecure_dev, what="broker")
    except BaseException:
        await fanout.close()
        raise
    return BrokerServer(server, fanout), port
