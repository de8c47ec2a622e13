"""Fuzz targets for request validation at the edge: the gRPC messages (raw bytes, and requests built field by
field from a valid one) and the REST layer's JSON.

What must hold, whatever arrives:
- validation returns a list of FieldViolation and never raises; the same request gives the same list;
- every violation names a real field path, and never quotes the submitted value;
- a request without violations keeps validation's promises to matching: query_fields works on it, the UPRN
  is 1 to 12 ASCII digits, the postcode and NHS number normalise, the date of birth is a real date.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from google.protobuf.message import DecodeError
from pydantic import ValidationError

from adapters.core.matching import query_fields
from adapters.core.normalise import postcode_key
from broker.rest import CheckIn, HouseholdIn, check_message, household_message
from fuzz.draw import Draw
from lateral.config import read_toml
from lateral.demo.agreement import EXAMPLE_AGREEMENT
from lateral.errors import FieldViolation
from policy.agreement import parse_agreement
from policy.identifiers import is_valid_nhs_number, normalise_postcode
from policy.purposes import Purpose
from policy.validation import validate_check_request, validate_household_request
from protos.lateral.v1 import broker_pb2, common_pb2

TODAY = dt.date(2026, 11, 21)

_INDEX = r"(\[\d+\])?"
_ADDRESS = rf"address(\.(lines{_INDEX}|town|postcode|uprn))?"
_NAMES = rf"given_names{_INDEX}|family_name"
_SUBJECT = (
    rf"subject(\.({_NAMES}|other_names(\[\d+\](\.({_NAMES})))?|date_of_birth|gender|nhs_number|{_ADDRESS}))?"
)
CHECK_FIELDS = re.compile(rf"{_SUBJECT}|purpose|justification|case_ref")
HOUSEHOLD_FIELDS = re.compile(rf"{_ADDRESS}|purpose|justification|case_ref")
# A value shorter than this may legitimately appear inside a fixed description ("is required").
_QUOTABLE = 8


@cache
def purposes() -> dict[str, Purpose]:
    """The example agreement's purposes (people and households)."""
    agreement = parse_agreement(read_toml(EXAMPLE_AGREEMENT), EXAMPLE_AGREEMENT)
    return {p.id: p for p in agreement.purposes}


def _value_at(message: Any, path: str) -> object:
    """The submitted value a violation's field path names (None when the path ends in a message)."""
    node = message
    for part in path.split("."):
        name, _, index = part.partition("[")
        node = getattr(node, name)
        if index:
            position = int(index.rstrip("]"))
            if position >= len(node):
                return None
            node = node[position]
    return node


def check_violations(
    request: broker_pb2.CheckRequest | broker_pb2.HouseholdRequest, violations: list[FieldViolation]
) -> None:
    """The properties every list of violations has (see the module docstring)."""
    fields = CHECK_FIELDS if isinstance(request, broker_pb2.CheckRequest) else HOUSEHOLD_FIELDS
    assert isinstance(violations, list)
    for violation in violations:
        assert isinstance(violation, FieldViolation), violation
        assert fields.fullmatch(violation.field), f"unknown field path {violation.field!r}"
        if violation.field == "purpose":
            continue  # names the agreement's purposes, which a caller may quote back
        value = _value_at(request, violation.field)
        if isinstance(value, str) and len(value.strip()) >= _QUOTABLE:
            assert value.strip() not in violation.description, f"{violation.field} quotes the value"


def check_valid_address(address: common_pb2.Address) -> None:
    """What a valid address promises matching."""
    if address.uprn:
        assert re.fullmatch(r"[0-9]{1,12}", address.uprn), "a valid UPRN is 1 to 12 digits"
    if address.postcode:
        canonical = normalise_postcode(address.postcode)
        assert canonical is not None
        assert postcode_key(address.postcode) == canonical


def check_valid_subject(subject: common_pb2.Subject) -> None:
    """What a valid subject promises matching: it normalises, its identifiers are well formed."""
    fields = query_fields(subject)
    check_valid_address(subject.address)
    if subject.date_of_birth:
        born = dt.date.fromisoformat(subject.date_of_birth)
        assert fields.dob == born.year * 10_000 + born.month * 100 + born.day
    if subject.nhs_number:
        assert is_valid_nhs_number(subject.nhs_number)
        assert re.fullmatch(r"[0-9]{10}", fields.nhs)


def validate_check(request: broker_pb2.CheckRequest) -> list[FieldViolation]:
    """Validates a check request and checks every property; returns its violations."""
    violations = validate_check_request(request, purposes(), TODAY)
    check_violations(request, violations)
    assert violations == validate_check_request(request, purposes(), TODAY), "validation is not repeatable"
    if not violations:
        check_valid_subject(request.subject)
    return violations


def validate_household(request: broker_pb2.HouseholdRequest) -> list[FieldViolation]:
    """Validates a household request and checks every property; returns its violations."""
    violations = validate_household_request(request, purposes())
    check_violations(request, violations)
    if not violations:
        check_valid_address(request.address)
    return violations


