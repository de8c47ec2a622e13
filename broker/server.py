"""The LateralCheck gRPC service: identify the caller, validate, decide under the agreement, fan out to the
permitted agencies, release only what the agreement allows, aggregate."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1.health import HealthServicer
from opentelemetry.trace import Span, SpanKind

import lateral
from audit.recorder import Recorder, decisions_payload, open_recorder, results_payload
from broker.admission import Admission
from broker.config import AgencyEndpoint, BrokerConfig
from broker.decisions import refuse_all
from broker.fanout import FanOut
from broker.limits import RateLimiter
from broker.proactive import Reviews, names_of
from broker.rest import create_app
from broker.review import summarise
from lateral.asgi import AsgiServer
from lateral.errors import (
    InvalidRequestError,
    LateralError,
    OverloadedError,
    PermissionDeniedError,
    TooLateError,
    maps_errors,
    maps_stream_errors,
)
from lateral.identity import Caller, Callers, CertifiedCallers, StatedCallers
from lateral.logs import check_context
from lateral.metrics import BrokerMetrics, observe_audit
from lateral.rpc import InsecureNotAllowedError, add_standard_services, bind, server_options, timestamp
from lateral.telemetry import Telemetry
from pki.tls import Tls
from policy.agreement import Agreement
from policy.engine import Decision, PolicyEngine, subject_kind
from policy.engine import Request as PolicyRequest
from policy.purposes import Purpose
from policy.release import release_only
from policy.trust import TrustedAgreement, load_trusted
from policy.validation import validate_check_request, validate_household_request
from protos.lateral.v1 import adapter_pb2, broker_pb2, broker_pb2_grpc, common_pb2

log = logging.getLogger(__name__)

SERVICE_NAME = broker_pb2.DESCRIPTOR.services_by_name["LateralCheck"].full_name
# Less time than this for an agency to answer is not worth asking it.
_LEAST_AGENCY_MS = 50
# What can be asked: a person, or a household at an address.
Asked = broker_pb2.CheckRequest | broker_pb2.HouseholdRequest
# What is audited: those, and proactive identification's listings and reviews.
Audited = Asked | broker_pb2.ListReviewCandidatesRequest | broker_pb2.ReviewRequest


@dataclass(frozen=True)
class Terms:
    """What the broker runs under: its configuration, the agencies' channels, the rate limits, the load
    shedding and the agreement. A reload replaces them whole; a check keeps the terms it began with."""

    config: BrokerConfig
    fanout: FanOut
    limits: RateLimiter
    admission: Admission
    trusted: TrustedAgreement
    engine: PolicyEngine
    purposes: dict[str, Purpose]

    @classmethod
    def of(
        cls,
        config: BrokerConfig,
        fanout: FanOut,
        trusted: TrustedAgreement,
        limits: RateLimiter,
        admission: Admission,
    ) -> Terms:
        agreement = trusted.agreement
        return cls(
            config,
            fanout,
            limits,
            admission,
            trusted,
            PolicyEngine(agreement),
            {p.id: p for p in agreement.purposes},
        )

    @property
    def agreement(self) -> Agreement:
        return self.trusted.agreement

    @property
    def label(self) -> str:
        return f"{self.agreement.id} v{self.agreement.version}"


class BrokerServicer(broker_pb2_grpc.LateralCheckServicer):
    def __init__(
        self,
        config: BrokerConfig,
        fanout: FanOut,
        trusted: TrustedAgreement,
        callers: Callers,
        recorder: Recorder | None,
        telemetry: Telemetry | None = None,
        metrics: BrokerMetrics | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        reviews: Reviews | None = None,
    ) -> None:
        self.reviews = reviews or Reviews(None, None)
        self._terms = Terms.of(
            config, fanout, trusted, RateLimiter(config.limits), Admission(config.resilience.overload)
        )
        self._telemetry = telemetry or Telemetry.off()
        self._metrics = metrics or BrokerMetrics(self._telemetry)
        self._callers = callers
        self._recorder = recorder
        self._clock = clock
        self._started_at = clock()
        self.in_flight = 0

    @staticmethod
    def _agency_timeout(t: Terms, remaining: float | None) -> float:
        """The per-agency deadline: the caller's remaining time less a reserve, capped by configuration."""
        b = t.config.broker
        budget = b.default_deadline_ms / 1000 if remaining is None else remaining
        return max(0.001, min(budget - b.reserve_ms / 1000, b.max_agency_timeout_ms / 1000))

    def _decide(self, t: Terms, caller: Caller, request: Asked, now: dt.datetime) -> dict[str, Decision]:
        today = now.astimezone(t.engine.zone).date()
        subject = (
            subject_kind(request.subject.date_of_birth, today)
            if isinstance(request, broker_pb2.CheckRequest)
            else "unknown"  # a household: whoever lives there
        )
        return {
            a.id: t.engine.decide(
                PolicyRequest(caller.organisation, caller.role, request.purpose, a.id, now, subject)
            )
            for a in t.config.agencies
        }

    def _check_party(self, t: Terms, caller: Caller) -> None:
        """A certified organisation must be the agreement's party of that name, by certificate identity."""
        party = next((p for p in t.agreement.parties if p.id == caller.organisation), None)
        if caller.certified_as and party is not None and party.certificate_identity != caller.certified_as:
            raise PermissionDeniedError(
                f"the certificate's organisation {caller.certified_as} is not the identity the agreement "
                f"names for party {party.id}",
                "IDENTITY_MISMATCH",
            )

    async def _audit(self, kind: str, caller: Caller, request: Audited, **fields: Any) -> None:
        """Records an event about this request (fails closed: raises when the log cannot be written)."""
        if self._recorder is None:
            return
        who = {"organisation": caller.organisation, "system": caller.system, "user": caller.user}
        with self._telemetry.span("lateral.audit.write", {"lateral.audit.event": kind}):
            await self._recorder.record(
                kind,
                {
                    **who,
                    "role": caller.role,
                    "purpose": request.purpose,
                    "case_ref": getattr(request, "case_ref", ""),
                    **fields,
                },
            )

    def _sealed(self, justification: str) -> dict[str, str]:
        return self._recorder.sealed(justification=justification) if self._recorder is not None else {}

    def _proactive(
        self, identify: Callable[[], Caller], remaining: float | None
    ) -> tuple[Terms, Caller, dt.datetime, float]:
        """What a proactive request starts with: the terms, the identified caller (a party of the agreement,
        within its rate limits), now, and the time it has."""
        t = self._terms
        caller = identify()
        self._check_party(t, caller)
        t.limits.admit(caller.organisation, caller.user)
        return t, caller, self._clock(), self._agency_timeout(t, remaining)

    async def review_candidates(
        self,
        identify: Callable[[], Caller],
        request: broker_pb2.ListReviewCandidatesRequest,
        remaining: float | None,
    ) -> broker_pb2.ListReviewCandidatesResponse:
        """The candidates the caller may see (ListReviewCandidates and REST; broker/proactive.py)."""
        t, caller, now, timeout = self._proactive(identify, remaining)
        names = names_of(t.config.agencies)
        return await self.reviews.listing(t.engine, names, caller, request, now, timeout, self._audit)

    async def review(
        self, identify: Callable[[], Caller], request: broker_pb2.ReviewRequest, remaining: float | None
    ) -> broker_pb2.ReviewResponse:
        """A review of a candidate (RequestReview and REST; broker/proactive.py)."""
        t, caller, now, timeout = self._proactive(identify, remaining)
        names = names_of(t.config.agencies)
        return await self.reviews.review(
            t.engine, t.fanout, names, caller, request, now, timeout, self._audit, self._sealed
        )

    @maps_errors
    async def ListReviewCandidates(
        self,
        request: broker_pb2.ListReviewCandidatesRequest,
        context: grpc.aio.ServicerContext[
            broker_pb2.ListReviewCandidatesRequest, broker_pb2.ListReviewCandidatesResponse
        ],
    ) -> broker_pb2.ListReviewCandidatesResponse:
        return await self.review_candidates(
            lambda: self._callers.caller(context), request, context.time_remaining()
        )

    @maps_errors
    async def RequestReview(
        self,
        request: broker_pb2.ReviewRequest,
        context: grpc.aio.ServicerContext[broker_pb2.ReviewRequest, broker_pb2.ReviewResponse],
    ) -> broker_pb2.ReviewResponse:
        return await self.review(lambda: self._callers.caller(context), request, context.time_remaining())

    def observe_error(self, method: str, code: grpc.StatusCode) -> None:
        self._metrics.error(method, code.name)

    def _denied_row(self, agency: AgencyEndpoint, decision: Decision) -> common_pb2.AgencyResult:
        return common_pb2.AgencyResult(
            agency_id=agency.id,
            agency_name=agency.name,
            finding=common_pb2.Finding(outcome=common_pb2.OUTCOME_DENIED),
            status=common_pb2.AgencyStatus(
                code=grpc.StatusCode.PERMISSION_DENIED.name,
                detail=f"not asked: {decision.message}",
                reason=decision.reason,
                clause_ids=decision.clauses,
            ),
        )

    def _released(
        self, t: Terms, row: common_pb2.AgencyResult, decision: Decision
    ) -> common_pb2.AgencyResult:
        """The broker's second look: only fields its own decision releases, never a restricted category."""
        finding = release_only(row.finding, decision.released)
        hidden = t.engine.restricted_categories(row.agency_id)
        if hidden.intersection(finding.categories):
            kept = [c for c in finding.categories if c not in hidden]
            del finding.categories[:]
            finding.categories.extend(kept)
        out = common_pb2.AgencyResult()
        out.CopyFrom(row)
        out.finding.CopyFrom(finding)
        return out

    @property
    def callers(self) -> Callers:
        return self._callers

    @property
    def terms(self) -> Terms:
        return self._terms

    async def adopt(self, terms: Terms) -> None:
        """The next checks run under these terms; a new agreement is recorded first (fails closed)."""
        if terms.trusted.digest != self._terms.trusted.digest and self._recorder is not None:
            await self._recorder.record(
                "agreement-loaded", {"agreement": terms.label, "digest": terms.trusted.digest}
            )
        self._terms = terms

    async def answer(
        self, identify: Callable[[], Caller], request: Asked, remaining: float | None
    ) -> broker_pb2.CheckResponse:
        """A check (of a person or a household) for the caller `identify` establishes: Check, CheckHousehold
        and REST. At capacity it is refused before anything else, the caller's identity included: the
        cheapest answer the broker can give (broker/admission.py)."""
        t = self._terms
        if remaining is not None and remaining * 1000 < t.config.broker.reserve_ms + _LEAST_AGENCY_MS:
            # It waited too long to be served (a queue): asking agencies now would only yield timeouts.
            self._metrics.shed()
            raise TooLateError("the check arrived with too little of its deadline left to ask any agency")
        try:
            t.admission.enter()
        except OverloadedError:
            self._metrics.shed()
            raise
        started = time.perf_counter()
        one_agency_slow = False
        try:
            caller = identify()
            self._check_party(t, caller)
            t.limits.admit(caller.organisation, caller.user)
            response = await self._check(t, caller, request, remaining)
            one_agency_slow = _one_agency_slow(response)
            return response
        finally:
            t.admission.leave(time.perf_counter() - started, one_agency_slow=one_agency_slow)

    def listing(self) -> broker_pb2.ListAgenciesResponse:
        t = self._terms
        return broker_pb2.ListAgenciesResponse(
            agencies=[broker_pb2.AgencyInfo(agency_id=a.id, agency_name=a.name) for a in t.config.agencies],
            purposes=[
                broker_pb2.PurposeInfo(
                    purpose_id=p.id,
                    description=p.description,
                    requires_case_ref=p.requires_case_ref,
                    requires_justification=p.requires_justification,
                    scope=p.subjects,
                    checks=p.checks,
                )
                for p in t.agreement.purposes
            ],
        )

    @maps_errors
    async def Check(
        self,
        request: broker_pb2.CheckRequest,
        context: grpc.aio.ServicerContext[broker_pb2.CheckRequest, broker_pb2.CheckResponse],
    ) -> broker_pb2.CheckResponse:
        return await self.answer(lambda: self._callers.caller(context), request, context.time_remaining())

    async def _check(
        self, t: Terms, caller: Caller, request: Asked, remaining: float | None
    ) -> broker_pb2.CheckResponse:
        """One check of a person (Check, each item of CheckMany) or a household (CheckHousehold): traced as
        one span, timed by kind, purpose and status. Only a purpose the agreement knows is named: the field
        is free text until validated. The check runs under the terms it began with, whatever a reload does."""
        kind = "household" if isinstance(request, broker_pb2.HouseholdRequest) else "person"
        purpose = request.purpose if request.purpose in t.purposes else "(unknown)"
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        check_id = uuid.uuid4().hex
        attributes = {
            "lateral.kind": kind,
            "lateral.purpose": purpose,
            "lateral.organisation": caller.organisation,
            "lateral.check_id": check_id,
        }
        self.in_flight += 1
        with (
            check_context(check_id),
            self._telemetry.span("lateral.check", attributes, kind=SpanKind.SERVER) as span,
        ):
            try:
                return await self._answer(t, caller, request, remaining, check_id, span)
            except LateralError as error:
                code = error.code
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                raise
            finally:
                self.in_flight -= 1
                if span.is_recording():
                    span.set_attribute("rpc.grpc.status_code", code.name)
                self._metrics.check(kind, purpose, code.name, time.perf_counter() - started)

    async def _answer(
        self, t: Terms, caller: Caller, request: Asked, remaining: float | None, check_id: str, span: Span
    ) -> broker_pb2.CheckResponse:
        """From validation to the audited answer. Events of household checks are "household-..."."""
        household = isinstance(request, broker_pb2.HouseholdRequest)
        event = "household" if household else "check"
        with self._telemetry.span("lateral.validate"):
            violations = (
                validate_household_request(request, t.purposes)
                if isinstance(request, broker_pb2.HouseholdRequest)
                else validate_check_request(request, t.purposes)
            )
        if violations:
            log.info("%s rejected: invalid %s", event, ", ".join(v.field for v in violations))
            await self._audit(f"{event}-invalid", caller, request, fields=[v.field for v in violations])
            raise InvalidRequestError(violations)
        now = self._clock()
        with self._telemetry.span("lateral.policy") as policy_span:
            decisions = self._decide(t, caller, request, now)
            permitted = [agency for agency, d in decisions.items() if d.allowed]
            if policy_span.is_recording():
                policy_span.set_attribute("lateral.agencies_permitted", len(permitted))
        subject = self._about(request)
        if not permitted:
            log.info("check refused for %s/%s: %s", caller.organisation, caller.role, request.purpose)
            refusal = refuse_all(t.label, decisions)
            await self._audit(
                f"{event}-denied",
                caller,
                request,
                **subject,
                reason=refusal.reason,
                decisions=decisions_payload(decisions),
                agreement=t.label,
            )
            raise refusal
        # Durable before any agency is asked: no audit, no check.
        await self._audit(
            f"{event}-received",
            caller,
            request,
            check_id=check_id,
            **subject,
            agencies_asked=permitted,
            decisions=decisions_payload(decisions),
            agreement=t.label,
        )
        requester = adapter_pb2.Requester(
            organisation=caller.organisation, system=caller.system, user=caller.user, role=caller.role
        )
        match_request: adapter_pb2.MatchRequest | adapter_pb2.HouseholdMatchRequest
        if isinstance(request, broker_pb2.HouseholdRequest):
            match_request = adapter_pb2.HouseholdMatchRequest(address=request.address)
        else:
            match_request = adapter_pb2.MatchRequest(subject=request.subject)
        match_request.check_id = check_id
        match_request.purpose = request.purpose
        match_request.justification = request.justification
        match_request.case_ref = request.case_ref
        match_request.requester.CopyFrom(requester)
        answers = await t.fanout.ask(permitted, match_request, self._agency_timeout(t, remaining))
        results = [
            self._released(t, answers[a.id], decisions[a.id])
            if a.id in answers
            else self._denied_row(a, decisions[a.id])
            for a in t.config.agencies
        ]
        counted = [agency for agency, d in decisions.items() if "count" in d.released]
        today = now.astimezone(t.engine.zone).date()
        summary = summarise(results, t.agreement.review, today, counted)
        await self._audit(
            f"{event}-completed",
            caller,
            request,
            check_id=check_id,
            results=results_payload(results),
            review_required=bool(summary.reasons),
            review_rules=[r.rule_id for r in summary.reasons],
        )
        if span.is_recording():
            span.set_attribute("lateral.agencies_with_activity", summary.agencies_with_activity)
            span.set_attribute("lateral.review_required", bool(summary.reasons))
        checked_at = timestamp(now)
        log.info(
            "%s %s for %s: %d/%d agencies asked, %d with activity, review %s",
            event,
            check_id,
            request.purpose,
            len(permitted),
            len(results),
            summary.agencies_with_activity,
            "required" if summary.reasons else "not required",
        )
        return broker_pb2.CheckResponse(
            check_id=check_id,
            checked_at=checked_at,
            results=results,
            agencies_with_activity=summary.agencies_with_activity,
            agencies_with_recent_activity=summary.agencies_with_recent_activity,
            review_window_days=summary.window_days,
            review_required=bool(summary.reasons),
            review_reasons=summary.reasons,
            agreement=t.label,
        )

    def _about(self, request: Asked) -> dict[str, str]:
        """Who or where was checked, for the audit log: a pseudonym, and the details sealed to auditors."""
        if self._recorder is None:
            return {}
        if isinstance(request, broker_pb2.CheckRequest):
            return self._recorder.subject(request.subject, request.justification)
        return self._recorder.address(request.address, request.justification)

    @maps_errors
    async def CheckHousehold(
        self,
        request: broker_pb2.HouseholdRequest,
        context: grpc.aio.ServicerContext[broker_pb2.HouseholdRequest, broker_pb2.CheckResponse],
    ) -> broker_pb2.CheckResponse:
        return await self.answer(lambda: self._callers.caller(context), request, context.time_remaining())

    @maps_stream_errors
    async def CheckMany(
        self,
        request_iterator: AsyncIterator[broker_pb2.BulkItem],
        context: grpc.aio.ServicerContext[broker_pb2.BulkItem, broker_pb2.BulkResult],
    ) -> AsyncIterator[broker_pb2.BulkResult]:
        """Each item checked as Check would, `bulk_concurrency` at a time, results as they complete. Bulk
        work is bounded by the agreement's per-purpose cap rather than the per-user rate limit."""
        async for result in self.bulk(self._callers.caller(context), request_iterator):
            yield result

    async def bulk(
        self, caller: Caller, items: AsyncIterator[broker_pb2.BulkItem]
    ) -> AsyncIterator[broker_pb2.BulkResult]:
        """Bulk checks for an identified caller: CheckMany and the REST API's bulk jobs. A stream runs under
        the terms it began with."""
        t = self._terms
        self._check_party(t, caller)
        request_iterator = items
        results: asyncio.Queue[broker_pb2.BulkResult | None] = asyncio.Queue()
        slots = asyncio.Semaphore(t.config.broker.bulk_concurrency)
        per_purpose: Counter[str] = Counter()
        running: set[asyncio.Task[None]] = set()

        async def one(item: broker_pb2.BulkItem) -> None:
            try:
                response = await self._check(t, caller, item.request, None)
                result = broker_pb2.BulkResult(item_id=item.item_id, response=response)
            except LateralError as error:
                result = _failed(item.item_id, error.code.name, error.message)
            except Exception as error:
                reference = uuid.uuid4().hex[:12]
                log.error("unexpected %s in a bulk item (reference %s)", type(error).__name__, reference)
                result = _failed(item.item_id, "INTERNAL", f"internal error (reference {reference})")
            finally:
                slots.release()
            await results.put(result)

        async def read() -> None:
            async for item in request_iterator:
                purpose = t.purposes.get(item.request.purpose)
                per_purpose[item.request.purpose] += 1
                cap = purpose.max_bulk_checks if purpose is not None else None
                if cap is not None and per_purpose[item.request.purpose] > cap:
                    message = (
                        f"the agreement caps bulk checks for purpose {item.request.purpose} at {cap} per run"
                    )
                    await results.put(_failed(item.item_id, "RESOURCE_EXHAUSTED", message))
                    continue
                await slots.acquire()
                task = asyncio.create_task(one(item))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*list(running))
            await results.put(None)

        reader = asyncio.create_task(read())
        try:
            while (result := await results.get()) is not None:
                yield result
            await reader
        finally:
            if not reader.done():
                reader.cancel()
                for task in list(running):
                    task.cancel()

    @maps_errors
    async def ListAgencies(
        self,
        request: broker_pb2.ListAgenciesRequest,
        context: grpc.aio.ServicerContext[broker_pb2.ListAgenciesRequest, broker_pb2.ListAgenciesResponse],
    ) -> broker_pb2.ListAgenciesResponse:
        return self.listing()

    @maps_errors
    async def Status(
        self,
        request: broker_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[broker_pb2.StatusRequest, broker_pb2.StatusResponse],
    ) -> broker_pb2.StatusResponse:
        asker = self._callers.member(context)
        log.info("status asked by %s", asker)
        return await self.status(context.time_remaining())

    async def status(self, remaining: float | None) -> broker_pb2.StatusResponse:
        """The broker's state and every agency's health, within the caller's deadline (at most 2 s)."""
        t = self._terms
        response = broker_pb2.StatusResponse(
            broker_version=lateral.__version__,
            agreement=t.label,
            agreement_review_by=t.agreement.agreement.review_by.isoformat(),
            started_at=timestamp(self._started_at),
            agencies=await t.fanout.health(self._agency_timeout(t, min(remaining or 2.0, 2.0))),
        )
        if self._recorder is not None:
            response.audit_events = self._recorder.log.size
            if (at := self._recorder.log.checkpoint_at) is not None:
                response.audit_checkpoint_at.CopyFrom(timestamp(at))
        return response


