"""The REST/JSON API over HTTPS: the same checks, policy and audit as gRPC; RFC 9457 problems; OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.limits import LimitsSection
from lateral.demo import Federation, Prepared, start_federation
from lateral.demo.agreement import DEMO_CALLER
from lateral.demo.agreement import DEMO_POLICE_CALLER as POLICE
from pki.assertion import METADATA_KEY, mint
from protos.lateral.v1 import common_pb2
from tests.integration.truth import person_of


@pytest.fixture
async def client(federation: Federation, prepared: Prepared) -> AsyncIterator[httpx.AsyncClient]:
    trusted = ssl.create_default_context(cafile=str(prepared.pki.folder / "ca.crt"))
    async with httpx.AsyncClient(base_url=federation.rest_url, verify=trusted, timeout=10) as http:
        yield http


def identity(federation: Federation, role: str = DEMO_CALLER.role) -> dict[str, str]:
    tls = federation.client_tls(DEMO_CALLER)
    assert tls is not None
    return {
        "X-Lateral-Certificate": base64.b64encode(tls.cert).decode(),
        METADATA_KEY: mint(tls.private_key, tls.identity, user=DEMO_CALLER.user, role=role),
    }


def body(prepared: Prepared) -> dict[str, Any]:
    a = prepared.examples.three_agencies.args
    return {
        "subject": {
            "given_names": a["given-name"].split(),
            "family_name": a["family-name"],
            "date_of_birth": a["dob"],
            "address": {"postcode": a["postcode"]},
        },
        "purpose": a["purpose"],
        "justification": a["justification"],
        "case_ref": a["case-ref"],
    }


async def test_a_check_over_rest_answers_as_grpc_does(
    client: httpx.AsyncClient, federation: Federation, prepared: Prepared
) -> None:
    response = await client.post("/v1/checks", json=body(prepared), headers=identity(federation))
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = prepared.examples.three_agencies.expected
    assert {r["agency_id"]: r["finding"]["outcome"] for r in answer["results"]} == {
        a: common_pb2.Outcome.Name(o).removeprefix("OUTCOME_") for a, o in expected.items()
    }
    assert answer["review_required"] is True
    assert answer["agreement"] == "northshire-mash-lateral-checks v1"


async def test_problems_are_rfc_9457(
    client: httpx.AsyncClient, federation: Federation, prepared: Prepared
) -> None:
    invalid = body(prepared)
    invalid["subject"]["date_of_birth"] = "2012-02-30"
    bad = await client.post("/v1/checks", json=invalid, headers=identity(federation))
    assert (bad.status_code, bad.headers["content-type"]) == (400, "application/problem+json")
    assert bad.json()["errors"] == [
        {"field": "subject.date_of_birth", "description": "is not a real calendar date"}
    ]
    anonymous = await client.post("/v1/checks", json=body(prepared))
    assert anonymous.status_code == 401
    assert (
        anonymous.json()["detail"] == "a case system's certificate is required (header X-Lateral-Certificate)"
    )
    headers = identity(federation, role="receptionist")
    refused = await client.post("/v1/checks", json=body(prepared), headers=headers)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("the data-sharing agreement does not permit this check")
    replayed = await client.post("/v1/checks", json=body(prepared), headers=headers)
    assert (replayed.status_code, replayed.json()["detail"]) == (
        401,
        "the user assertion has already been used (replay)",
    )
    unknown_field = body(prepared) | {"shoe_size": 9}
    extra = await client.post("/v1/checks", json=unknown_field, headers=identity(federation))
    assert extra.status_code == 400
    assert extra.json()["errors"][0]["field"] == "shoe_size"


async def test_a_household_over_rest(
    client: httpx.AsyncClient, federation: Federation, prepared: Prepared
) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    request = {
        "address": {"lines": [child.address.line], "postcode": child.address.postcode},
        "purpose": "household-safeguarding",
        "justification": "Fire risk at the family home",
        "case_ref": "MASH-0142",
    }
    response = await client.post("/v1/households", json=request, headers=identity(federation))
    assert response.status_code == 200, response.text
    social = next(r for r in response.json()["results"] if r["agency_id"] == "socialcare")
    assert social["finding"]["outcome"] == "KNOWN"
    assert social["finding"]["people_count"] >= 1


async def test_the_openapi_document_describes_the_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) == {
        "/v1/checks",
        "/v1/households",
        "/v1/bulk",
        "/v1/bulk/{job_id}",
        "/v1/agencies",
        "/v1/review-candidates",
        "/v1/reviews",
    }
    assert (
        "application/problem+json" in document["paths"]["/v1/checks"]["post"]["responses"]["400"]["content"]
    )


async def test_a_bulk_job_over_rest_belongs_to_its_organisation(
    client: httpx.AsyncClient, federation: Federation, prepared: Prepared
) -> None:
    one = body(prepared)
    items = [{"item_id": f"row{i}", "subject": one["subject"], "case_ref": f"CIN-{i}"} for i in range(3)] + [
        {"item_id": "bad", "subject": {"family_name": "Lee"}, "case_ref": "CIN-9"}
    ]
    request = {"purpose": one["purpose"], "justification": "Caseload review", "items": items}
    submitted = await client.post("/v1/bulk", json=request, headers=identity(federation))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert (job["state"], job["total"]) == ("running", 4)
    for _ in range(100):
        status = (await client.get(f"/v1/bulk/{job['job_id']}", headers=identity(federation))).json()
        if status["state"] == "done":
            break
        await asyncio.sleep(0.05)
    assert (status["state"], status["answered"]) == ("done", 4)
    by_id = {r["item_id"]: r for r in status["results"]}
    assert by_id["row0"]["response"]["review_required"] is True
    assert (by_id["bad"]["error_code"], by_id["bad"]["response"]) == ("INVALID_ARGUMENT", None)
    police = federation.client_tls(POLICE)
    assert police is not None
    stranger = {
        "X-Lateral-Certificate": base64.b64encode(police.cert).decode(),
        METADATA_KEY: mint(police.private_key, police.identity, user="pc", role="mash-police-officer"),
    }
    other = await client.get(f"/v1/bulk/{job['job_id']}", headers=stranger)
    assert (other.status_code, other.json()["detail"]) == (404, "no such bulk job")


async def test_the_api_survives_fuzzing_against_its_own_schema(prepared: Prepared, tmp_path: Path) -> None:
    """schemathesis against a running instance (plaintext, stated identity, so requests get past sign-in):
    no 5xx, every response as documented."""
    federation = await start_federation(
        prepared,
        insecure_dev=True,
        limits=LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000),
    )
    try:
        who = {
            "Organisation": DEMO_CALLER.organisation,
            "System": "fuzz",
            "User": "fuzzer",
            "Role": DEMO_CALLER.role,
        }
        headers = [arg for name, value in who.items() for arg in ("-H", f"X-Lateral-{name}: {value}")]
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{federation.rest_url}/openapi.json",
            *headers,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--seed",
            "1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # schemathesis keeps a cache in its working folder
        )
        out, _ = await asyncio.wait_for(process.communicate(), 300)
    finally:
        await federation.stop()
    assert process.returncode == 0, out.decode()[-3000:]


async def test_review_candidates_and_a_review_over_rest(
    client: httpx.AsyncClient, federation: Federation
) -> None:
    listing = await client.get("/v1/review-candidates", params={"limit": 2}, headers=identity(federation))
    assert listing.status_code == 200, listing.text
    candidates = listing.json()["candidates"]
    assert len(candidates) == 2
    first = candidates[0]["candidate_id"]
    missing = await client.post(
        "/v1/reviews", json={"candidate_id": first, "case_ref": "PRO-3"}, headers=identity(federation)
    )
    assert missing.status_code == 400
    assert missing.json()["errors"] == [
        {"field": "justification", "description": "is required for purpose proactive-review"}
    ]
    review = await client.post(
        "/v1/reviews",
        json={"candidate_id": first, "justification": "Three agencies", "case_ref": "PRO-3"},
        headers=identity(federation),
    )
    assert review.status_code == 200, review.text
    rows = review.json()["rows"]
    assert rows
    assert all(r["outcome"] == "OUTCOME_KNOWN" and r["identity"]["family_name"] for r in rows)
    gone = await client.post(
        "/v1/reviews",
        json={"candidate_id": "f" * 32, "justification": "x", "case_ref": "PRO-3"},
        headers=identity(federation),
    )
    assert (gone.status_code, gone.json()["title"]) == (404, "not found")
    worker = await client.get("/v1/review-candidates", headers=identity(federation, "mash-social-worker"))
    assert worker.status_code == 403
    assert worker.json()["detail"].startswith("the data-sharing agreement does not permit this listing")
