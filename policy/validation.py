"""Validation of lateral-check requests at the edge: bounded sizes, real dates, valid identifiers.

Every problem is reported, each naming its field path. Descriptions never quote the submitted value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from lateral.errors import FieldViolation
from policy.identifiers import is_valid_nhs_number, normalise_postcode
from policy.linkage import CANDIDATE_ID, KEY_ID, TOKEN
from policy.purposes import Purpose
from protos.lateral.v1 import adapter_pb2, broker_pb2, common_pb2

MAX_NAME_LENGTH = 100
MAX_GIVEN_NAMES = 5
MAX_OTHER_NAMES = 10
MAX_ADDRESS_LINES = 6
MAX_ADDRESS_LINE_LENGTH = 200
MAX_JUSTIFICATION_LENGTH = 2000
MAX_CASE_REF_LENGTH = 64
EARLIEST_BIRTH = dt.date(1900, 1, 1)

# Letters of any script, with the spaces, hyphens, apostrophes and full stops that real names carry.
# Matched whole (fullmatch): a `$` would let a final line break through.
_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '’.-])*")
_CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.:-]*")
_UPRN = re.compile(r"[0-9]{1,12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_name(value: str, field: str, *, required: bool, out: list[FieldViolation]) -> None:
    text = value.strip()
    if not text:
        if required:
            out.append(FieldViolation(field, "is required"))
        return
    if len(value) > MAX_NAME_LENGTH:
        out.append(FieldViolation(field, f"must be at most {MAX_NAME_LENGTH} characters"))
    elif not _NAME.fullmatch(text):
        out.append(
            FieldViolation(field, "must contain only letters, spaces, hyphens, apostrophes and full stops")
        )


def _check_names(
    name: common_pb2.PersonName | common_pb2.Subject, prefix: str, out: list[FieldViolation]
) -> None:
    if len(name.given_names) > MAX_GIVEN_NAMES:
        out.append(FieldViolation(f"{prefix}given_names", f"must hold at most {MAX_GIVEN_NAMES} names"))
    elif not any(g.strip() for g in name.given_names):
        out.append(FieldViolation(f"{prefix}given_names", "at least one given name is required"))
    else:
        for i, given in enumerate(name.given_names):
            _check_name(given, f"{prefix}given_names[{i}]", required=True, out=out)
    _check_name(name.family_name, f"{prefix}family_name", required=True, out=out)


def _check_date_of_birth(value: str, today: dt.date, field: str, out: list[FieldViolation]) -> None:
    if not value:
        return
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        out.append(FieldViolation(field, "must be a date in the form YYYY-MM-DD"))
        return
    try:
        born = dt.date.fromisoformat(value)
    except ValueError:
        out.append(FieldViolation(field, "is not a real calendar date"))
        return
    if born > today:
        out.append(FieldViolation(field, "must not be in the future"))
    elif born < EARLIEST_BIRTH:
        out.append(FieldViolation(field, f"must not be before {EARLIEST_BIRTH.isoformat()}"))


def _check_address(address: common_pb2.Address, prefix: str, out: list[FieldViolation]) -> None:
    if len(address.lines) > MAX_ADDRESS_LINES:
        out.append(FieldViolation(f"{prefix}lines", f"must hold at most {MAX_ADDRESS_LINES} lines"))
    for i, line in enumerate(address.lines[:MAX_ADDRESS_LINES]):
        if len(line) > MAX_ADDRESS_LINE_LENGTH:
            out.append(
                FieldViolation(f"{prefix}lines[{i}]", f"must be at most {MAX_ADDRESS_LINE_LENGTH} characters")
            )
        elif _CONTROL.search(line):
            out.append(FieldViolation(f"{prefix}lines[{i}]", "must not contain control characters"))
    if len(address.town) > MAX_NAME_LENGTH or _CONTROL.search(address.town):
        out.append(FieldViolation(f"{prefix}town", f"must be at most {MAX_NAME_LENGTH} printable characters"))
    if address.postcode and normalise_postcode(address.postcode) is None:
        out.append(FieldViolation(f"{prefix}postcode", "must be a full UK postcode such as B1 1AA"))
    if address.uprn and not _UPRN.fullmatch(address.uprn):
        out.append(FieldViolation(f"{prefix}uprn", "must be 1 to 12 digits"))


def validate_subject(
    subject: common_pb2.Subject, today: dt.date | None = None, *, prefix: str = "subject."
) -> list[FieldViolation]:
    """Returns every problem with a subject; empty when it is valid."""
    out: list[FieldViolation] = []
    _check_names(subject, prefix, out)
    if len(subject.other_names) > MAX_OTHER_NAMES:
        out.append(FieldViolation(f"{prefix}other_names", f"must hold at most {MAX_OTHER_NAMES} names"))
    else:
        for i, other in enumerate(subject.other_names):
            _check_names(other, f"{prefix}other_names[{i}].", out)
    _check_date_of_birth(subject.date_of_birth, today or dt.date.today(), f"{prefix}date_of_birth", out)
    if subject.gender not in common_pb2.Gender.values():
        out.append(FieldViolation(f"{prefix}gender", "is not a known gender value"))
    _check_address(subject.address, f"{prefix}address.", out)
    if subject.nhs_number and not is_valid_nhs_number(subject.nhs_number):
        out.append(FieldViolation(f"{prefix}nhs_number", "must be 10 digits with a valid check digit"))
    return out


def validate_check_request(
    request: broker_pb2.CheckRequest | adapter_pb2.MatchRequest,
    purposes: Mapping[str, Purpose],
    today: dt.date | None = None,
) -> list[FieldViolation]:
    """Returns every problem with a check request (the broker's, or the agency's copy of it) against the
    agreement's purposes; empty when it is valid."""
    out: list[FieldViolation] = []
    if not request.HasField("subject"):
        out.append(FieldViolation("subject", "is required"))
    else:
        out.extend(validate_subject(request.subject, today))
    out.extend(_check_purpose(request, purposes, "people"))
    out.extend(_check_reasons(request, purposes.get(request.purpose)))
    return out


