"""The AgencyAdapter gRPC service: matches locally and answers with the minimal finding."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import grpc
from google.protobuf import timestamp_pb2

import lateral
from adapters.core.config import AdapterConfig
from adapters.core.disclosure import finding_for
from adapters.core.index import IndexBuilder, MatchIndex
from adapters.core.matching import Matcher, Thresholds
from adapters.core.source import Contact, read_source
from lateral.errors import FieldViolation, InvalidRequestError, maps_errors
from lateral.rpc import SERVER_OPTIONS, add_standard_services, bind
from policy.validation import validate_subject
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, common_pb2

log = logging.getLogger(__name__)

SERVICE_NAME = adapter_pb2.DESCRIPTOR.services_by_name["AgencyAdapter"].full_name


def build_index(
    config: AdapterConfig, progress: Callable[[str, int], None] = lambda stage, n: None
) -> MatchIndex:
    """Reads the agency database (streaming) and builds the match index."""
    builder = IndexBuilder(progress)
    read_source(config, builder)
    return builder.finish()


def matcher_for(config: AdapterConfig, index: MatchIndex) -> Matcher:
    """A matcher with the agency's thresholds."""
    m = config.matching
    return Matcher(index, Thresholds(m.known_probability, m.possible_probability, m.ambiguity_bits))


class AdapterServicer(adapter_pb2_grpc.AgencyAdapterServicer):
    """Serves one agency's index."""

    def __init__(self, config: AdapterConfig, index: MatchIndex) -> None:
        self._config = config
        self._index = index
        self._matcher = matcher_for(config, index)
        c = config.contact
        self._default_contact = Contact(name=c.name, role=c.role, phone=c.phone, email=c.email)

    @maps_errors
    async def Match(
        self,
        request: adapter_pb2.MatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.MatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        # The broker validated already; the agency bounds its own input all the same.
        violations = (
            validate_subject(request.subject)
            if request.HasField("subject")
            else [FieldViolation("subject", "is required")]
        )
        if violations:
            raise InvalidRequestError(violations)
        result = self._matcher.match(request.subject)
        finding = finding_for(result, self._index, self._default_contact)
        log.info(
            "check %s: %s for %s",
            request.check_id or "-",
            common_pb2.Outcome.Name(finding.outcome),
            request.purpose or "-",
        )
        return adapter_pb2.MatchResponse(agency_id=self._config.agency.id, finding=finding)

    @maps_errors
    async def Describe(
        self,
        request: adapter_pb2.DescribeRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.DescribeRequest, adapter_pb2.DescribeResponse],
    ) -> adapter_pb2.DescribeResponse:
        built = timestamp_pb2.Timestamp()
        built.FromDatetime(self._index.built_at.astimezone(dt.UTC).replace(tzinfo=None))
        return adapter_pb2.DescribeResponse(
            agency_id=self._config.agency.id,
            agency_name=self._config.agency.name,
            adapter_version=lateral.__version__,
            record_count=self._index.record_count,
            person_count=self._index.person_count,
            activity_count=self._index.activity_count,
            index_built_at=built,
            source_watermark=self._index.watermark,
            categories=self._config.categories,
        )


async def create_server(
    config: AdapterConfig, address: str | None = None, *, insecure_dev: bool = False
) -> tuple[grpc.aio.Server, int]:
    """Builds the index and a bound, not yet started, adapter server.

    Args:
        config: the adapter configuration.
        address: host:port to listen on; the configuration's when None. Port 0 picks a free port.
        insecure_dev: serve plaintext (development only; prints a warning).

    Returns:
        The server and the port it is bound to.
    """
    index = await asyncio.to_thread(build_index, config)
    log.info(
        "%s: index built: %d records, %d people, %d activities",
        config.agency.id,
        index.record_count,
        index.person_count,
        index.activity_count,
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    adapter_pb2_grpc.add_AgencyAdapterServicer_to_server(AdapterServicer(config, index), server)
    add_standard_services(server, [SERVICE_NAME])
    port = bind(
        server, address or config.server.listen, insecure_dev=insecure_dev, what=f"{config.agency.id} adapter"
    )
    return server, port
