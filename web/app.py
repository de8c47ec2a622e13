"""The web page for MASH staff, in the look of the GOV.UK Design System (govuk-frontend from npm).

A signed-in worker searches for a person; the page asks the broker as a case system would (its own client
certificate, and a user assertion for the worker), and shows one row per agency. Sessions are signed
cookies that expire; every form carries a CSRF token; responses carry strict security headers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from audit.keys import AuditSection, load_keys, read_auditor_key
from audit.reader import Filters, export_bundle, read_events
from audit.sealing import unseal
from audit.store import AuditLog
from audit.verify import verify_log
from lateral.client import broker_channel
from lateral.errors import field_violations
from lateral.identity import Caller
from pki.tls import Tls
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2
from web.accounts import Account, authenticate
from web.proactive import add_proactive_routes

HERE = Path(__file__).resolve().parent
GOVUK = HERE / "node_modules" / "govuk-frontend" / "dist" / "govuk"
SESSION_MINUTES = 30
OUTCOME_WORDS = {
    common_pb2.OUTCOME_KNOWN: ("Known", "govuk-tag--red"),
    common_pb2.OUTCOME_NOT_KNOWN: ("No activity reported", "govuk-tag--grey"),
    common_pb2.OUTCOME_POSSIBLE: ("Possible match", "govuk-tag--yellow"),
    common_pb2.OUTCOME_WITHHELD: ("Withheld", "govuk-tag--orange"),
    common_pb2.OUTCOME_DENIED: ("Not permitted", "govuk-tag--grey"),
    common_pb2.OUTCOME_UNAVAILABLE: ("Unavailable", "govuk-tag--yellow"),
    common_pb2.OUTCOME_TIMEOUT: ("No answer in time", "govuk-tag--yellow"),
}
GENDERS = {
    "female": common_pb2.GENDER_FEMALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
    "not_known": common_pb2.GENDER_NOT_KNOWN,
}
# What would resolve a possible match, in words.
ATTRIBUTE_WORDS = {
    common_pb2.ATTRIBUTE_GIVEN_NAMES: "given names",
    common_pb2.ATTRIBUTE_FAMILY_NAME: "family name",
    common_pb2.ATTRIBUTE_DATE_OF_BIRTH: "date of birth",
    common_pb2.ATTRIBUTE_GENDER: "gender",
    common_pb2.ATTRIBUTE_POSTCODE: "postcode",
    common_pb2.ATTRIBUTE_ADDRESS: "address",
    common_pb2.ATTRIBUTE_NHS_NUMBER: "NHS number",
    common_pb2.ATTRIBUTE_OTHER_NAMES: "other names",
}
# Where each field the broker names lives on the form.
FORM_FIELDS = {
    "subject.given_names": "given_name",
    "subject.given_names[0]": "given_name",
    "subject.family_name": "family_name",
    "subject.date_of_birth": "dob-day",
    "subject.address.postcode": "postcode",
    "subject.nhs_number": "nhs_number",
    "purpose": "purpose",
    "justification": "justification",
    "case_ref": "case_ref",
}


@dataclass(frozen=True)
class WebSettings:
    broker: str
    tls: Tls | None  # the web page's own client certificate; None in plaintext development
    accounts: dict[str, Account]
    session_secret: str
    organisation: str  # used only in plaintext development, where no certificate says it
    # Whether browsers reach the page over HTTPS (directly or through the council's TLS proxy): cookies are
    # then sent over HTTPS only. The demo serves plain HTTP on 127.0.0.1.
    https: bool = True
    # The broker's audit log and the auditors' private key, for the auditor pages (role "auditor").
    audit: AuditSection | None = None
    auditor_key: Path | None = None


def _headers(response: Response) -> None:
    response.headers.update(
        {
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
    )


def create_web_app(settings: WebSettings) -> FastAPI:
    app = FastAPI(title="Lateral", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="lateral_session",
        max_age=SESSION_MINUTES * 60,
        same_site="strict",
        https_only=settings.https,
    )
    if GOVUK.is_dir():
        app.mount("/assets", StaticFiles(directory=GOVUK / "assets"), name="assets")
        app.mount("/govuk", StaticFiles(directory=GOVUK), name="govuk")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        _headers(response)
        return response

    def csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return str(token)

    def signed_in(request: Request) -> Account | None:
        username = request.session.get("user")
        return settings.accounts.get(username) if isinstance(username, str) else None

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {"csrf": csrf(request), "account": signed_in(request)}
        return templates.TemplateResponse(request, name, context, status_code=status)

    recent: dict[str, list[dict[str, Any]]] = {}  # username -> their latest checks (no personal data)

    def remember(
        account: Account, kind: str, response: broker_pb2.CheckResponse, purpose: str, case_ref: str
    ) -> None:
        mine = recent.setdefault(account.username, [])
        mine.insert(
            0,
            {
                "at": dt.datetime.now(dt.UTC).strftime("%d %b %Y %H:%M"),
                "kind": kind,
                "check_id": response.check_id,
                "purpose": purpose,
                "case_ref": case_ref,
                "known": response.agencies_with_activity,
                "review": response.review_required,
            },
        )
        del mine[50:]

    def channel(account: Account) -> grpc.aio.Channel:
        organisation = settings.tls.identity.organisation if settings.tls else settings.organisation
        caller = Caller(organisation=organisation, system="web", user=account.username, role=account.role)
        return broker_channel(settings.broker, caller, settings.tls)

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request) -> HTMLResponse:
        return page(request, "sign_in.html")

    @app.post("/sign-in", response_class=HTMLResponse, response_model=None)
    async def sign_in(
        request: Request, username: str = Form(""), password: str = Form(""), csrf_token: str = Form("")
    ) -> Response:
        if not secrets.compare_digest(csrf_token, csrf(request)):
            return page(request, "sign_in.html", 400, error="Your session expired. Sign in again.")
        account = authenticate(settings.accounts, username.strip(), password)
        if account is None:
            return page(request, "sign_in.html", 401, error="The username or password is not right.")
        request.session.clear()
        request.session["user"] = account.username
        return RedirectResponse("/", status_code=303)

    @app.post("/sign-out", response_model=None)
    async def sign_out(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/sign-in", status_code=303)

    async def purposes(account: Account) -> list[broker_pb2.PurposeInfo]:
        async with channel(account) as ch:
            listing = await broker_pb2_grpc.LateralCheckStub(ch).ListAgencies(
                broker_pb2.ListAgenciesRequest(), timeout=5
            )
        return [p for p in listing.purposes if p.checks == "people"]

    @app.get("/", response_class=HTMLResponse, response_model=None)
    async def search(request: Request) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        return page(request, "check.html", purposes=await purposes(account), form={}, errors=[])

    @app.post("/check", response_class=HTMLResponse, response_model=None)
    async def check(request: Request) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        if not secrets.compare_digest(form.pop("csrf_token", ""), csrf(request)):
            return RedirectResponse("/sign-in", status_code=303)
        errors = []
        dob = ""
        parts = (form.get("dob-day", ""), form.get("dob-month", ""), form.get("dob-year", ""))
        if any(parts):
            try:
                dob = dt.date(int(parts[2]), int(parts[1]), int(parts[0])).isoformat()
            except ValueError:
                errors.append(("dob-day", "Date of birth must be a real date"))
        request_message = broker_pb2.CheckRequest(
            subject=common_pb2.Subject(
                given_names=form.get("given_name", "").split(),
                family_name=form.get("family_name", ""),
                date_of_birth=dob,
                gender=GENDERS.get(form.get("gender", ""), common_pb2.GENDER_UNSPECIFIED),
                nhs_number=form.get("nhs_number", ""),
                address=common_pb2.Address(postcode=form.get("postcode", "")),
            ),
            purpose=form.get("purpose", ""),
            justification=form.get("justification", ""),
            case_ref=form.get("case_ref", ""),
        )
        if not errors:
            try:
                async with channel(account) as ch:
                    response = await broker_pb2_grpc.LateralCheckStub(ch).Check(request_message, timeout=10)
            except grpc.aio.AioRpcError as error:
                violations = field_violations(error)
                if not violations:
                    errors.append(("", error.details() or "The check could not be made. Try again."))
                for v in violations:
                    errors.append((FORM_FIELDS.get(v.field, ""), f"{_label(v.field)} {v.description}"))
            else:
                remember(account, "Person", response, request_message.purpose, request_message.case_ref)
                return page(
                    request,
                    "result.html",
                    response=response,
                    outcomes=OUTCOME_WORDS,
                    attributes=ATTRIBUTE_WORDS,
                )
        return page(request, "check.html", 400, purposes=await purposes(account), form=form, errors=errors)

    @app.get("/household", response_class=HTMLResponse, response_model=None)
    async def household_form(request: Request) -> Response:
        if signed_in(request) is None:
            return RedirectResponse("/sign-in", status_code=303)
        return page(request, "household.html", form={}, errors=[])

    @app.post("/household", response_class=HTMLResponse, response_model=None)
    async def household(request: Request) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        form = {k: str(v).strip() for k, v in (await request.form()).items()}
        if not secrets.compare_digest(form.pop("csrf_token", ""), csrf(request)):
            return RedirectResponse("/sign-in", status_code=303)
        message = broker_pb2.HouseholdRequest(
            address=common_pb2.Address(
                lines=[form["address"]] if form.get("address") else [], postcode=form.get("postcode", "")
            ),
            purpose="household-safeguarding",
            justification=form.get("justification", ""),
            case_ref=form.get("case_ref", ""),
        )
        errors = []
        try:
            async with channel(account) as ch:
                response = await broker_pb2_grpc.LateralCheckStub(ch).CheckHousehold(message, timeout=10)
        except grpc.aio.AioRpcError as error:
            words = {"address": "Address", "address.postcode": "Postcode"}
            for v in field_violations(error) or []:
                errors.append(
                    (
                        _HOUSEHOLD_FIELDS.get(v.field, ""),
                        f"{words.get(v.field, _label(v.field))} {v.description}",
                    )
                )
            if not errors:
                errors.append(("", error.details() or "The check could not be made. Try again."))
            return page(request, "household.html", 400, form=form, errors=errors)
        remember(account, "Household", response, message.purpose, message.case_ref)
        return page(
            request, "result.html", response=response, outcomes=OUTCOME_WORDS, attributes=ATTRIBUTE_WORDS
        )

    def auditor(request: Request) -> Account | Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        if account.role != "auditor" or settings.audit is None:
            return page(request, "forbidden.html", 403)
        return account

    def record_read(account: Account, action: str, details: dict[str, str]) -> None:
        """Reading the audit log is itself logged, with the service's own log key."""
        assert settings.audit is not None
        log = AuditLog(settings.audit.url, load_keys(settings.audit).signer)
        try:
            log.append("audit-read", {"reader": account.username, "action": action, "via": "web", **details})
        finally:
            log.close()

    @app.get("/audit", response_class=HTMLResponse, response_model=None)
    async def audit_list(request: Request, kind: str = "", user: str = "", case_ref: str = "") -> Response:
        account = auditor(request)
        if not isinstance(account, Account):
            return account
        assert settings.audit is not None
        filters = {k: v for k, v in {"kind": kind, "user": user, "case_ref": case_ref}.items() if v}
        await asyncio.to_thread(record_read, account, "list", filters)
        events = (await asyncio.to_thread(read_events, settings.audit.url, Filters(**filters)))[-200:][::-1]
        key = read_auditor_key(settings.auditor_key) if settings.auditor_key else None
        shown = []
        for event in events:
            payload = dict(event.payload or {})
            who = ""
            if key is not None and "sealed" in payload:
                opened = json.loads(unseal(key, payload.pop("sealed")))
                subject = opened.get("subject") or opened.get("address") or {}
                who = " ".join(
                    [*subject.get("givenNames", []), subject.get("familyName", "")]
                ).strip() or ", ".join([*subject.get("lines", []), subject.get("postcode", "")])
            shown.append(
                {
                    "seq": event.seq,
                    "at": event.at[:19].replace("T", " "),
                    "kind": event.kind,
                    "who": who,
                    "payload": payload,
                }
            )
        return page(request, "audit.html", events=shown, filters=filters)

    @app.post("/audit/verify", response_class=HTMLResponse, response_model=None)
    async def audit_verify(request: Request) -> Response:
        account = auditor(request)
        if not isinstance(account, Account):
            return account
        form = await request.form()
        if not secrets.compare_digest(str(form.get("csrf_token", "")), csrf(request)):
            return RedirectResponse("/sign-in", status_code=303)
        assert settings.audit is not None
        await asyncio.to_thread(record_read, account, "verify", {})
        public = load_keys(settings.audit).signer.public_key()
        result = await asyncio.to_thread(verify_log, settings.audit.url, public)
        return page(request, "verified.html", result=result)

    @app.get("/audit/export", response_model=None)
    async def audit_export(request: Request) -> Response:
        account = auditor(request)
        if not isinstance(account, Account):
            return account
        assert settings.audit is not None
        await asyncio.to_thread(record_read, account, "export", {})
        public = load_keys(settings.audit).signer.public_key()
        bundle = await asyncio.to_thread(export_bundle, settings.audit.url, public)
        return Response(
            json.dumps(bundle, indent=1),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="lateral-audit-bundle.json"'},
        )

    @app.get("/recent", response_class=HTMLResponse, response_model=None)
    async def recent_checks(request: Request) -> Response:
        account = signed_in(request)
        if account is None:
            return RedirectResponse("/sign-in", status_code=303)
        return page(request, "recent.html", checks=recent.get(account.username, []))

    add_proactive_routes(app, page, signed_in, csrf, channel, OUTCOME_WORDS)
    return app


_HOUSEHOLD_FIELDS = {
    "address": "address",
    "address.postcode": "postcode",
    "justification": "justification",
    "case_ref": "case_ref",
}


def _label(field: str) -> str:
    words = {
        "subject.given_names": "Given name",
        "subject.family_name": "Family name",
        "subject.date_of_birth": "Date of birth",
        "subject.address.postcode": "Postcode",
        "subject.nhs_number": "NHS number",
        "purpose": "Purpose",
        "justification": "Justification",
        "case_ref": "Case reference",
    }
    return words.get(field.split("[")[0], field)
