"""Decisions under an agreement: may this organisation and role ask this agency, for this purpose, now; and
if so, what is released.

Cedar decides (policy/cedar.py). Policy sets are sliced per (agency, requester) and parsed once, and
decisions are cached per request context (a minute of the week is part of it), so the hot path is a dict
lookup; a cold decision costs one Cedar evaluation of a handful of policies (bench/policy.py).
When Cedar refuses by default (no permission applied), the reason is worked out from the agreement:
which of organisation, agency, purpose, role or hours failed, naming the nearest clauses.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import cedarpy

from policy.agreement import DAYS, FIELDS, Agreement, Permission
from policy.cedar import ACTION, AGENCY, ORGANISATION, compile_policies, scope_clause_id
from policy.purposes import ADULT_AGE

SubjectKind = Literal["child", "adult", "unknown"]
PERMITTED = "PERMITTED"
# A party resolving its own records in a proactive review: no permission needed.
OWN_RECORDS = "OWN_RECORDS"


@dataclass(frozen=True)
class Request:
    """Who asks whom, for what, when. Identity comes from the caller's certificate and assertion."""

    organisation: str
    role: str
    purpose: str
    agency: str
    at: dt.datetime
    subject: SubjectKind = "unknown"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # PERMITTED, or why not: ORGANISATION_NOT_PERMITTED, AGENCY_NOT_PERMITTED, PURPOSE_NOT_PERMITTED,
    # ROLE_NOT_PERMITTED, OUTSIDE_HOURS, RESTRICTED, SUBJECT_OUT_OF_SCOPE.
    reason: str
    # Plain words for the caller and the audit log; names organisations, roles and clauses, never a person.
    message: str
    # The ids of the clauses that decided it.
    clauses: tuple[str, ...]
    released: frozenset[str] = frozenset()
    lookback_days: int = 0
    obligations: tuple[str, ...] = ()


def subject_kind(date_of_birth: str, on: dt.date) -> SubjectKind:
    """Child or adult on the day of the check; unknown without a readable date of birth."""
    try:
        born = dt.date.fromisoformat(date_of_birth)
    except ValueError:
        return "unknown"
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return "adult" if age >= ADULT_AGE else "child"


def _hours_text(permission: Permission) -> str:
    hours = permission.hours
    if hours is None:
        return "at any time"
    days = [d for d in DAYS if d in hours.days]
    span = f"{days[0].title()}-{days[-1].title()}" if len(days) > 2 else "/".join(d.title() for d in days)
    return f"{span} {hours.start}-{hours.end}"


