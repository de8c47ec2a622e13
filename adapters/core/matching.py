"""Deciding whether a subject is one of the agency's people.

This is the simple, explainable exact matcher of the walking skeleton: a normalised family name and first
given name (or an alias) block the candidates; a date of birth or NHS number confirms. The matching issue
replaces it with probabilistic scoring behind the same `match` signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.core.index import MatchIndex
from adapters.core.normalise import date_key, first_given_key, name_key, nhs_key, postcode_key
from protos.lateral.v1 import common_pb2

KNOWN = common_pb2.OUTCOME_KNOWN
POSSIBLE = common_pb2.OUTCOME_POSSIBLE
NOT_KNOWN = common_pb2.OUTCOME_NOT_KNOWN


@dataclass(frozen=True)
class MatchResult:
    """The local decision. Record keys, score and explanation stay inside the agency."""

    outcome: common_pb2.Outcome.ValueType
    record_keys: tuple[str, ...] = ()
    score: float = 0.0
    resolving_attributes: tuple[common_pb2.Attribute.ValueType, ...] = ()
    explanation: str = ""


def _name_variants(subject: common_pb2.Subject) -> set[tuple[str, str]]:
    names = {(name_key(subject.family_name), first_given_key(list(subject.given_names)))}
    names |= {(name_key(o.family_name), first_given_key(list(o.given_names))) for o in subject.other_names}
    return {n for n in names if n[0] and n[1]}


def match(index: MatchIndex, subject: common_pb2.Subject) -> MatchResult:
    """Matches a validated subject against the index."""
    names = _name_variants(subject)
    dob = date_key(subject.date_of_birth)
    nhs = nhs_key(subject.nhs_number)
    families = {family for family, _ in names}

    by_name: set[str] = set().union(*(index.by_name.get(n, set()) for n in names))
    by_nhs = index.by_nhs.get(nhs, set()) if nhs else set()

    strong = {k for k in by_name if dob is not None and index.people[k].date_of_birth == dob}
    nhs_confirmed = {
        k
        for k in by_nhs
        if index.people[k].family in families or (dob is not None and index.people[k].date_of_birth == dob)
    }
    if strong or nhs_confirmed:
        reasons = []
        if nhs_confirmed:
            reasons.append("NHS number with family name or date of birth")
        if strong:
            reasons.append("family name, first given name and date of birth")
        keys = tuple(sorted(strong | nhs_confirmed))
        return MatchResult(
            KNOWN, keys, 1.0 if nhs_confirmed else 0.9, explanation="exact: " + " and ".join(reasons)
        )

    # Same name but one side has no date of birth, or the NHS number alone: a weak match.
    weak = {k for k in by_name if dob is None or index.people[k].date_of_birth is None} | by_nhs
    if weak:
        people = [index.people[k] for k in weak]
        resolving: list[common_pb2.Attribute.ValueType] = []
        if dob is None and any(p.date_of_birth for p in people):
            resolving.append(common_pb2.ATTRIBUTE_DATE_OF_BIRTH)
        if not nhs and any(p.nhs_number for p in people):
            resolving.append(common_pb2.ATTRIBUTE_NHS_NUMBER)
        if not postcode_key(subject.address.postcode) and any(p.postcode for p in people):
            resolving.append(common_pb2.ATTRIBUTE_POSTCODE)
        why = "NHS number only" if weak == by_nhs else "name only, no date of birth on one side"
        return MatchResult(POSSIBLE, tuple(sorted(weak)), 0.5, tuple(resolving), explanation=f"weak: {why}")
    return MatchResult(NOT_KNOWN, explanation="no candidate with this name or NHS number")