async def _close_later(fanout: FanOut, seconds: float) -> None:
    try:
        await asyncio.sleep(seconds + 1.0)
    finally:
        await fanout.close()


# Parts of the configuration a running broker cannot change: they need a restart.
_NEEDS_RESTART = ("tls", "rest", "audit", "telemetry", "linkage")


def _changes(old: Terms, new: Terms) -> str:
    """What a reload changed, and what it could not, in words for the log (no personal data)."""
    said = []
    if new.trusted.digest != old.trusted.digest:
        said.append(f"agreement {old.label} -> {new.label}")
    if new.config.agencies != old.config.agencies:
        said.append("agencies: " + ", ".join(a.id for a in new.config.agencies))
    if new.config.limits != old.config.limits:
        said.append("rate limits")
    ignored = [n for n in _NEEDS_RESTART if getattr(new.config, n) != getattr(old.config, n)]
    if new.config.broker.listen != old.config.broker.listen:
        ignored.append("broker.listen")
    if new.config.broker.model_copy(update={"listen": ""}) != old.config.broker.model_copy(
        update={"listen": ""}
    ):
        said.append("broker settings")
    text = "; ".join(said) or "nothing changed"
    if ignored:
        text += f" (restart needed to change {', '.join(ignored)})"
    return text


def _one_agency_slow(response: broker_pb2.CheckResponse) -> bool:
    """Whether some, not all, of the agencies asked ran out of time: their own trouble, not overload."""
    asked = [r for r in response.results if r.finding.outcome != common_pb2.OUTCOME_DENIED]
    late = sum(r.finding.outcome == common_pb2.OUTCOME_TIMEOUT for r in asked)
    return 0 < late < len(asked)


