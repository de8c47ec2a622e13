"""The web page's proactive identification (docs/proactive.md): the review candidates, pseudonymous, and a
review that asks the agencies holding a candidate's records who it is."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lateral.errors import field_violations
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from web.accounts import Account

PURPOSE = "proactive-review"
_CANDIDATE = re.compile(r"[0-9a-f]{32}")
_FIELDS = {"justification": "justification", "case_ref": "case_ref"}
_LABELS = {"justification": "Why you need to know", "case_ref": "Case reference"}


def add_proactive_routes(
    app: FastAPI,
    page: Callable[..., HTMLResponse],
    signed_in: Callable[[Request], Account | None],
    csrf: Callable[[Request], str],
    channel: Callable[[Account], grpc.aio.Channel],
    outcomes: Mapping[Any, tuple[str, str]],
) -> None:
    """/candidates, /candidates/{id}/review (GET the form, POST the review)."""

    @app.get("/candidates", response_class=HTMLResponse, response_model=None)
    async def candidates(request: Request) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        try:
            async with channel(account) as ch:
                listing = await broker_pb2_grpc.LateralCheckStub(ch).ListReviewCandidates(
                    broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE), timeout=10
                )
        except grpc.aio.AioRpcError as error:
            status = 403 if error.code() == grpc.StatusCode.PERMISSION_DENIED else 503
            return page(request, "candidates.html", status, listing=None, error=error.details())
        return page(request, "candidates.html", listing=listing, error="")

    def form_page(
        request: Request,
        candidate_id: str,
        form: dict[str, str],
        errors: list[tuple[str, str]],
        status: int = 200,
    ) -> HTMLResponse:
        return page(request, "review_form.html", status, candidate_id=candidate_id, form=form, errors=errors)

    @app.get("/candidates/{candidate_id}/review", response_class=HTMLResponse, response_model=None)
    async def review_form(request: Request, candidate_id: str) -> Response:
        if signed_in(request) is None:
            return RedirectResponse("/sign-in", status_code=303)
        if not _CANDIDATE.fullmatch(candidate_id):
            return page(request, "candidates.html", 404, listing=None, error="There is no such candidate.")
        return form_page(request, candidate_id, {}, [])

    @app.post("/candidates/{candidate_id}/review", response_class=HTMLResponse, response_model=None)
    async def review(request: Request, candidate_id: str) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        if not secrets.compare_digest(form.pop("csrf_token", ""), csrf(request)):
            return RedirectResponse("/sign-in", status_code=303)
        asked = broker_pb2.ReviewRequest(
            candidate_id=candidate_id,
            purpose=PURPOSE,
            justification=form.get("justification", ""),
            case_ref=form.get("case_ref", ""),
        )
        errors: list[tuple[str, str]] = []
        try:
            async with channel(account) as ch:
                answer = await broker_pb2_grpc.LateralCheckStub(ch).RequestReview(asked, timeout=15)
        except grpc.aio.AioRpcError as error:
            for v in field_violations(error):
                errors.append((_FIELDS.get(v.field, ""), f"{_LABELS.get(v.field, v.field)} {v.description}"))
            if not errors:
                errors.append(("", error.details() or "The review could not be made. Try again."))
            return form_page(request, candidate_id, form, errors, 400)
        return page(request, "review.html", review=answer, outcomes=outcomes, known=common_pb2.OUTCOME_KNOWN)