class PolicyEngine:
    """Evaluates one agreement."""

    def __init__(self, agreement: Agreement) -> None:
        self.agreement = agreement
        self.zone = ZoneInfo(agreement.agreement.timezone)
        self._entities = cedarpy.Entities.from_json_str("[]")
        self._restrictions = {r.id: r for r in agreement.restrictions}
        self._scopes = {scope_clause_id(p): p for p in agreement.purposes}
        self._permissions = {p.id: p for p in agreement.permissions}

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one engine per loaded agreement, kept for its life
    def _policies(self, agency: str, requester: str) -> Any:
        return cedarpy.PolicySet.from_str(
            compile_policies(self.agreement, agency=agency, requester=requester)
        )

    def minute_of_week(self, at: dt.datetime) -> int:
        local = at.astimezone(self.zone)
        return local.weekday() * 1440 + local.hour * 60 + local.minute

    def decide(self, request: Request) -> Decision:
        return self._decide(
            request.organisation,
            request.role,
            request.purpose,
            request.agency,
            self.minute_of_week(request.at),
            request.subject,
        )

    def _context(self, role: str, purpose: str, minute: int, subject: str) -> dict[str, Any]:
        return {"role": role, "purpose": purpose, "minute_of_week": minute, "subject": subject}

    def _cedar(
        self, action: str, organisation: str, agency: str, context: dict[str, Any]
    ) -> cedarpy.AuthzResult:
        request = {
            "principal": f'{ORGANISATION}::"{organisation}"',
            "action": f'{ACTION}::"{action}"',
            "resource": f'{AGENCY}::"{agency}"',
            "context": context,
        }
        result = cedarpy.is_authorized(request, self._policies(agency, organisation), self._entities)
        if result.diagnostics.errors:
            # An evaluation error means a policy did not apply: Cedar fails closed, and so do we.
            raise RuntimeError(f"policy evaluation failed: {result.diagnostics.errors}")
        return result

    @functools.lru_cache(maxsize=8192)  # noqa: B019
    def _decide(
        self, organisation: str, role: str, purpose: str, agency: str, minute: int, subject: str
    ) -> Decision:
        result = self._cedar("check", organisation, agency, self._context(role, purpose, minute, subject))
        clauses = tuple(sorted(result.diagnostics.id_annotations_by_reason.values()))
        if result.allowed:
            permits = [self._permissions[c] for c in clauses]
            return Decision(
                allowed=True,
                reason=PERMITTED,
                message=f"permitted by {', '.join(clauses)}",
                clauses=clauses,
                released=frozenset(f for p in permits for f in p.release),
                lookback_days=max(p.lookback_days for p in permits),
                obligations=tuple(dict.fromkeys(o for p in permits for o in p.obligations)),
            )
        if clauses:
            return self._forbidden(clauses, purpose, agency)
        return self._not_permitted(organisation, role, purpose, agency)

    def _forbidden(self, clauses: tuple[str, ...], purpose: str, agency: str) -> Decision:
        scopes = [self._scopes[c] for c in clauses if c in self._scopes]
        if scopes:
            wanted = "children (under 18)" if scopes[0].subjects == "children" else "adults (18 or over)"
            return Decision(
                False,
                "SUBJECT_OUT_OF_SCOPE",
                f"purpose {purpose} is for {wanted} only, and the subject is not",
                clauses,
            )
        restriction = self._restrictions[clauses[0]]
        return Decision(
            False,
            "RESTRICTED",
            f"restriction {restriction.id} forbids asking {agency}: {restriction.description}",
            clauses,
        )

    def _not_permitted(self, organisation: str, role: str, purpose: str, agency: str) -> Decision:
        """Cedar's default deny, explained: the first of organisation, agency, purpose, role and hours that
        no permission satisfies."""
        agreement = self.agreement
        if organisation not in {p.id for p in agreement.parties}:
            return Decision(
                False,
                "ORGANISATION_NOT_PERMITTED",
                f"{organisation} is not a party to agreement {agreement.id}",
                (),
            )
        mine = [p for p in agreement.permissions if organisation in p.requesters]
        if not mine:
            return Decision(
                False,
                "ORGANISATION_NOT_PERMITTED",
                f"agreement {agreement.id} gives {organisation} no permission to ask",
                (),
            )
        steps: list[tuple[str, str, Any]] = [
            (
                "AGENCY_NOT_PERMITTED",
                f"no permission lets {organisation} ask {agency}",
                lambda p: agency in p.agencies,
            ),
            (
                "PURPOSE_NOT_PERMITTED",
                f"no permission lets {organisation} ask {agency} for {purpose}",
                lambda p: purpose in p.purposes,
            ),
            (
                "ROLE_NOT_PERMITTED",
                f"no permission lets role {role!r} of {organisation} ask {agency} for {purpose}",
                lambda p: role in p.roles,
            ),
        ]
        for reason, message, keeps in steps:
            nearer = [p for p in mine if keeps(p)]
            if not nearer:
                return Decision(False, reason, message, tuple(p.id for p in mine))
            mine = nearer
        hours = "; ".join(f"{p.id} only {_hours_text(p)}" for p in mine)
        return Decision(
            False,
            "OUTSIDE_HOURS",
            f"outside the agreed hours ({hours}, {agreement.agreement.timezone})",
            tuple(p.id for p in mine),
        )

    def hidden_categories(self, request: Request, categories: Iterable[str]) -> frozenset[str]:
        """The activity categories a restriction keeps out of the answer to this request."""
        minute = self.minute_of_week(request.at)
        return frozenset(
            c
            for c in categories
            if not self._disclosed(
                request.organisation,
                request.role,
                request.purpose,
                request.agency,
                minute,
                request.subject,
                c,
            )
        )

    @functools.lru_cache(maxsize=8192)  # noqa: B019
    def _disclosed(
        self,
        organisation: str,
        role: str,
        purpose: str,
        agency: str,
        minute: int,
        subject: str,
        category: str,
    ) -> bool:
        context = {**self._context(role, purpose, minute, subject), "category": category}
        return bool(self._cedar("disclose", organisation, agency, context).allowed)

    def identity_decision(self, request: Request) -> Decision:
        """Whether the requester may learn who a proactive review candidate's record at the agency is: its
        own party's records always (OWN_RECORDS); anyone else's under a permission for the purpose that
        releases "identity". The broker and each adapter decide with this, each with its own copy."""
        holder = self.agreement.controller_of(request.agency)
        if holder is not None and holder.id == request.organisation:
            return Decision(
                True, OWN_RECORDS, f"{holder.id} resolves its own records", (), released=frozenset(FIELDS)
            )
        decision = self.decide(request)
        if decision.allowed and "identity" not in decision.released:
            return Decision(
                False,
                "IDENTITY_NOT_RELEASED",
                f"no permission lets {request.organisation} learn who a review candidate is at "
                f"{request.agency}",
                decision.clauses,
            )
        return decision

    def unpublished_categories(self, agency: str) -> frozenset[str]:
        """Categories an agency never publishes for proactive identification: those any restriction hides
        for the [linkage] purpose (or for every purpose), whoever asks (encodings go to no one in
        particular)."""
        terms = self.agreement.linkage
        purpose = terms.purpose if terms is not None else ""
        return frozenset(
            c
            for r in self.agreement.restrictions
            if agency in r.agencies and (not r.purposes or purpose in r.purposes)
            for c in r.categories
        )

    def restricted_categories(self, agency: str) -> frozenset[str]:
        """Categories some restriction keeps from this agency's answers (for a broker's second look)."""
        return frozenset(
            c
            for r in self.agreement.restrictions
            if agency in r.agencies and not r.purposes and not r.requesters
            for c in r.categories
        )