def _failed(item_id: str, code: str, message: str) -> broker_pb2.BulkResult:
    return broker_pb2.BulkResult(item_id=item_id, error=broker_pb2.BulkError(code=code, message=message))


class BrokerServer:
    """A bound broker server, its REST API and the agency channels it owns.

    reload() applies a changed configuration and agreement to the next checks (SIGHUP); stop() shuts down
    gracefully (SIGTERM): health says NOT_SERVING, no new calls are accepted, checks in flight finish
    within the grace period, then the audit log signs its last checkpoint and telemetry is flushed.
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        servicer: BrokerServicer,
        health: HealthServicer,
        recorder: Recorder | None,
        rest: AsgiServer | None = None,
        telemetry: Telemetry | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        metrics: BrokerMetrics | None = None,
    ) -> None:
        self.server = server
        self.servicer = servicer
        self._health = health
        self._recorder = recorder
        self.rest = rest
        self.telemetry = telemetry or Telemetry.off()
        self._credentials = credentials
        self._metrics = metrics
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def grace(self) -> float:
        """Seconds checks in flight may take to finish on SIGTERM ([broker] shutdown_grace_s)."""
        return self.servicer.terms.config.broker.shutdown_grace_s

    async def start(self) -> None:
        await self.server.start()
        if self._recorder is not None:
            await self._recorder.start()
        if self.rest is not None:
            await self.rest.start()

    async def reload(self, config: BrokerConfig) -> str:
        """Re-verifies the agreement and applies the configuration to the next checks; checks in flight
        finish under the terms they began with. Returns what changed, in words.

        Raises:
            ConfigError, AgreementRefusedError: the new agreement cannot be used; nothing changed.
            UnavailableError: the audit log cannot record the new agreement; nothing changed.
        """
        old = self.servicer.terms
        trusted = load_trusted(
            Path(config.policy.agreement),
            governs=[a.id for a in config.agencies],
            trusted_keys=config.policy.trusted_keys,
        )
        fanout = old.fanout
        new_r, old_r = config.resilience, old.config.resilience
        channels_changed = (new_r.retry, new_r.circuit) != (old_r.retry, old_r.circuit)
        if config.agencies != old.config.agencies or channels_changed:
            fanout = FanOut(
                config.agencies, self._credentials, self.telemetry, self._metrics, config.resilience
            )
        limits = old.limits if config.limits == old.config.limits else RateLimiter(config.limits)
        overload = config.resilience.overload
        admission = old.admission if overload == old.config.resilience.overload else Admission(overload)
        new = Terms.of(config, fanout, trusted, limits, admission)
        try:
            await self.servicer.adopt(new)
        except BaseException:
            if fanout is not old.fanout:
                await fanout.close()
            raise
        if fanout is not old.fanout:
            # Calls in flight still use the old channels: close them once the longest could have ended.
            task = asyncio.create_task(
                _close_later(old.fanout, old.config.broker.max_agency_timeout_ms / 1000)
            )
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        return _changes(old, new)

    async def stop(self, grace: float | None = 1.0) -> None:
        self._health.enter_graceful_shutdown()
        if self.servicer.in_flight:
            log.info("stopping: %d check(s) in flight, waiting up to %s s", self.servicer.in_flight, grace)
        await asyncio.gather(
            self.rest.stop() if self.rest is not None else asyncio.sleep(0), self.server.stop(grace)
        )
        for task in list(self._retired):
            task.cancel()
        await self.servicer.terms.fanout.close()
        await self.servicer.reviews.close()
        if self._recorder is not None:
            await self._recorder.stop()
        await asyncio.to_thread(self.telemetry.shutdown)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def create_server(
    config: BrokerConfig,
    address: str | None = None,
    *,
    insecure_dev: bool = False,
    telemetry: Telemetry | None = None,
    reuse_port: bool = False,
) -> tuple[BrokerServer, int]:
    """Builds a bound, not yet started, broker with one long-lived channel per agency.

    Args:
        config: the broker configuration.
        address: host:port to listen on; the configuration's when None. Port 0 picks a free port.
        insecure_dev: serve and call agencies in plaintext (development only; prints a warning).
        telemetry: where traces and metrics go (default: as the configuration's [telemetry] says).
        reuse_port: share the gRPC and REST ports with the other workers of `lateral broker serve
            --workers N` (SO_REUSEPORT); never in tests of a single server on port 0.

    Returns:
        The server and the port it is bound to.

    Raises:
        ConfigError: the agreement is invalid.
        AgreementRefusedError: the agreement is unsigned by a party whose data the broker asks for, tampered
            with, not in force or past its review date.
    """
    trusted = load_trusted(
        Path(config.policy.agreement),
        governs=[a.id for a in config.agencies],
        trusted_keys=config.policy.trusted_keys,
    )
    tls = Tls(config.tls) if config.tls is not None and not insecure_dev else None
    label = f"{trusted.agreement.id} v{trusted.agreement.version}"
    recorder = await open_recorder(
        config.audit, insecure_dev=insecure_dev, what="broker", agreement=label, digest=trusted.digest
    )
    callers: Callers = CertifiedCallers(tls) if tls is not None else StatedCallers()
    telemetry = telemetry or Telemetry.from_section(config.telemetry, "lateral-broker")
    if recorder is not None:
        audit_log = recorder.log
        observe_audit(telemetry, "broker", lambda: audit_log.size, lambda: audit_log.checkpoint_at)
    metrics = BrokerMetrics(telemetry)
    credentials = tls.channel_credentials() if tls is not None else None
    fanout = FanOut(config.agencies, credentials, telemetry, metrics, config.resilience)
    server = grpc.aio.server(options=server_options(reuse_port=reuse_port))
    reviews = Reviews(config.linkage, credentials)
    servicer = BrokerServicer(config, fanout, trusted, callers, recorder, telemetry, metrics, reviews=reviews)
    broker_pb2_grpc.add_LateralCheckServicer_to_server(servicer, server)
    health = add_standard_services(server, [SERVICE_NAME])
    try:
        port = bind(
            server,
            address or config.broker.listen,
            insecure_dev=insecure_dev,
            what="broker",
            credentials=tls.server_credentials() if tls is not None else None,
            production=trusted.agreement.agreement.deployment == "production",
        )
    except BaseException:
        await fanout.close()
        if recorder is not None:
            recorder.log.close()
        raise
    rest = None
    if config.rest is not None:
        if tls is None and not insecure_dev:  # pragma: no cover - bind refused plaintext already
            raise InsecureNotAllowedError("the REST API needs the broker's [tls]")
        rest = AsgiServer(
            create_app(servicer),
            config.rest.listen,
            config.tls if tls is not None else None,
            reuse_port=reuse_port,
        )
    return BrokerServer(server, servicer, health, recorder, rest, telemetry, credentials, metrics), port
