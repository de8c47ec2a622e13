"""The AgencyAdapter gRPC service: matches locally and answers with the minimal finding."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import HealthServicer
from opentelemetry.trace import SpanKind

import lateral
from adapters.core.config import AdapterConfig, AdapterLinkage
from adapters.core.disclosure import Scope, finding_for
from adapters.core.estimate import load_weights
from adapters.core.household import AddressIndex, household_finding
from adapters.core.index import MatchIndex
from adapters.core.matching import Matcher, Thresholds, query_fields
from adapters.core.publish import Publisher, PublishError, Report, publish_forever
from adapters.core.refresh import Refresher, SourceStatus, build_index
from adapters.core.reidentify import Reidentifier
from adapters.core.scoring import Weights
from adapters.core.source import Contact
from audit.recorder import Recorder, open_recorder, released_fields
from audit.sealing import address_pseudonym, pseudonym
from lateral.errors import InvalidRequestError, PermissionDeniedError, UnavailableError, maps_errors
from lateral.logs import check_context
from lateral.metrics import AdapterMetrics, observe_audit
from lateral.rpc import (
    ADAPTER_SERVICE,
    SERVER_OPTIONS,
    SOURCE_HEALTH,
    add_standard_services,
    bind,
    insecure_channel,
    secure_channel,
    timestamp,
)
from lateral.telemetry import Telemetry, incoming_context
from pki.tls import Tls
from policy.agreement import Agreement
from policy.engine import Decision, PolicyEngine, subject_kind
from policy.engine import Request as PolicyRequest
from policy.release import release_only
from policy.trust import TrustedAgreement, load_trusted, local_today
from policy.validation import validate_check_request, validate_household_request, validate_review_request
from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc, common_pb2
from protos.lateral.v1.linkage_pb2_grpc import LinkageStub

log = logging.getLogger(__name__)

SERVICE_NAME = ADAPTER_SERVICE


def matcher_for(config: AdapterConfig, index: MatchIndex) -> Matcher:
    """A matcher with the agency's thresholds."""
    m = config.matching
    weights = _weights(m.weights_file) if m.weights_file else None
    return Matcher(index, Thresholds(m.known_probability, m.possible_probability, m.ambiguity_bits), weights)


@functools.lru_cache(maxsize=8)
def _weights(path: str) -> Weights:
    # Read once per file: a refresh installs a new matcher every minute.
    return load_weights(Path(path))


