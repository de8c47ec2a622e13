"""Proactive identification at the broker (docs/proactive.md): review candidates listed pseudonymously, and
reviews that ask the agencies holding a candidate's records who it is.

Listing: the caller needs a permission for the proactive purpose at every agency a candidate's activity is
at; anything less and the candidate is not shown to it (its existence says those agencies know someone).
Each agency's row carries only the fields the caller's permission releases; the reasons (which name
agencies, dates and categories) only when every row releases categories and dates.

A review: the broker decides per agency as for a check (the caller's own party always may resolve its own
records), records the review before anyone is asked, fetches the candidate's members from the linkage
service, asks each permitted agency at once (each decides again and may withhold), keeps an identity only
where its own decision releases one, records the outcome (never the identity) and answers the caller alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from broker.config import AgencyEndpoint, LinkageEndpoint
from broker.decisions import refuse_all
from lateral.errors import InvalidRequestError, NotFoundError, PermissionDeniedError, UnavailableError
from lateral.identity import Caller
from lateral.rpc import insecure_channel, secure_channel, timestamp
from policy.agreement import Agreement
from policy.engine import OWN_RECORDS, Decision, PolicyEngine
from policy.engine import Request as PolicyRequest
from policy.validation import validate_review_listing, validate_review_request
from protos.lateral.v1 import adapter_pb2, broker_pb2, common_pb2, linkage_pb2
from protos.lateral.v1.linkage_pb2_grpc import LinkageStub

if TYPE_CHECKING:
    from broker.fanout import FanOut
    from protos.lateral.v1.linkage_pb2_grpc import LinkageAsyncStub

log = logging.getLogger(__name__)


def _unreachable() -> UnavailableError:
    return UnavailableError("the linkage service cannot be reached now; try again shortly", 30.0)


Audit = Callable[..., Awaitable[None]]


def _asked(caller: Caller, purpose: str, agency: str, now: dt.datetime) -> PolicyRequest:
    """A proactive request of one agency, as the policy engine takes it (about no one in particular)."""
    return PolicyRequest(caller.organisation, caller.role, purpose, agency, now, "unknown")


class Reviews:
    """The broker's side of proactive identification, over one channel to the linkage service."""

    def __init__(self, endpoint: LinkageEndpoint | None, credentials: grpc.ChannelCredentials | None) -> None:
        self.endpoint = endpoint
        self._channel: grpc.aio.Channel | None = None
        self._stub: LinkageAsyncStub | None = None
        if endpoint is not None:
            self._channel = (
                secure_channel(endpoint.address, credentials)
                if credentials is not None
                else insecure_channel(endpoint.address)
            )
            self._stub = LinkageStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def _linkage(self, agreement: Agreement) -> LinkageAsyncStub:
        if agreement.linkage is None:
            raise PermissionDeniedError(
                f"agreement {agreement.id} has no [linkage] section: proactive identification is off",
                "PROACTIVE_OFF",
            )
        if self._stub is None:
            raise UnavailableError("this broker has no linkage service configured ([linkage] address)", 60.0)
        return self._stub

    @staticmethod
    def decide(
        engine: PolicyEngine, agencies: list[str], caller: Caller, purpose: str, now: dt.datetime
    ) -> dict[str, Decision]:
        """Each agency's decision under the agreement's permissions for the proactive purpose."""
        return {
            agency: engine.decide(
                PolicyRequest(caller.organisation, caller.role, purpose, agency, now, "unknown")
            )
            for agency in agencies
        }

    async def listing(
        self,
        engine: PolicyEngine,
        names: dict[str, str],
        caller: Caller,
        request: broker_pb2.ListReviewCandidatesRequest,
        now: dt.datetime,
        timeout: float,
        audit: Audit,
    ) -> broker_pb2.ListReviewCandidatesResponse:
        """The candidates the caller may see, best first (names: agency id -> name, the broker's agencies)."""
        agreement = engine.agreement
        label = f"{agreement.id} v{agreement.version}"
        purposes = {p.id: p for p in agreement.purposes}
        violations = validate_review_listing(request, purposes)
        if violations:
            await audit("review-candidates-invalid", caller, request, fields=[v.field for v in violations])
            raise InvalidRequestError(violations)
        stub = self._linkage(agreement)
        decisions = self.decide(engine, list(names), caller, request.purpose, now)
        permitted = {a for a, d in decisions.items() if d.allowed}
        if not permitted:
            refusal = refuse_all(label, decisions, "listing")
            await audit("review-candidates-denied", caller, request, reason=refusal.reason, agreement=label)
            raise refusal
        limit = request.limit or (self.endpoint.default_candidates if self.endpoint else 50)
        try:
            linked = await stub.ListCandidates(
                linkage_pb2.ListCandidatesRequest(limit=limit), timeout=timeout
            )
        except grpc.aio.AioRpcError as error:
            log.warning("linkage service: %s", error.code().name)
            raise UnavailableError(
                "the linkage service cannot be reached now; try again shortly", 30.0
            ) from None
        shown, hidden = [], 0
        for candidate in linked.candidates:
            agencies = [a.agency_id for a in candidate.agencies]
            if not agencies or not set(agencies) <= permitted:
                hidden += 1
                continue
            shown.append(self._shown(candidate, decisions, names))
        await audit(
            "review-candidates-listed",
            caller,
            request,
            candidates=[c.candidate_id for c in shown],
            not_shown=hidden,
            agreement=label,
        )
        response = broker_pb2.ListReviewCandidatesResponse(candidates=shown, agreement=label)
        if linked.HasField("linked_at"):
            response.linked_at.CopyFrom(linked.linked_at)
        log.info("review candidates for %s: %d shown, %d not", request.purpose, len(shown), hidden)
        return response

    @staticmethod
    def _shown(
        candidate: linkage_pb2.LinkedCandidate, decisions: dict[str, Decision], names: dict[str, str]
    ) -> broker_pb2.ReviewCandidate:
        rows = []
        detailed = True
        for a in candidate.agencies:
            released = decisions[a.agency_id].released
            detailed = detailed and {"category", "latest_date"} <= released
            rows.append(
                broker_pb2.ReviewCandidateAgency(
                    agency_id=a.agency_id,
                    agency_name=names.get(a.agency_id, a.agency_id),
                    latest_activity_date=a.latest_activity_date if "latest_date" in released else "",
                    categories=list(a.categories) if "category" in released else [],
                    activity_count=a.activity_count if "count" in released else 0,
                )
            )
        reasons = (
            list(candidate.reasons)
            if detailed
            else [f"linked activity at {len(rows)} agencies (the details are not released to you)"]
        )
        return broker_pb2.ReviewCandidate(
            candidate_id=candidate.candidate_id, priority=candidate.priority, reasons=reasons, agencies=rows
        )

    async def review(
        self,
        engine: PolicyEngine,
        fanout: FanOut,
        names: dict[str, str],
        caller: Caller,
        request: broker_pb2.ReviewRequest,
        now: dt.datetime,
        timeout: float,
        audit: Audit,
        sealed: Callable[[str], dict[str, str]],
    ) -> broker_pb2.ReviewResponse:
        """Asks the agencies holding the candidate's records who it is, each under its own decision."""
        agreement = engine.agreement
        label = f"{agreement.id} v{agreement.version}"
        violations = validate_review_request(request, {p.id: p for p in agreement.purposes})
        if violations:
            await audit("review-invalid", caller, request, fields=[v.field for v in violations])
            raise InvalidRequestError(violations)
        stub = self._linkage(agreement)
        decisions = self.decide(engine, list(names), caller, request.purpose, now)
        # Only a caller the agreement lets take part in the purpose reviews at all; then each agency's is the
        # identity decision, under which its own party may also resolve its own records.
        if any(d.allowed for d in decisions.values()):
            decisions = {
                agency: engine.identity_decision(_asked(caller, request.purpose, agency, now))
                for agency in names
            }
        if not any(d.allowed for d in decisions.values()):
            refusal = refuse_all(label, decisions, "review")
            await audit(
                "review-denied",
                caller,
                request,
                candidate_id=request.candidate_id,
                reason=refusal.reason,
                agreement=label,
            )
            raise refusal
        review_id = uuid.uuid4().hex
        # Durable before the linkage service or any agency is asked: no audit, no review.
        await audit(
            "review-received",
            caller,
            request,
            review_id=review_id,
            candidate_id=request.candidate_id,
            decisions={a: {"reason": d.reason, "clauses": list(d.clauses)} for a, d in decisions.items()},
            agreement=label,
            **sealed(request.justification),
        )
        try:
            members = await stub.CandidateMembers(
                linkage_pb2.CandidateMembersRequest(candidate_id=request.candidate_id, review_id=review_id),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as error:
            await audit("review-failed", caller, request, review_id=review_id, reason=error.code().name)
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(error.details() or "no such review candidate") from None
            raise UnavailableError(
                "the linkage service cannot be reached now; try again shortly", 30.0
            ) from None
        rows = await asyncio.gather(
            *(
                self._ask(fanout, names, decisions, caller, request, review_id, members.key_id, m, timeout)
                for m in members.members
            )
        )
        await audit(
            "review-completed",
            caller,
            request,
            review_id=review_id,
            rows=[
                {
                    "agency": r.agency_id,
                    "outcome": common_pb2.Outcome.Name(r.outcome).removeprefix("OUTCOME_"),
                    "identity_released": r.HasField("identity"),
                    "status": r.status.code,
                    "reason": r.status.reason,
                    "clauses": list(r.status.clause_ids),
                }
                for r in rows
            ],
        )
        log.info(
            "review %s: %d record(s) at %d agencies, %d identified",
            review_id,
            len(rows),
            len({r.agency_id for r in rows}),
            sum(r.outcome == common_pb2.OUTCOME_KNOWN for r in rows),
        )
        return broker_pb2.ReviewResponse(
            review_id=review_id, reviewed_at=timestamp(now), rows=rows, agreement=label
        )

    @staticmethod
    async def _ask(
        fanout: FanOut,
        names: dict[str, str],
        decisions: dict[str, Decision],
        caller: Caller,
        request: broker_pb2.ReviewRequest,
        review_id: str,
        key_id: str,
        member: linkage_pb2.CandidateMember,
        timeout: float,
    ) -> broker_pb2.ReviewRow:
        agency = member.agency_id
        row = broker_pb2.ReviewRow(agency_id=agency, agency_name=names.get(agency, agency))
        decision = decisions.get(agency)
        if decision is None or agency not in fanout.clients:
            row.outcome = common_pb2.OUTCOME_UNAVAILABLE
            row.status.CopyFrom(
                common_pb2.AgencyStatus(code="UNAVAILABLE", detail="not an agency this broker asks")
            )
            return row
        if not decision.allowed:
            row.outcome = common_pb2.OUTCOME_DENIED
            row.status.CopyFrom(
                common_pb2.AgencyStatus(
                    code=grpc.StatusCode.PERMISSION_DENIED.name,
                    detail=f"not asked: {decision.message}",
                    reason=decision.reason,
                    clause_ids=decision.clauses,
                )
            )
            return row
        asked = adapter_pb2.ReidentifyRequest(
            review_id=review_id,
            token=member.token,
            key_id=key_id,
            candidate_id=request.candidate_id,
            purpose=request.purpose,
            justification=request.justification,
            case_ref=request.case_ref,
            requester=adapter_pb2.Requester(
                organisation=caller.organisation, system=caller.system, user=caller.user, role=caller.role
            ),
        )
        result, answer = await fanout.clients[agency].reidentify(asked, timeout)
        row.outcome = result.finding.outcome
        row.status.CopyFrom(result.status)
        if answer is not None and decision.reason == OWN_RECORDS:
            row.status.reason = OWN_RECORDS
        if answer is not None:
            # The broker's second look: an identity only where its own decision releases one.
            if answer.outcome == common_pb2.OUTCOME_KNOWN and "identity" in decision.released:
                row.identity.CopyFrom(answer.identity)
            if answer.HasField("contact") and (
                "contact" in decision.released or answer.outcome == common_pb2.OUTCOME_WITHHELD
            ):
                row.contact.CopyFrom(answer.contact)
        return row


def names_of(agencies: Sequence[AgencyEndpoint]) -> dict[str, str]:
    """Agency id -> name, in the broker's configured order."""
    return {a.id: a.name for a in agencies}
