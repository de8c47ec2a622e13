"""Who a proactive review candidate's record is, for a review this agency's agreement permits
(docs/proactive.md).

The agency decides for itself, under its own signed copy of the agreement: the requester needs a permission
that releases "identity" for the proactive purpose, unless the requester is the party that holds this
agency (its own records). A token resolves only through this agency's latest publication; a record the
agency restricts is WITHHELD; the identity is read from the agency database as it is now, and the
disclosure is recorded (the identity sealed to the auditors) before it is released.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from adapters.core.config import AdapterConfig
from adapters.core.index import MatchIndex
from adapters.core.publish import Publisher
from adapters.core.source import SourceSnapshot, read_records
from audit.recorder import Recorder
from lateral.config import ConfigError
from lateral.errors import PermissionDeniedError, UnavailableError
from policy.engine import Decision, PolicyEngine
from policy.engine import Request as PolicyRequest
from protos.lateral.v1 import adapter_pb2, common_pb2

log = logging.getLogger(__name__)

_GENDERS = {
    "female": common_pb2.GENDER_FEMALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
    "not_known": common_pb2.GENDER_NOT_KNOWN,
}


def identity_of(snapshot: SourceSnapshot, record_key: str) -> common_pb2.Subject | None:
    """The record as the agency database holds it, as a Subject; None when it is gone."""
    person = next((p for p in snapshot.people if p.record_key == record_key), None)
    if person is None:
        return None
    return common_pb2.Subject(
        given_names=list(person.given_names),
        family_name=person.family_name,
        other_names=[
            common_pb2.PersonName(given_names=list(a.given_names), family_name=a.family_name)
            for a in snapshot.aliases
            if a.record_key == record_key
        ],
        date_of_birth=person.date_of_birth.isoformat() if person.date_of_birth else "",
        gender=_GENDERS.get(person.gender or "", common_pb2.GENDER_UNSPECIFIED),
        address=common_pb2.Address(
            lines=[person.address] if person.address else [], postcode=person.postcode, uprn=person.uprn
        ),
        nhs_number=person.nhs_number,
    )


class Reidentifier:
    """Answers Reidentify for one agency."""

    def __init__(
        self,
        config: AdapterConfig,
        contact: common_pb2.Contact,
        recorder: Recorder | None,
        publisher: Publisher | None = None,
    ) -> None:
        self._config = config
        self._contact = contact
        self._recorder = recorder
        self.publisher = publisher

    def decide(
        self, request: adapter_pb2.ReidentifyRequest, engine: PolicyEngine, now: dt.datetime
    ) -> Decision:
        """The agency's own decision, under its own copy of the agreement (PolicyEngine.identity_decision)."""
        r = request.requester
        asked = PolicyRequest(r.organisation, r.role, request.purpose, self._config.agency.id, now, "unknown")
        return engine.identity_decision(asked)

    async def _audit(self, kind: str, request: adapter_pb2.ReidentifyRequest, **fields: object) -> None:
        if self._recorder is None:
            return
        r = request.requester
        await self._recorder.record(
            kind,
            {
                "review_id": request.review_id[:64],
                "candidate_id": request.candidate_id,
                "key_id": request.key_id,
                "organisation": r.organisation,
                "system": r.system,
                "user": r.user,
                "role": r.role,
                "purpose": request.purpose,
                "case_ref": request.case_ref,
                **fields,
            },
        )

    def _answer(
        self,
        outcome: common_pb2.Outcome.ValueType,
        decision: Decision,
        identity: common_pb2.Subject | None = None,
    ) -> adapter_pb2.ReidentifyResponse:
        response = adapter_pb2.ReidentifyResponse(
            agency_id=self._config.agency.id, outcome=outcome, clause_ids=decision.clauses
        )
        if identity is not None:
            response.identity.CopyFrom(identity)
        if "contact" in decision.released or outcome == common_pb2.OUTCOME_WITHHELD:
            response.contact.CopyFrom(self._contact)
        return response

    async def answer(
        self,
        request: adapter_pb2.ReidentifyRequest,
        engine: PolicyEngine,
        index: MatchIndex,
        now: dt.datetime,
    ) -> adapter_pb2.ReidentifyResponse:
        """Decides, resolves the token and answers; every answer and refusal is recorded first.

        Raises:
            PermissionDeniedError: the agency's agreement does not let this requester learn who it is.
            UnavailableError: the agency database cannot be read now.
        """
        decision = self.decide(request, engine, now)
        if not decision.allowed:
            await self._audit(
                "reidentification-refused", request, reason=decision.reason, clauses=decision.clauses
            )
            log.info("review %s refused: %s", request.review_id[:32] or "-", decision.reason)
            raise PermissionDeniedError(
                decision.message,
                decision.reason,
                {
                    "agreement": f"{engine.agreement.id} v{engine.agreement.version}",
                    "clauses": ",".join(decision.clauses),
                },
            )
        record_key = self.publisher.resolve(request.key_id, request.token) if self.publisher else None
        row = index.row_of.get(record_key) if record_key is not None else None
        if record_key is None or row is None:
            # Published under another key, or the record has gone since: nothing to say who.
            await self._audit("reidentification", request, outcome="NOT_KNOWN", clauses=decision.clauses)
            return self._answer(common_pb2.OUTCOME_NOT_KNOWN, decision)
        if index.restricted[row]:
            await self._audit("reidentification", request, outcome="WITHHELD", clauses=decision.clauses)
            return self._answer(common_pb2.OUTCOME_WITHHELD, decision)
        try:
            snapshot = await asyncio.to_thread(read_records, self._config, [record_key])
        except ConfigError:
            raise UnavailableError(
                "the agency database cannot be read now; try again shortly", 30.0
            ) from None
        identity = identity_of(snapshot, record_key)
        if identity is None:
            await self._audit("reidentification", request, outcome="NOT_KNOWN", clauses=decision.clauses)
            return self._answer(common_pb2.OUTCOME_NOT_KNOWN, decision)
        sealed = self._recorder.subject(identity, request.justification) if self._recorder else {}
        await self._audit(
            "reidentification",
            request,
            outcome="KNOWN",
            clauses=decision.clauses,
            reason=decision.reason,
            **sealed,
        )
        log.info("review %s: identity released (%s)", request.review_id[:32] or "-", decision.reason)
        return self._answer(common_pb2.OUTCOME_KNOWN, decision, identity)