class AdapterServicer(adapter_pb2_grpc.AgencyAdapterServicer):
    """Serves one agency's index, under the agency's own signed copy of the agreement."""

    def __init__(
        self,
        config: AdapterConfig,
        index: MatchIndex,
        trusted: TrustedAgreement,
        tls: Tls | None = None,
        recorder: Recorder | None = None,
        telemetry: Telemetry | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._config = config
        self._tls = tls
        self._recorder = recorder
        self._telemetry = telemetry or Telemetry.off()
        self._metrics = AdapterMetrics(self._telemetry, config.agency.id)
        self.health: HealthServicer | None = None
        self.source = SourceStatus()
        self._brokers = frozenset(config.tls.brokers) if config.tls is not None else frozenset()
        self._config = config
        self.install(index)
        self._clock = clock
        self.adopt(config, trusted)

    def adopt(self, config: AdapterConfig, trusted: TrustedAgreement) -> None:
        """The next matches run under this agreement, contact and matching thresholds. One synchronous
        step: a match decides, scopes and matches before it first awaits, so it sees one set or the other."""
        self._config = config
        c = config.contact
        self._default_contact = Contact(name=c.name, role=c.role, phone=c.phone, email=c.email)
        self.trusted = trusted
        self._agreement = trusted.agreement
        self._engine = PolicyEngine(trusted.agreement)
        self._purposes = {p.id: p for p in trusted.agreement.purposes}
        if hasattr(self, "_index"):
            self.install(self._index)
        contact = common_pb2.Contact(name=c.name, role=c.role, phone=c.phone, email=c.email)
        publisher = self.reidentifier.publisher if hasattr(self, "reidentifier") else None
        self.reidentifier: Reidentifier = Reidentifier(config, contact, self._recorder, publisher)

    def _decide(
        self, request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest, now: dt.datetime
    ) -> tuple[PolicyRequest, Decision]:
        """The agency's own decision: it wins for its data, whatever the broker decided."""
        today = now.astimezone(self._engine.zone).date()
        subject = (
            subject_kind(request.subject.date_of_birth, today)
            if isinstance(request, adapter_pb2.MatchRequest)
            else "unknown"
        )
        asked = PolicyRequest(
            organisation=request.requester.organisation,
            role=request.requester.role,
            purpose=request.purpose,
            agency=self._config.agency.id,
            at=now,
            subject=subject,
        )
        return asked, self._engine.decide(asked)

    async def _audit(
        self, kind: str, request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest, **fields: Any
    ) -> None:
        """Records a disclosure (or a refusal) in the agency's own log; fails closed."""
        if self._recorder is None:
            return
        r = request.requester
        with self._telemetry.span("lateral.audit.write", {"lateral.audit.event": kind}):
            await self._record(kind, request, r, fields)

    async def _record(
        self,
        kind: str,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        r: adapter_pb2.Requester,
        fields: dict[str, Any],
    ) -> None:
        assert self._recorder is not None
        await self._recorder.record(
            kind,
            {
                "check_id": request.check_id,
                "organisation": r.organisation,
                "system": r.system,
                "user": r.user,
                "role": r.role,
                "purpose": request.purpose,
                "case_ref": request.case_ref,
                **(
                    {"subject_pseudonym": pseudonym(self._recorder.keys.pseudonym, request.subject)}
                    if isinstance(request, adapter_pb2.MatchRequest)
                    else {
                        "address_pseudonym": address_pseudonym(self._recorder.keys.pseudonym, request.address)
                    }
                ),
                **fields,
            },
        )

    def _refusal(
        self,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        asked: PolicyRequest,
        decision: Decision,
    ) -> Exception:
        log.info(
            "check %s refused: %s for %s/%s",
            request.check_id or "-",
            decision.reason,
            asked.organisation or "-",
            asked.role or "-",
        )
        return PermissionDeniedError(
            decision.message,
            decision.reason,
            {
                "agreement": f"{self._agreement.id} v{self._agreement.version}",
                "clauses": ",".join(decision.clauses),
            },
        )

    def report(self, status: SourceStatus) -> None:
        """The source's status, for Describe and for health (`lateral.v1.AgencyAdapter.Source`)."""
        self.source = status
        if status.ok:
            log.info("%s: the agency database can be read again", self._config.agency.id)
        elif status.stale:
            log.error("%s: the index is too old to answer from: matches are refused", self._config.agency.id)
        if self.health is not None:
            up, down = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
            self.health.set(SOURCE_HEALTH, up if status.ok else down)
            self.health.set(SERVICE_NAME, down if status.stale else up)
            self.health.set("", down if status.stale else up)

    def _require_fresh(self) -> None:
        """Refuses to answer from an index older than [refresh] stale_after_seconds."""
        if self.source.stale:
            seconds = self._config.refresh.stale_after_seconds
            age = f"{seconds / 3600:g} hours" if seconds >= 3600 else f"{seconds:g} seconds"
            raise UnavailableError(
                f"the agency database has been unreadable for too long: its index is more than {age} old, "
                "so this agency does not answer from it; contact the agency",
                60.0,
            )

    def _require_broker(self, context: object) -> None:
        """With mutual TLS, only the broker identities named in the configuration may ask for matches."""
        if self._tls is None:
            return
        peer = self._tls.peer_of(context)
        if peer.identity.uri not in self._brokers:
            log.warning("match refused: caller is a %s, not the configured broker", peer.identity.role)
            raise PermissionDeniedError(
                "only the federation's broker may ask this adapter for matches", "NOT_THE_BROKER"
            )

    def observe(self, telemetry: Telemetry) -> None:
        """Gauges of the index, the source and the audit log, read at each metrics export."""

        def counts() -> tuple[int, int, int]:
            index = self._index
            return index.record_count, index.person_count, index.activity_count

        self._metrics.observe_index(counts, lambda: self._index.refreshed_at, lambda: self.source.ok)
        if self._recorder is not None:
            audit_log = self._recorder.log
            observe_audit(
                telemetry, self._config.agency.id, lambda: audit_log.size, lambda: audit_log.checkpoint_at
            )

    @property
    def tls(self) -> Tls | None:
        return self._tls

    def publication_state(self) -> tuple[Agreement, MatchIndex, dt.date, frozenset[str]]:
        """What a publication is made from now: the agreement, the index, the agreement's today, and the
        categories never published."""
        agreement = self._agreement
        hidden = self._engine.unpublished_categories(self._config.agency.id)
        return agreement, self._index, local_today(agreement), hidden

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    @property
    def index(self) -> MatchIndex:
        return self._index

    def install(self, index: MatchIndex) -> None:
        """Starts answering from a new index (one assignment: a query in flight keeps the one it had)."""
        self._matcher = matcher_for(self._config, index)
        self._addresses = AddressIndex(index)
        self._index = index

    def observe_error(self, method: str, code: grpc.StatusCode) -> None:
        self._metrics.error(method, code.name)

    @contextlib.contextmanager
    def _traced(
        self,
        kind: str,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Iterator[dict[str, str]]:
        """One server span per match, a child of the broker's call when it sent a trace context; timed
        by kind and outcome. The caller puts the outcome into the yielded dict."""
        purpose = request.purpose if request.purpose in self._purposes else "(unknown)"
        attributes = {
            "lateral.agency": self._config.agency.id,
            "lateral.kind": kind,
            "lateral.purpose": purpose,
            "lateral.check_id": request.check_id[:32],
        }
        started = time.perf_counter()
        result = {"outcome": "ERROR"}
        parent = incoming_context(context.invocation_metadata())
        with (
            check_context(request.check_id[:32] or "-"),
            self._telemetry.span(
                "lateral.adapter.match", attributes, kind=SpanKind.SERVER, parent=parent
            ) as span,
        ):
            try:
                yield result
            finally:
                if span.is_recording():
                    span.set_attribute("lateral.outcome", result["outcome"])
                self._metrics.match(kind, result["outcome"], time.perf_counter() - started)

    @maps_errors
    async def Match(
        self,
        request: adapter_pb2.MatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.MatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        with self._traced("person", request, context) as result:
            response = await self._match(request, context)
            result["outcome"] = common_pb2.Outcome.Name(response.finding.outcome).removeprefix("OUTCOME_")
            return response

    async def _match(
        self,
        request: adapter_pb2.MatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.MatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        asked, decision, now = await self._admit(request, context, "disclosure-refused")
        scope = Scope(
            since=now.astimezone(self._engine.zone).date() - dt.timedelta(days=decision.lookback_days),
            hidden=self._engine.hidden_categories(asked, self._config.categories),
        )
        matcher = self._matcher
        q = query_fields(request.subject)
        with self._telemetry.span("lateral.index.lookup") as span:
            rows = matcher.candidates(q)
            if span.is_recording():
                span.set_attribute("lateral.candidates", len(rows))
        with self._telemetry.span("lateral.score"):
            result = matcher.judge(q, rows)
        finding = release_only(
            finding_for(result, matcher.index, self._default_contact, scope), decision.released
        )
        response = await self._disclose("disclosure", request, finding, decision)
        log.info(
            "check %s: %s for %s",
            request.check_id or "-",
            common_pb2.Outcome.Name(finding.outcome),
            request.purpose or "-",
        )
        return response

    async def _admit(
        self,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        refused: str,
    ) -> tuple[PolicyRequest, Decision, dt.datetime]:
        """What every match does first: only the broker may ask, the index must be fresh, the request valid
        (the broker validated already; the agency bounds its own input all the same), and the agency's own
        agreement must permit it. A refusal is recorded as the `refused` event and raised."""
        self._require_broker(context)
        self._require_fresh()
        violations = (
            validate_check_request(request, self._purposes)
            if isinstance(request, adapter_pb2.MatchRequest)
            else validate_household_request(request, self._purposes)
        )
        if violations:
            raise InvalidRequestError(violations)
        now = self._clock()
        with self._telemetry.span("lateral.policy"):
            asked, decision = self._decide(request, now)
        if not decision.allowed:
            await self._audit(refused, request, reason=decision.reason, clauses=list(decision.clauses))
            raise self._refusal(request, asked, decision)
        return asked, decision, now

    async def _disclose(
        self,
        kind: str,
        request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest,
        finding: common_pb2.Finding,
        decision: Decision,
    ) -> adapter_pb2.MatchResponse:
        """Records the disclosure (durable before anything is released), then the answer."""
        await self._audit(
            kind,
            request,
            outcome=common_pb2.Outcome.Name(finding.outcome).removeprefix("OUTCOME_"),
            released=released_fields(finding),
            clauses=list(decision.clauses),
        )
        return adapter_pb2.MatchResponse(
            agency_id=self._config.agency.id, finding=finding, clause_ids=decision.clauses
        )

    @maps_errors
    async def MatchHousehold(
        self,
        request: adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.HouseholdMatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        with self._traced("household", request, context) as result:
            response = await self._match_household(request, context)
            result["outcome"] = common_pb2.Outcome.Name(response.finding.outcome).removeprefix("OUTCOME_")
            return response

    async def _match_household(
        self,
        request: adapter_pb2.HouseholdMatchRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.HouseholdMatchRequest, adapter_pb2.MatchResponse],
    ) -> adapter_pb2.MatchResponse:
        asked, decision, now = await self._admit(request, context, "household-refused")
        addresses = self._addresses
        with self._telemetry.span("lateral.index.lookup"):
            match = await asyncio.to_thread(addresses.match, request.address)
        finding = release_only(
            household_finding(
                match,
                addresses.index,
                self._default_contact,
                now.astimezone(self._engine.zone).date() - dt.timedelta(days=decision.lookback_days),
                self._engine.hidden_categories(asked, self._config.categories),
            ),
            decision.released,
        )
        return await self._disclose("household-disclosure", request, finding, decision)

    @maps_errors
    async def Reidentify(
        self,
        request: adapter_pb2.ReidentifyRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.ReidentifyRequest, adapter_pb2.ReidentifyResponse],
    ) -> adapter_pb2.ReidentifyResponse:
        """Who a proactive review candidate's record is (adapters/core/reidentify.py)."""
        self._require_broker(context)
        self._require_fresh()
        violations = validate_review_request(request, self._purposes)
        if violations:
            raise InvalidRequestError(violations)
        with check_context(request.review_id[:32] or "-"):
            return await self.reidentifier.answer(request, self._engine, self._index, self._clock())

    @maps_errors
    async def Describe(
        self,
        request: adapter_pb2.DescribeRequest,
        context: grpc.aio.ServicerContext[adapter_pb2.DescribeRequest, adapter_pb2.DescribeResponse],
    ) -> adapter_pb2.DescribeResponse:
        index = self._index
        return adapter_pb2.DescribeResponse(
            agency_id=self._config.agency.id,
            agency_name=self._config.agency.name,
            adapter_version=lateral.__version__,
            record_count=index.record_count,
            person_count=index.person_count,
            activity_count=index.activity_count,
            index_built_at=timestamp(index.built_at),
            index_refreshed_at=timestamp(index.refreshed_at),
            source_watermark=index.watermark,
            categories=self._config.categories,
            agreement=f"{self._agreement.id} v{self._agreement.version}",
            source_status="OK" if self.source.ok else "DEGRADED",
            source_detail=""
            if self.source.ok or self.source.since is None
            else f"since {self.source.since.isoformat(timespec='seconds')}: {self.source.detail}",
        )


# Parts of an adapter's configuration that a reload cannot change: they need a restart.
_NEEDS_RESTART = (
    "server",
    "source",
    "mapping",
    "vocabulary",
    "tls",
    "audit",
    "telemetry",
    "refresh",
    "linkage",
)


class AdapterServer:
    """A bound adapter server and its index refresher; stop() ends both."""

    def __init__(
        self,
        server: grpc.aio.Server,
        servicer: AdapterServicer,
        config: AdapterConfig,
        recorder: Recorder | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.server = server
        self.servicer = servicer
        self.telemetry = telemetry or Telemetry.off()
        self._config = config
        self._refresher = Refresher(config, lambda: servicer.index, servicer.install, servicer.report)
        self._task: asyncio.Task[None] | None = None
        self._recorder = recorder
        self._publishing: asyncio.Task[None] | None = None
        self._linkage_channel: grpc.aio.Channel | None = None
        # Set once the first publication has been made or has failed (and recorded).
        self.first_publication = asyncio.Event()

    async def start(self) -> None:
        await self.server.start()
        self._task = asyncio.create_task(self._refresher.run(), name="index refresh")
        if self._recorder is not None:
            await self._recorder.start()
        if self._config.linkage is not None:
            self._start_publishing(self._config.linkage)

    def _start_publishing(self, section: AdapterLinkage) -> None:
        """Publishes to the linkage service on the agreement's schedule (adapters/core/publish.py)."""
        tls = self.servicer.tls
        self._linkage_channel = (
            secure_channel(section.service, tls.channel_credentials())
            if tls is not None
            else insecure_channel(section.service)
        )
        publisher = Publisher(
            self._config.agency.id,
            section.service,
            Path(section.key_file),
            Path(section.token_key_file),
            LinkageStub(self._linkage_channel),
            tls,
        )
        self.servicer.reidentifier.publisher = publisher
        servicer = self.servicer

        def every_hours() -> float:
            terms = servicer.trusted.agreement.linkage
            return terms.publish_every_hours if terms is not None else 24.0

        self._publishing = asyncio.create_task(
            publish_forever(
                publisher,
                servicer.publication_state,
                section.first_after_seconds,
                every_hours,
                self._published,
            ),
            name="publish encodings",
        )

    async def _published(self, outcome: Report | PublishError) -> None:
        agency = self._config.agency.id
        if isinstance(outcome, PublishError):
            log.warning("%s: encodings not published: %s", agency, outcome)
            payload: dict[str, object] = {"published": False, "reason": str(outcome)}
        else:
            log.info(
                "%s: %d encoding(s) published (%d sent, %d removed)",
                agency,
                outcome.published,
                outcome.sent,
                outcome.removed,
            )
            payload = {"published": outcome.published, "sent": outcome.sent, "removed": outcome.removed}
        if self._recorder is not None:
            await self._recorder.record("encodings-published", payload)
        self.first_publication.set()

    @property
    def grace(self) -> float:
        """Seconds matches in flight may take to finish on SIGTERM ([server] shutdown_grace_s)."""
        return self._config.server.shutdown_grace_s

    async def reload(self, config: AdapterConfig) -> str:
        """Re-verifies the agreement and applies it, the contact and the matching thresholds to the next
        matches. Returns what changed, in words.

        Raises:
            ConfigError, AgreementRefusedError: the new agreement cannot be used; nothing changed.
            UnavailableError: the audit log cannot record the new agreement; nothing changed.
        """
        old = self._config
        trusted = load_trusted(
            Path(config.policy.agreement), governs=[config.agency.id], trusted_keys=config.policy.trusted_keys
        )
        before = self.servicer.trusted
        if trusted.digest != before.digest and self._recorder is not None:
            label = f"{trusted.agreement.id} v{trusted.agreement.version}"
            await self._recorder.record("agreement-loaded", {"agreement": label, "digest": trusted.digest})
        kept = {name: getattr(old, name) for name in _NEEDS_RESTART}
        self.servicer.adopt(config.model_copy(update=kept), trusted)
        said = []
        if trusted.digest != before.digest:
            said.append(
                f"agreement {before.agreement.id} v{before.agreement.version} -> "
                f"{trusted.agreement.id} v{trusted.agreement.version}"
            )
        said += [name for name in ("contact", "matching") if getattr(config, name) != getattr(old, name)]
        restart = [name for name in _NEEDS_RESTART if getattr(config, name) != getattr(old, name)]
        self._config = config.model_copy(update=kept)
        text = "; ".join(said) or "nothing changed"
        return text + (f" (restart needed to change {', '.join(restart)})" if restart else "")

    async def stop(self, grace: float | None = 1.0) -> None:
        if self.servicer.health is not None:
            self.servicer.health.enter_graceful_shutdown()
        for task in (self._task, self._publishing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._linkage_channel is not None:
            await self._linkage_channel.close()
        await self.server.stop(grace)
        if self._recorder is not None:
            await self._recorder.stop()
        await asyncio.to_thread(self.telemetry.shutdown)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def create_server(
    config: AdapterConfig,
    address: str | None = None,
    *,
    insecure_dev: bool = False,
    telemetry: Telemetry | None = None,
) -> tuple[AdapterServer, int]:
    """Builds the index and a bound, not yet started, adapter server.

    Args:
        config: the adapter configuration.
        address: host:port to listen on; the configuration's when None. Port 0 picks a free port.
        insecure_dev: serve plaintext (development only; prints a warning).
        telemetry: where traces and metrics go (default: as the configuration's [telemetry] says).

    Returns:
        The server (start() also starts refreshing the index) and the port it is bound to.

    Raises:
        ConfigError: the configuration or the agreement is invalid, or the source cannot be read.
        AgreementRefusedError: the agreement lacks the agency's party's signature, was tampered with, is
            not in force or is past its review date.
    """
    trusted = load_trusted(
        Path(config.policy.agreement), governs=[config.agency.id], trusted_keys=config.policy.trusted_keys
    )
    tls = Tls(config.tls) if config.tls is not None and not insecure_dev else None
    recorder = await open_recorder(
        config.audit,
        insecure_dev=insecure_dev,
        what=f"{config.agency.id} adapter",
        agreement=f"{trusted.agreement.id} v{trusted.agreement.version}",
        digest=trusted.digest,
    )
    started = time.perf_counter()
    index = await asyncio.to_thread(build_index, config)
    seconds = time.perf_counter() - started
    log.info(
        "%s: index built: %d records, %d activities in %.1f s (%.0f records/s)",
        config.agency.id,
        index.record_count,
        index.activity_count,
        seconds,
        index.record_count / max(seconds, 1e-9),
    )
    server = grpc.aio.server(options=SERVER_OPTIONS)
    telemetry = telemetry or Telemetry.from_section(config.telemetry, f"lateral-adapter-{config.agency.id}")
    servicer = AdapterServicer(config, index, trusted, tls, recorder, telemetry)
    servicer.observe(telemetry)
    adapter_pb2_grpc.add_AgencyAdapterServicer_to_server(servicer, server)
    servicer.health = add_standard_services(server, [SERVICE_NAME], health_only=[SOURCE_HEALTH])
    try:
        port = bind(
            server,
            address or config.server.listen,
            insecure_dev=insecure_dev,
            what=f"{config.agency.id} adapter",
            credentials=tls.server_credentials() if tls is not None else None,
            production=trusted.agreement.agreement.deployment == "production",
        )
    except BaseException:
        if recorder is not None:
            recorder.log.close()
        raise
    return AdapterServer(server, servicer, config, recorder, telemetry), port
