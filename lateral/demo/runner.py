"""`lateral demo`: start the federation, show where it listens and how to ask it, run until Ctrl-C."""

from __future__ import annotations

import asyncio
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from lateral.client import build_request, check
from lateral.demo.federation import Federation, start_federation
from lateral.errors import field_violations
from lateral.render import render_check
from protos.lateral.v1 import broker_pb2, common_pb2

K, N, P, W = (
    common_pb2.OUTCOME_KNOWN,
    common_pb2.OUTCOME_NOT_KNOWN,
    common_pb2.OUTCOME_POSSIBLE,
    common_pb2.OUTCOME_WITHHELD,
)


@dataclass(frozen=True)
class Example:
    title: str
    args: dict[str, str]
    expected: dict[str, int]  # agency id -> outcome

    def request(self) -> broker_pb2.CheckRequest:
        a = self.args
        return build_request(
            given_names=a["given-name"].split(),
            family_name=a["family-name"],
            date_of_birth=a.get("dob", ""),
            postcode=a.get("postcode", ""),
            purpose=a["purpose"],
            justification=a["justification"],
            case_ref=a["case-ref"],
        )

    def command(self, broker: str) -> str:
        options = " ".join(f"--{k} {shlex.quote(v)}" for k, v in self.args.items())
        return f"lateral check {options} --broker {broker} --insecure-dev"


_CHILD = {
    "purpose": "child-safeguarding",
    "justification": "School referral: missing episodes",
    "case-ref": "MASH-0142",
}
EXAMPLES = (
    Example(
        "Known to three agencies",
        {
            "given-name": "Jayden",
            "family-name": "Clarke",
            "dob": "2012-03-14",
            "postcode": "NT1 4QT",
            **_CHILD,
        },
        {"police": K, "fire": N, "nhs": K, "socialcare": K},
    ),
    Example(
        "A restricted police record, and a fire record without a date of birth",
        {"given-name": "Darren", "family-name": "Pike", "dob": "1985-11-30", **_CHILD},
        {"police": W, "fire": P, "nhs": N, "socialcare": N},
    ),
    Example(
        "Found under a previous name",
        {"given-name": "Olivia", "family-name": "Smith", "dob": "1999-12-12", **_CHILD},
        {"police": N, "fire": N, "nhs": N, "socialcare": K},
    ),
    Example(
        "Not known anywhere",
        {"given-name": "Grace", "family-name": "Adeyemi", "dob": "2010-06-06", **_CHILD},
        {"police": N, "fire": N, "nhs": N, "socialcare": N},
    ),
)


def _print_listeners(federation: Federation, console: Console) -> None:
    table = Table(title=f"Lateral demo federation (files in {federation.workdir})")
    table.add_column("Service")
    table.add_column("Listening on")
    table.add_row("broker (LateralCheck)", federation.broker_address)
    for agency, (_, port) in federation.adapters.items():
        table.add_row(f"{agency} adapter", f"127.0.0.1:{port}")
    console.print(table)


async def _smoke(federation: Federation, console: Console) -> bool:
    ok = True
    for example in EXAMPLES:
        console.rule(example.title)
        console.print(f"$ {example.command(federation.broker_address)}", style="dim", soft_wrap=True)
        response = await check(federation.broker_address, example.request(), timeout=5.0)
        render_check(response, console)
        got = {r.agency_id: r.finding.outcome for r in response.results}
        if got != example.expected:
            ok = False
            console.print(f"[bold red]UNEXPECTED:[/] expected {example.expected}, got {got}")
    console.rule("An invalid request is refused before any agency is asked")
    bad = build_request(given_names=["Ann"], family_name="", date_of_birth="2099-01-01", purpose="gossip")
    try:
        await check(federation.broker_address, bad, timeout=5.0)
        ok = False
        console.print("[bold red]UNEXPECTED:[/] the invalid request was accepted")
    except grpc.aio.AioRpcError as error:
        console.print(f"{error.code().name}:")
        for v in field_violations(error):
            console.print(f"  {v.field}: {v.description}")
        ok = ok and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    return ok


async def _until_interrupted(on_ready: Callable[[], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_ready()
    await stop.wait()


async def run_demo(workdir: Path, *, smoke: bool, broker_port: int, console: Console) -> int:
    """Runs the demo; returns the process exit code."""
    console.print("Creating four agency databases with demo people and starting the federation...")
    federation = await start_federation(workdir, broker_listen=f"127.0.0.1:{0 if smoke else broker_port}")
    try:
        _print_listeners(federation, console)
        if smoke:
            ok = await _smoke(federation, console)
            console.print(
                "[bold green]demo smoke test passed[/]" if ok else "[bold red]demo smoke test FAILED[/]"
            )
            return 0 if ok else 1

        def ready() -> None:
            console.print("\nTry a check in another terminal (someone known to three agencies):")
            console.print(EXAMPLES[0].command(federation.broker_address), soft_wrap=True, style="bold")
            console.print("\nPress Ctrl-C to stop.")

        await _until_interrupted(ready)
        console.print("Stopping...")
        return 0
    finally:
        await federation.stop()
        console.print("Federation stopped.")
