"""The demo's proactive identification: the candidates the agencies' encodings link to, pseudonymous; one
review that learns who the first is; and a caller the agreement does not permit, refused."""

from __future__ import annotations

import grpc
from rich.console import Console

from lateral.demo.agreement import DEMO_CALLER, DEMO_POLICE_CALLER
from lateral.demo.federation import Federation
from lateral.render import render_candidates, render_review
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2

PURPOSE = "proactive-review"


async def show_proactive(federation: Federation, console: Console) -> bool:
    """True when candidates are listed, the first review identifies its records at every agency asked, and
    the police (no permission for the purpose) are refused."""
    console.rule("Proactive identification: known to several agencies, before anyone refers them")
    async with federation.channel(DEMO_CALLER) as channel:
        stub = broker_pb2_grpc.LateralCheckStub(channel)
        listing = await stub.ListReviewCandidates(
            broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE, limit=5), timeout=10
        )
        render_candidates(listing, console)
        if not listing.candidates:
            console.print("[bold red]UNEXPECTED:[/] no review candidates")
            return False
        first = listing.candidates[0]
        console.rule(f"A MASH manager asks who candidate {first.candidate_id} is (audited everywhere)")
        review = await stub.RequestReview(
            broker_pb2.ReviewRequest(
                candidate_id=first.candidate_id,
                purpose=PURPOSE,
                justification="Proactive review: activity at several agencies",
                case_ref="PRO-0001",
            ),
            timeout=10,
        )
        render_review(review, console)
    identified = [r for r in review.rows if r.outcome == common_pb2.OUTCOME_KNOWN and r.HasField("identity")]
    ok = bool(review.rows) and len(identified) == len(review.rows)
    if not ok:
        console.print("[bold red]UNEXPECTED:[/] not every agency identified its record")
    async with federation.channel(DEMO_POLICE_CALLER) as channel:
        try:
            await broker_pb2_grpc.LateralCheckStub(channel).ListReviewCandidates(
                broker_pb2.ListReviewCandidatesRequest(purpose=PURPOSE), timeout=10
            )
            console.print("[bold red]UNEXPECTED:[/] the police were shown the candidates")
            ok = False
        except grpc.aio.AioRpcError as error:
            console.print(
                f"A police officer asking for the candidates: {error.code().name}: {error.details()}"
            )
            ok = ok and error.code() == grpc.StatusCode.PERMISSION_DENIED
    return ok


def proactive_commands(federation: Federation, files: str) -> str:
    """The CLI commands that list the candidates and request a review, for the demo's closing words."""
    who = f"--broker {federation.broker_address}{files} --role mash-manager --user demo.manager"
    return (
        f"lateral review candidates {who}\n"
        f"lateral review request CANDIDATE_ID --justification '...' --case-ref PRO-0001 {who}"
    )