def validate_household_request(
    request: broker_pb2.HouseholdRequest | adapter_pb2.HouseholdMatchRequest, purposes: Mapping[str, Purpose]
) -> list[FieldViolation]:
    """Every problem with a household check: an address (a UPRN, or lines with a postcode or town), a
    household purpose, and its case reference and justification."""
    out: list[FieldViolation] = []
    address = request.address
    _check_address(address, "address.", out)
    if not address.uprn.strip() and not any(line.strip() for line in address.lines):
        out.append(FieldViolation("address", "give a UPRN, or the address lines"))
    elif not address.uprn.strip() and not (address.postcode.strip() or address.town.strip()):
        out.append(FieldViolation("address.postcode", "is required without a UPRN (or give the town)"))
    out.extend(_check_purpose(request, purposes, "households"))
    out.extend(_check_reasons(request, purposes.get(request.purpose)))
    return out


def _check_purpose(
    request: broker_pb2.CheckRequest
    | adapter_pb2.MatchRequest
    | broker_pb2.HouseholdRequest
    | adapter_pb2.HouseholdMatchRequest
    | broker_pb2.ListReviewCandidatesRequest
    | broker_pb2.ReviewRequest
    | adapter_pb2.ReidentifyRequest,
    purposes: Mapping[str, Purpose],
    checks: str,
) -> list[FieldViolation]:
    purpose = purposes.get(request.purpose)
    if not request.purpose:
        return [FieldViolation("purpose", "is required")]
    if purpose is None:
        known = ", ".join(sorted(p.id for p in purposes.values() if p.checks == checks))
        return [
            FieldViolation("purpose", f"is not a purpose of this data-sharing agreement (known: {known})")
        ]
    if purpose.checks != checks:
        return [FieldViolation("purpose", f"is a purpose for {_USES[purpose.checks]}")]
    return []


# What each kind of purpose is for, for a request that uses it for something else.
_USES = {
    "people": "checking people (Check)",
    "households": "checking households (CheckHousehold)",
    "proactive": "proactive reviews (ListReviewCandidates, RequestReview)",
}


def validate_review_listing(
    request: broker_pb2.ListReviewCandidatesRequest, purposes: Mapping[str, Purpose]
) -> list[FieldViolation]:
    """Every problem with a request for the review candidates: a proactive purpose."""
    return _check_purpose(request, purposes, "proactive")


def validate_review_request(
    request: broker_pb2.ReviewRequest | adapter_pb2.ReidentifyRequest, purposes: Mapping[str, Purpose]
) -> list[FieldViolation]:
    """Every problem with a request to learn who a review candidate is (the broker's, or an agency's copy):
    a candidate id (and, for an agency, its token and key id), a proactive purpose and its reasons."""
    out: list[FieldViolation] = []
    if not CANDIDATE_ID.fullmatch(request.candidate_id):
        out.append(FieldViolation("candidate_id", "must be a candidate id from ListReviewCandidates"))
    if isinstance(request, adapter_pb2.ReidentifyRequest):
        if not TOKEN.fullmatch(request.token):
            out.append(FieldViolation("token", "must be a token this agency published"))
        if not KEY_ID.fullmatch(request.key_id):
            out.append(FieldViolation("key_id", "must be the id of a linkage key"))
    out.extend(_check_purpose(request, purposes, "proactive"))
    out.extend(_check_reasons(request, purposes.get(request.purpose)))
    return out


def _check_reasons(
    request: broker_pb2.CheckRequest
    | adapter_pb2.MatchRequest
    | broker_pb2.HouseholdRequest
    | adapter_pb2.HouseholdMatchRequest
    | broker_pb2.ReviewRequest
    | adapter_pb2.ReidentifyRequest,
    purpose: Purpose | None,
) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    justification = request.justification.strip()
    if len(request.justification) > MAX_JUSTIFICATION_LENGTH:
        out.append(FieldViolation("justification", f"must be at most {MAX_JUSTIFICATION_LENGTH} characters"))
    elif purpose is not None and purpose.requires_justification and not justification:
        out.append(FieldViolation("justification", f"is required for purpose {purpose.id}"))
    case_ref = request.case_ref.strip()
    if len(request.case_ref) > MAX_CASE_REF_LENGTH:
        out.append(FieldViolation("case_ref", f"must be at most {MAX_CASE_REF_LENGTH} characters"))
    elif case_ref and not _CASE_REF.fullmatch(case_ref):
        out.append(FieldViolation("case_ref", "must contain only letters, digits and / _ . : -"))
    elif purpose is not None and purpose.requires_case_ref and not case_ref:
        out.append(FieldViolation("case_ref", f"is required for purpose {purpose.id}"))
    return out
