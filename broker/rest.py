"""The broker's REST/JSON face for case systems that do not speak gRPC: the same checks, validation, policy
and audit (it calls the same servicer), errors as RFC 9457 problem+json, and an OpenAPI document.

Who is calling: a case system sends its federation certificate (`X-Lateral-Certificate`, base64 of the
PEM) and a fresh user assertion signed with that certificate's key (`X-Lateral-Assertion`), as over gRPC.
The certificate is checked as a TLS handshake would (issued by the federation's CA, in date, not revoked)
and the assertion proves the caller holds its key, once. In plaintext development the stated identity
headers (`X-Lateral-Organisation`, `-System`, `-User`, `-Role`) are read instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lateral.errors import (
    InvalidRequestError,
    LateralError,
    OverloadedError,
    UnauthenticatedError,
)
from lateral.identity import CertifiedCallers, StatedCallers
from pki.assertion import METADATA_KEY
from protos.lateral.v1 import broker_pb2, common_pb2

if TYPE_CHECKING:
    from broker.server import BrokerServicer

PROBLEM = "application/problem+json"
STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _unicode(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800", or their raw bytes, which Python's JSON decoder lets pass).
    # pydantic refuses them in a str field but not in a list's items, and protobuf cannot encode them.
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("must be Unicode text (a lone surrogate is not)")
    return value


# A string inside a list.
Item = Annotated[str, AfterValidator(_unicode)]


class Name(_Strict):
    given_names: list[Item] = Field(default_factory=list, max_length=5)
    family_name: str = Field(default="", max_length=100)


class AddressIn(_Strict):
    lines: list[Item] = Field(default_factory=list, max_length=6)
    town: str = Field(default="", max_length=100)
    postcode: str = Field(default="", max_length=10)
    uprn: str = Field(default="", max_length=12)


class SubjectIn(_Strict):
    given_names: list[Item] = Field(default_factory=list, max_length=5)
    family_name: str = Field(default="", max_length=100)
    other_names: list[Name] = Field(default_factory=list, max_length=10)
    date_of_birth: str = Field(default="", max_length=10, description="YYYY-MM-DD")
    gender: Literal["", "female", "male", "other", "not_known"] = ""
    address: AddressIn = Field(default_factory=AddressIn)
    nhs_number: str = Field(default="", max_length=12)


class CheckIn(_Strict):
    subject: SubjectIn
    purpose: str = Field(max_length=64)
    justification: str = Field(default="", max_length=2000)
    case_ref: str = Field(default="", max_length=64)


class HouseholdIn(_Strict):
    address: AddressIn
    purpose: str = Field(max_length=64)
    justification: str = Field(default="", max_length=2000)
    case_ref: str = Field(default="", max_length=64)


class BulkItemIn(_Strict):
    item_id: str = Field(min_length=1, max_length=64)
    subject: SubjectIn
    case_ref: str = Field(default="", max_length=64)


class BulkIn(_Strict):
    purpose: str = Field(max_length=64)
    justification: str = Field(default="", max_length=2000)
    items: list[BulkItemIn] = Field(min_length=1, max_length=10_000)


class ContactOut(BaseModel):
    name: str = ""
    role: str = ""
    phone: str = ""
    email: str = ""


class FindingOut(BaseModel):
    outcome: str
    categories: list[str] = []
    latest_activity_date: str = ""
    activity_count: int = 0
    people_count: int = 0
    contact: ContactOut | None = None
    resolving_attributes: list[str] = []


class StatusOut(BaseModel):
    code: str = ""
    detail: str = ""
    elapsed_ms: int = 0
    reason: str = ""
    clause_ids: list[str] = []


class AgencyResultOut(BaseModel):
    agency_id: str
    agency_name: str
    finding: FindingOut
    status: StatusOut


class ReviewReasonOut(BaseModel):
    rule_id: str
    description: str


class CheckOut(BaseModel):
    check_id: str
    checked_at: str
    results: list[AgencyResultOut]
    agencies_with_activity: int = 0
    agencies_with_recent_activity: int = 0
    review_window_days: int = 0
    review_required: bool = False
    review_reasons: list[ReviewReasonOut] = []
    agreement: str = ""


class BulkResultOut(BaseModel):
    item_id: str
    response: CheckOut | None = None
    error_code: str = ""
    error_message: str = ""


class BulkJobOut(BaseModel):
    job_id: str
    state: Literal["running", "done"]
    total: int
    answered: int
    results: list[BulkResultOut] = []


class FieldProblem(BaseModel):
    field: str
    description: str


class Problem(BaseModel):
    """RFC 9457."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