# Values near the edges of what validation accepts, to mix with arbitrary text.
_DATES = ("2012-03-14", "2023-02-29", "2024-02-29", "1899-12-31", "1900-01-01", "2999-01-01", "20120314")
_POSTCODES = ("NT1 4QT", "nt14qt", " b1  1aa ", "EC1A 1BB", "W1A 0AX", "NT1 4", "NT1", "ſw1a 1aa")
_NHS = ("943 476 5919", "9434765919", "943-476-5918", "0000000000", "１２３４５６７８９０")
_UPRNS = ("100023336956", "1", "0001234", "1234567890123", "12a")
_PURPOSES = ("child-safeguarding", "adult-safeguarding", "household-safeguarding", "", "research")


def _string(draw: Draw, edge: tuple[str, ...]) -> str:
    """An edge value, an edge value with a character added, or arbitrary text."""
    kind = draw.integer(0, 3)
    if kind == 0:
        return draw.choice(edge)
    if kind == 1:
        value = draw.choice(edge)
        at = draw.integer(0, len(value))
        return value[:at] + draw.text(2) + value[at:]
    return draw.text(draw.choice((8, 40, 120)))


def _address_from(draw: Draw, address: common_pb2.Address) -> None:
    for _ in range(draw.integer(0, 3)):
        field = draw.integer(0, 4)
        if field == 0:
            address.lines.append(draw.text(draw.choice((20, 220))))
        elif field == 1:
            address.town = draw.text(30)
        elif field == 2:
            address.postcode = _string(draw, _POSTCODES)
        elif field == 3:
            address.uprn = _string(draw, _UPRNS)
        else:
            del address.lines[:]


def build_check(draw: Draw) -> broker_pb2.CheckRequest:
    """A valid check request with a few fields changed as the bytes say."""
    request = broker_pb2.CheckRequest(
        subject=common_pb2.Subject(
            given_names=["Jayden"],
            family_name="Clarke",
            date_of_birth="2012-03-14",
            address=common_pb2.Address(lines=["14 High St"], postcode="NT1 4QT"),
        ),
        purpose="child-safeguarding",
        justification="School referral",
        case_ref="MASH-0142",
    )
    subject = request.subject
    for _ in range(draw.integer(0, 6)):
        field = draw.integer(0, 10)
        if field == 0:
            subject.given_names.append(draw.text(draw.choice((10, 110))))
        elif field == 1:
            subject.family_name = draw.text(draw.choice((10, 110)))
        elif field == 2:
            subject.date_of_birth = _string(draw, _DATES)
        elif field == 3:
            subject.gender = draw.integer(-2, 6)  # type: ignore[assignment]
        elif field == 4:
            subject.nhs_number = _string(draw, _NHS)
        elif field == 5:
            _address_from(draw, subject.address)
        elif field == 6:
            subject.other_names.add(given_names=[draw.text(12)], family_name=draw.text(12))
        elif field == 7:
            request.purpose = _string(draw, _PURPOSES)
        elif field == 8:
            request.case_ref = _string(draw, ("MASH-0142", "A/1_2.3:4-5", "-x"))
        elif field == 9:
            request.justification = draw.text(draw.choice((10, 2100)))
        else:
            del subject.given_names[:]
    return request


def build_household(draw: Draw) -> broker_pb2.HouseholdRequest:
    """A valid household request with a few fields changed as the bytes say."""
    request = broker_pb2.HouseholdRequest(
        address=common_pb2.Address(lines=["14 High St"], postcode="NT1 4QT"),
        purpose="household-safeguarding",
        justification="Fire service referral",
        case_ref="MASH-0143",
    )
    _address_from(draw, request.address)
    if draw.boolean():
        request.purpose = _string(draw, _PURPOSES)
    if draw.boolean():
        request.case_ref = _string(draw, ("MASH-0143", ""))
    return request


def check_request(data: bytes) -> None:
    """Target: a CheckRequest, from raw protobuf bytes (first byte even) or built from the bytes (odd)."""
    if not data:
        return
    if data[0] % 2 == 0:
        try:
            request = broker_pb2.CheckRequest.FromString(data[1:])
        except DecodeError:
            return
    else:
        request = build_check(Draw(data[1:]))
    validate_check(request)


def household_request(data: bytes) -> None:
    """Target: a HouseholdRequest, from raw protobuf bytes (first byte even) or built from the bytes (odd)."""
    if not data:
        return
    if data[0] % 2 == 0:
        try:
            request = broker_pb2.HouseholdRequest.FromString(data[1:])
        except DecodeError:
            return
    else:
        request = build_household(Draw(data[1:]))
    validate_household(request)


def _json(data: bytes) -> Any:
    """The body as the web framework parses it; None when it refuses it (a 400 before our code runs)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def rest_json(data: bytes) -> None:
    """Target: a REST body (POST /v1/checks, or /v1/households when the first byte is odd): JSON, the API
    model, the protobuf request, validation. The API model may refuse the body (a 400); nothing else may
    fail."""
    if not data:
        return
    body = _json(data[1:])
    convert: Callable[[Any], None] = _rest_household if data[0] % 2 else _rest_check
    try:
        convert(body)
    except ValidationError:
        return


def _rest_check(body: Any) -> None:
    validate_check(check_message(CheckIn.model_validate(body)))


def _rest_household(body: Any) -> None:
    validate_household(household_message(HouseholdIn.model_validate(body)))
