"""`lateral review`: proactive identification's candidates and reviews, from the command line
(docs/proactive.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lateral.caller_options import caller_options, resolve_caller
from lateral.config import ConfigError
from lateral.console import fail, fail_rpc
from lateral.identity import Caller
from pki.tls import Tls
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2

if TYPE_CHECKING:
    from protos.lateral.v1.broker_pb2_grpc import LateralCheckAsyncStub

M = TypeVar("M", bound=Message)
_PURPOSE = click.option(
    "--purpose", default="proactive-review", show_default=True, help="A proactive purpose of the agreement."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON instead of a table.")
_TIMEOUT = click.option(
    "--timeout", type=click.FloatRange(0.1, 60), default=10.0, show_default=True, help="Seconds to wait."
)


@click.group()
def review() -> None:
    """People known to several agencies, found before anyone refers them (proactive identification).

    \b
    lateral review candidates --role mash-manager ...          pseudonymous: agencies, dates, categories
    lateral review request CANDIDATE --justification ... --case-ref ... --role mash-manager ...

    A review asks the agencies holding the candidate's records who it is: each decides under the
    data-sharing agreement and may withhold; every listing and review is audited at the broker and at each
    agency.
    """


def _call(
    broker_address: str,
    caller: Caller,
    tls: Tls | None,
    ask: Callable[[LateralCheckAsyncStub], Awaitable[M]],
    what: str,
) -> M:
    from lateral.client import broker_channel

    async def run() -> M:
        async with broker_channel(broker_address, caller, tls) as channel:
            return await ask(broker_pb2_grpc.LateralCheckStub(channel))

    try:
        return asyncio.run(run())
    except ConfigError as error:
        fail(str(error), 2)
    except grpc.aio.AioRpcError as error:
        fail_rpc(error, what, broker_address)


def _print_json(message: Message) -> None:
    click.echo(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True), indent=2))


@review.command("candidates")
@_PURPOSE
@click.option("--limit", type=click.IntRange(0, 1000), default=0, help="At most this many (0: the broker's).")
@_TIMEOUT
@caller_options
@_JSON
def candidates(purpose: str, limit: int, timeout: float, as_json: bool, **options: Any) -> None:
    """List the review candidates you may see, most urgent first."""
    caller, tls = _caller(options)
    request = broker_pb2.ListReviewCandidatesRequest(purpose=purpose, limit=limit)
    response = _call(
        options["broker_address"],
        caller,
        tls,
        lambda stub: stub.ListReviewCandidates(request, timeout=timeout),
        "listing",
    )
    if as_json:
        _print_json(response)
        return
    render_candidates(response, Console())


@review.command("request")
@click.argument("candidate_id")
@_PURPOSE
@click.option("--justification", required=True, help="Why you need to know who this is.")
@click.option("--case-ref", required=True, help="The case or review reference this is recorded under.")
@_TIMEOUT
@caller_options
@_JSON
def request_review(
    candidate_id: str,
    purpose: str,
    justification: str,
    case_ref: str,
    timeout: float,
    as_json: bool,
    **options: Any,
) -> None:
    """Ask the agencies holding a candidate's records who it is."""
    caller, tls = _caller(options)
    request = broker_pb2.ReviewRequest(
        candidate_id=candidate_id, purpose=purpose, justification=justification, case_ref=case_ref
    )
    response = _call(
        options["broker_address"],
        caller,
        tls,
        lambda stub: stub.RequestReview(request, timeout=timeout),
        "review",
    )
    if as_json:
        _print_json(response)
        return
    render_review(response, Console())


def _caller(options: dict[str, Any]) -> tuple[Caller, Tls | None]:
    return resolve_caller(
        organisation=options["organisation"],
        ca=options["ca"],
        cert=options["cert"],
        key=options["key"],
        role=options["role"],
        user=options["user"],
        insecure_dev=options["insecure_dev"],
        system="lateral-cli",
    )


def render_candidates(response: broker_pb2.ListReviewCandidatesResponse, console: Console) -> None:
    """One row per candidate: its pseudonym, priority, agencies with dates and categories, and why."""
    linked = (
        response.linked_at.ToDatetime().isoformat(timespec="minutes")
        if response.HasField("linked_at")
        else "-"
    )
    table = Table(title=f"Review candidates (linked {linked})", show_lines=True, expand=True)
    table.add_column("Candidate", style="bold", ratio=2)
    table.add_column("Priority", justify="right", ratio=1)
    table.add_column("Agencies: latest activity, categories", ratio=4)
    table.add_column("Why", ratio=5)
    for c in response.candidates:
        agencies = "\n".join(
            f"{a.agency_name}: {a.latest_activity_date or 'date not released'}"
            + (f", {', '.join(a.categories)}" if a.categories else "")
            for a in c.agencies
        )
        table.add_row(c.candidate_id, f"{c.priority:.1f}", agencies, "\n".join(c.reasons))
    console.print(table)
    if not response.candidates:
        console.print("No review candidates you may see.")


def render_review(response: broker_pb2.ReviewResponse, console: Console) -> None:
    """One row per linked record: the agency's answer and, where it says who, the identity."""
    from lateral.render import OUTCOME_WORDS

    table = Table(title=f"Review {response.review_id}", show_lines=True, expand=True)
    table.add_column("Agency", style="bold", ratio=2)
    table.add_column("Outcome", ratio=2)
    table.add_column("Who", ratio=5)
    table.add_column("Whom to call", ratio=3)
    for row in response.rows:
        words, style = OUTCOME_WORDS.get(row.outcome, ("Unknown", ""))
        if row.outcome == common_pb2.OUTCOME_KNOWN:
            words = "Identified"
        table.add_row(row.agency_name, Text(words, style=style), _who(row), _contact(row.contact))
    console.print(table)
    console.print(f"Under agreement {response.agreement}. Record what you do with this in the case.")


def _who(row: broker_pb2.ReviewRow) -> str:
    if not row.HasField("identity"):
        if row.outcome == common_pb2.OUTCOME_WITHHELD:
            return "The agency restricts this record: call it"
        return row.status.detail
    s = row.identity
    lines = [" ".join([*s.given_names, s.family_name])]
    if s.date_of_birth:
        lines.append(f"born {s.date_of_birth}")
    address = ", ".join([*s.address.lines, s.address.postcode])
    if address.strip(", "):
        lines.append(address)
    if s.nhs_number:
        lines.append(f"NHS {s.nhs_number}")
    lines += [f"also known as {' '.join([*o.given_names, o.family_name])}" for o in s.other_names]
    return "\n".join(lines)


def _contact(contact: common_pb2.Contact) -> str:
    return "\n".join(p for p in (contact.name, contact.phone, contact.email) if p)
