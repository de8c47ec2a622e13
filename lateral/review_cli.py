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

from lateral.caller_options import caller_options, resolve_caller
from lateral.config import ConfigError
from lateral.console import fail, fail_rpc
from lateral.identity import Caller
from lateral.render import render_candidates, render_review
from pki.tls import Tls
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc

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