_GENDERS = {
    "": common_pb2.GENDER_UNSPECIFIED,
    "female": common_pb2.GENDER_FEMALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
    "not_known": common_pb2.GENDER_NOT_KNOWN,
}


class ReviewIn(_Strict):
    """A review of a proactive candidate: who its linked records are, under a proactive purpose."""

    candidate_id: str = Field(max_length=64)
    purpose: str = Field(default="proactive-review", max_length=64)
    justification: str = Field(default="", max_length=2000)
    case_ref: str = Field(default="", max_length=64)


def _address(a: AddressIn) -> common_pb2.Address:
    return common_pb2.Address(lines=a.lines, town=a.town, postcode=a.postcode, uprn=a.uprn)


def _subject(s: SubjectIn) -> common_pb2.Subject:
    return common_pb2.Subject(
        given_names=s.given_names,
        family_name=s.family_name,
        other_names=[
            common_pb2.PersonName(given_names=n.given_names, family_name=n.family_name) for n in s.other_names
        ],
        date_of_birth=s.date_of_birth,
        gender=_GENDERS[s.gender],
        address=_address(s.address),
        nhs_number=s.nhs_number,
    )


def check_message(body: CheckIn) -> broker_pb2.CheckRequest:
    """The gRPC request a REST check body stands for (validated by the servicer, as over gRPC)."""
    return broker_pb2.CheckRequest(
        subject=_subject(body.subject),
        purpose=body.purpose,
        justification=body.justification,
        case_ref=body.case_ref,
    )


def household_message(body: HouseholdIn) -> broker_pb2.HouseholdRequest:
    """The gRPC request a REST household body stands for."""
    return broker_pb2.HouseholdRequest(
        address=_address(body.address),
        purpose=body.purpose,
        justification=body.justification,
        case_ref=body.case_ref,
    )


def _out(response: broker_pb2.CheckResponse) -> CheckOut:
    data = json_format.MessageToDict(response, preserving_proto_field_name=True)
    for row in data.get("results", []):
        row.setdefault("status", {})
        finding = row.setdefault("finding", {})
        finding["outcome"] = finding.get("outcome", "OUTCOME_UNSPECIFIED").removeprefix("OUTCOME_")
        finding["resolving_attributes"] = [
            a.removeprefix("ATTRIBUTE_") for a in finding.get("resolving_attributes", [])
        ]
        for number in ("activity_count", "people_count"):
            finding[number] = int(finding.get(number, 0))
        row["status"]["elapsed_ms"] = int(row["status"].get("elapsed_ms", 0))
    return CheckOut.model_validate(data)


def _problem(status: int, title: str, detail: str, errors: list[FieldProblem] | None = None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM)


