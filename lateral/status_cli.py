"""`lateral status`: the federation on one screen, from the broker (its agreement and audit log; each
agency's health, index size and freshness, database status and agreement version)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

import click
import grpc
from google.protobuf import json_format, timestamp_pb2
from rich.console import Console
from rich.table import Table

from lateral.caller_options import connection_options, resolve_caller
from lateral.console import fail
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc


def _age(stamp: timestamp_pb2.Timestamp, now: dt.datetime) -> str:
    if not stamp.seconds:
        return "-"
    seconds = max(0, int((now - stamp.ToDatetime(dt.UTC)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


_CIRCUITS = {
    "open": "it kept failing; checks do not ask it until it answers a probe",
    "half-open": "a probe found it back; the next call decides whether checks ask it again",
}


def problems(status: broker_pb2.StatusResponse) -> list[str]:
    """What an operator must look at: agencies not serving, unreadable databases, other agreements."""
    out = []
    for a in status.agencies:
        if a.health != "SERVING":
            out.append(f"{a.agency_id}: {a.health}" + (f" ({a.detail})" if a.detail else ""))
        elif a.source_health != "SERVING":
            out.append(f"{a.agency_id}: database cannot be read: {a.describe.source_detail or 'no detail'}")
        if a.circuit in _CIRCUITS:
            out.append(f"{a.agency_id}: circuit {a.circuit}: {_CIRCUITS[a.circuit]}")
        if a.describe.agreement and a.describe.agreement != status.agreement:
            out.append(f"{a.agency_id}: enforces {a.describe.agreement}, the broker {status.agreement}")
    return out


def render(status: broker_pb2.StatusResponse, console: Console, now: dt.datetime) -> None:
    console.print(
        f"[bold]Broker[/] {status.broker_version}, up since {_age(status.started_at, now)}; agreement "
        f"{status.agreement} (review by {status.agreement_review_by}); audit log {status.audit_events:,} "
        f"events, last checkpoint {_age(status.audit_checkpoint_at, now)}",
        highlight=False,
    )
    table = Table(show_lines=False)
    for column in (
        "Agency",
        "Adapter",
        "Database",
        "Records",
        "Activities",
        "Refreshed",
        "Agreement",
        "Asked",
    ):
        table.add_column(column, justify="right" if column in ("Records", "Activities", "Asked") else "left")
    colours = {"SERVING": "green", "NOT_SERVING": "bold red", "UNREACHABLE": "bold red"}
    for a in status.agencies:
        d = a.describe
        reachable = a.health != "UNREACHABLE"
        same = d.agreement == status.agreement
        agreement = "same" if same else f"[bold red]{d.agreement}[/]"
        table.add_row(
            a.agency_id,
            f"[{colours.get(a.health, 'yellow')}]{a.health}[/]",
            f"[{colours.get(a.source_health, 'yellow')}]{a.source_health or '-'}[/]",
            f"{d.record_count:,}" if reachable else "-",
            f"{d.activity_count:,}" if reachable else "-",
            _age(d.index_refreshed_at, now) if reachable else "-",
            agreement if reachable else "-",
            f"{a.round_trip_ms} ms",
        )
    console.print(table)
    for problem in problems(status):
        console.print(f"[bold red]![/] {problem}", highlight=False)


@click.command("status")
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--timeout", type=click.FloatRange(0.5, 30), default=5.0, show_default=True, help="Seconds to wait."
)
def status(
    broker_address: str,
    organisation: str,
    ca: str,
    cert: str,
    key: str,
    insecure_dev: bool,
    as_json: bool,
    timeout: float,
) -> None:
    """The federation on one screen: each agency's adapter and database health, index size and freshness,
    and the agreement each enforces, as the broker sees them.

    Any certificate of the federation may ask (no user or role: nothing personal is shown). Exit status 0
    when every agency serves from a readable database under the broker's agreement, 1 when any does not,
    3 when the broker cannot be reached.
    """
    from lateral.client import broker_channel

    caller, tls = resolve_caller(
        organisation=organisation,
        ca=ca,
        cert=cert,
        key=key,
        role="operator",
        user="operator",
        insecure_dev=insecure_dev,
        system="lateral-status",
    )

    async def ask() -> broker_pb2.StatusResponse:
        async with broker_channel(broker_address, caller, tls) as channel:
            return await broker_pb2_grpc.LateralCheckStub(channel).Status(
                broker_pb2.StatusRequest(), timeout=timeout
            )

    try:
        answer = asyncio.run(ask())
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            fail(f"the broker refused: {error.details()}", 4)
        fail(f"cannot ask the broker at {broker_address} ({error.code().name}). Is it running?", 3)
    if as_json:
        click.echo(json.dumps(json_format.MessageToDict(answer, preserving_proto_field_name=True), indent=2))
    else:
        render(answer, Console(), dt.datetime.now(dt.UTC))
    sys.exit(1 if problems(answer) else 0)