def create_app(servicer: BrokerServicer) -> FastAPI:
    """The REST API over a broker servicer (served by `lateral broker serve` when `[rest]` is configured)."""
    app = FastAPI(
        title="Lateral: lateral checks for Multi-Agency Safeguarding Hubs",
        version="1",
        description=__doc__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "content": {PROBLEM: {}}} for code in (400, 401, 403, 404, 429, 503)
    }

    def caller_of(request: Request) -> Any:
        callers = servicer.callers
        headers = request.headers
        if isinstance(callers, CertifiedCallers):
            encoded = headers.get("x-lateral-certificate", "")
            try:
                pem = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise UnauthenticatedError(
                    "X-Lateral-Certificate must be the base64 of a PEM certificate"
                ) from None
            if not pem:
                raise UnauthenticatedError(
                    "a case system's certificate is required (header X-Lateral-Certificate)"
                )
            return callers.presented(pem, headers.get(METADATA_KEY, ""))
        if isinstance(callers, StatedCallers):
            return callers.stated({k.lower(): v for k, v in headers.items()})
        raise UnauthenticatedError("no way to establish the caller")

    @app.exception_handler(LateralError)
    async def _lateral(request: Request, error: LateralError) -> JSONResponse:
        status = STATUS.get(error.code.name, 500)
        errors = (
            [FieldProblem(field=v.field, description=v.description) for v in error.violations]
            if isinstance(error, InvalidRequestError)
            else []
        )
        response = _problem(status, error.code.name.replace("_", " ").lower(), error.message, errors)
        if isinstance(error, OverloadedError):
            response.headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # What the framework refuses before our code runs (a body not JSON, a wrong method), as a problem.
        return _problem(error.status_code, "request refused", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem(field=".".join(str(p) for p in e["loc"] if p != "body"), description=e["msg"])
            for e in error.errors()
        ]
        return _problem(400, "invalid argument", "the request does not fit the API", errors)

    @app.post("/v1/checks", response_model=CheckOut, responses=responses, summary="Check a person")
    async def check(body: CheckIn, request: Request) -> CheckOut:
        return _out(await servicer.answer(lambda: caller_of(request), check_message(body), None))

    @app.post("/v1/households", response_model=CheckOut, responses=responses, summary="Check a household")
    async def household(body: HouseholdIn, request: Request) -> CheckOut:
        return _out(await servicer.answer(lambda: caller_of(request), household_message(body), None))

    jobs: dict[str, tuple[str, BulkJobOut]] = {}  # job id -> (owning organisation, its state)

    @app.post(
        "/v1/bulk",
        response_model=BulkJobOut,
        status_code=202,
        responses=responses,
        summary="Submit a bulk check",
    )
    async def bulk(body: BulkIn, request: Request) -> BulkJobOut:
        caller = caller_of(request)
        job = BulkJobOut(job_id=uuid.uuid4().hex, state="running", total=len(body.items), answered=0)
        jobs[job.job_id] = (caller.organisation, job)

        async def items() -> AsyncIterator[broker_pb2.BulkItem]:
            for item in body.items:
                yield broker_pb2.BulkItem(
                    item_id=item.item_id,
                    request=broker_pb2.CheckRequest(
                        subject=_subject(item.subject),
                        purpose=body.purpose,
                        justification=body.justification,
                        case_ref=item.case_ref,
                    ),
                )

        async def run() -> None:
            async for result in servicer.bulk(caller, items()):
                job.results.append(
                    BulkResultOut(
                        item_id=result.item_id,
                        response=_out(result.response) if result.HasField("response") else None,
                        error_code=result.error.code,
                        error_message=result.error.message,
                    )
                )
                job.answered += 1
            job.state = "done"

        task = asyncio.create_task(run(), name=f"bulk {job.job_id}")
        running.add(task)
        task.add_done_callback(running.discard)
        return job

    running: set[asyncio.Task[None]] = set()

    @app.get(
        "/v1/bulk/{job_id}", response_model=BulkJobOut, responses=responses, summary="A bulk check's progress"
    )
    async def bulk_status(job_id: str, request: Request) -> BulkJobOut:
        caller = caller_of(request)
        found = jobs.get(job_id)
        if (
            found is None or found[0] != caller.organisation
        ):  # another organisation's job is nobody's business
            raise StarletteHTTPException(404, "no such bulk job")
        return found[1]

    @app.get(
        "/v1/review-candidates",
        responses=responses,
        summary="Proactive identification: the review candidates you may see, pseudonymous",
    )
    async def review_candidates(
        request: Request, purpose: str = "proactive-review", limit: int = 0
    ) -> dict[str, Any]:
        message = broker_pb2.ListReviewCandidatesRequest(purpose=purpose, limit=max(0, min(limit, 1000)))
        answer = await servicer.review_candidates(lambda: caller_of(request), message, None)
        return json_format.MessageToDict(answer, preserving_proto_field_name=True)

    @app.post(
        "/v1/reviews",
        responses=responses,
        summary="Proactive identification: ask the agencies holding a candidate's records who it is",
    )
    async def review(body: ReviewIn, request: Request) -> dict[str, Any]:
        message = broker_pb2.ReviewRequest(**body.model_dump())
        answer = await servicer.review(lambda: caller_of(request), message, None)
        return json_format.MessageToDict(answer, preserving_proto_field_name=True)

    @app.get("/v1/agencies", summary="The agencies and purposes this broker serves")
    async def agencies() -> dict[str, Any]:
        return json_format.MessageToDict(servicer.listing(), preserving_proto_field_name=True)

    return app
