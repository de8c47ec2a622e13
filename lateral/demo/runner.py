"""`lateral demo`: start the federation, show where it listens and how to ask it, run until Ctrl-C."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from audit.keys import load_keys
from audit.reader import read_events
from audit.verify import verify_log
from lateral.client import build_request, check
from lateral.demo.agreement import DEMO_CALLER, DEMO_POLICE_CALLER
from lateral.demo.examples import Example, Examples
from lateral.demo.federation import Federation, Prepared, prepare, start_federation
from lateral.demo.proactive import proactive_commands, show_proactive
from lateral.demo.web import DEMO_USERS
from lateral.errors import field_violations
from lateral.identity import Caller
from lateral.render import render_check
from lateral.status_cli import problems
from lateral.status_cli import render as render_status
from pki.tls import TlsSection
from protos.lateral.v1 import broker_pb2, broker_pb2_grpc, common_pb2


def _print_listeners(federation: Federation, console: Console) -> None:
    table = Table(title=f"Lateral demo federation (files in {federation.workdir})")
    table.add_column("Service")
    table.add_column("Listening on")
    table.add_row("broker (LateralCheck)", federation.broker_address)
    if federation.rest_url:
        table.add_row("broker (REST API, OpenAPI at /openapi.json)", federation.rest_url)
    if federation.web_url:
        sign_ins = ", ".join(f"{user} / {password}" for user, (_, _, password) in DEMO_USERS.items())
        table.add_row(f"web page (sign in: {sign_ins})", federation.web_url)
    for agency, (_, port) in federation.adapters.items():
        table.add_row(f"{agency} adapter", f"127.0.0.1:{port}")
    console.print(table)


def _tls_files(federation: Federation, caller: Caller) -> TlsSection | None:
    return None if federation.pki is None else federation.pki.client_tls(caller.organisation)


async def _show(federation: Federation, example: Example, caller: Caller, console: Console) -> bool:
    """Runs one showcase check as caller; True when every named agency answered as expected."""
    console.rule(example.title)
    command = example.command(federation.broker_address, caller, _tls_files(federation, caller))
    console.print(f"$ {command}", style="dim", soft_wrap=True)
    response = await check(
        federation.broker_address,
        example.request(),
        caller=caller,
        timeout=5.0,
        tls=federation.client_tls(caller),
    )
    render_check(response, console)
    got = {r.agency_id: r.finding.outcome for r in response.results if r.agency_id in example.expected}
    if got != example.expected:
        console.print(f"[bold red]UNEXPECTED:[/] expected {example.expected}, got {got}")
    return got == example.expected


async def _household(federation: Federation, examples: Examples, console: Console) -> bool:
    """The same child's home, as a household check: counts per agency, never who lives there."""
    console.rule("Is anything known at this home? A household check: counts, never who")
    address = examples.three_agencies.home
    request = broker_pb2.HouseholdRequest(
        address=address,
        purpose="household-safeguarding",
        justification="Fire risk at the family home",
        case_ref="MASH-0142",
    )
    async with federation.channel(DEMO_CALLER) as channel:
        response = await broker_pb2_grpc.LateralCheckStub(channel).CheckHousehold(request, timeout=5.0)
    render_check(response, console)
    social = next(r for r in response.results if r.agency_id == "socialcare")
    if social.finding.outcome != common_pb2.OUTCOME_KNOWN:
        console.print("[bold red]UNEXPECTED:[/] social care does not know the child's home")
        return False
    return True


async def _smoke(federation: Federation, examples: Examples, console: Console) -> bool:
    ok = True
    for example in examples.all():
        ok = await _show(federation, example, DEMO_CALLER, console) and ok
    # The same child, asked about by a police MASH officer: the agreement (P3) lets the police ask the
    # others, not their own force, and releases no categories or counts.
    three = examples.three_agencies
    as_police = Example(
        "The agreement decides: a police officer may not ask the police, and sees no categories",
        three.args,
        {**three.expected, "police": common_pb2.OUTCOME_DENIED},
    )
    ok = await _show(federation, as_police, DEMO_POLICE_CALLER, console) and ok
    ok = await _household(federation, examples, console) and ok
    ok = await show_proactive(federation, console) and ok
    console.rule("An invalid request is refused before any agency is asked")
    bad = build_request(given_names=["Ann"], family_name="", date_of_birth="2099-01-01", purpose="gossip")
    try:
        await check(
            federation.broker_address,
            bad,
            caller=DEMO_CALLER,
            timeout=5.0,
            tls=federation.client_tls(DEMO_CALLER),
        )
        ok = False
        console.print("[bold red]UNEXPECTED:[/] the invalid request was accepted")
    except grpc.aio.AioRpcError as error:
        console.print(f"{error.code().name}:")
        for v in field_violations(error):
            console.print(f"  {v.field}: {v.description}")
        ok = ok and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    return ok


async def _status(federation: Federation, console: Console) -> bool:
    """The federation on one screen, as `lateral status` shows it; True when nothing needs looking at."""
    console.rule("The federation's health, as operators see it (lateral status)")
    async with federation.channel(DEMO_CALLER) as channel:
        status = await broker_pb2_grpc.LateralCheckStub(channel).Status(broker_pb2.StatusRequest(), timeout=5)
    render_status(status, console, dt.datetime.now(dt.UTC))
    return not problems(status)


def _files(federation: Federation) -> str:
    tls = _tls_files(federation, DEMO_CALLER)
    return f" --ca {tls.ca} --cert {tls.cert} --key {tls.key}" if tls is not None else " --insecure-dev"


def _status_command(federation: Federation) -> str:
    return f"lateral status --broker {federation.broker_address}{_files(federation)}"


async def _until_interrupted(on_ready: Callable[[], None]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_ready()
    await stop.wait()


def _verify_audit(prepared: Prepared, console: Console) -> bool:
    """Verifies every service's audit log, as an auditor would (lateral audit verify)."""
    console.rule("Every check and disclosure is in a tamper-evident log")
    ok = True
    for service, section in prepared.audit.items():
        result = verify_log(section.url, load_keys(section).signer.public_key())
        kinds = Counter(e.kind for e in read_events(section.url))
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        state = "verified" if result.ok else "NOT VERIFIED"
        console.print(
            f"{service}: {state}: {result.size} events ({counts}), {result.checkpoints} signed checkpoints",
            soft_wrap=True,
        )
        ok = ok and result.ok
    console.print(
        f"Auditors: lateral audit list --config {prepared.workdir}/broker.toml --reader you "
        f"--auditor-key {prepared.workdir}/audit/auditor.key",
        soft_wrap=True,
        style="dim",
    )
    return ok


async def run_demo(
    workdir: Path,
    *,
    smoke: bool,
    broker_port: int,
    people: int,
    console: Console,
    sources: dict[str, str] | None = None,
) -> int:
    """Runs the demo; returns the process exit code."""
    with console.status(f"Generating {people:,} synthetic people and their records at four agencies..."):
        prepared = await asyncio.to_thread(prepare, workdir, people=people, sources=sources)
    console.print(
        f"Wrote four agency databases for {people:,} synthetic people (ground truth in {workdir}/truth)."
    )
    federation = await start_federation(prepared, broker_listen=f"127.0.0.1:{0 if smoke else broker_port}")
    try:
        _print_listeners(federation, console)
        healthy = await _status(federation, console)
        if smoke:
            ok = await _smoke(federation, prepared.examples, console) and healthy
            await federation.stop()  # signs the final checkpoints
            ok = _verify_audit(prepared, console) and ok
            console.print(
                "[bold green]demo smoke test passed[/]" if ok else "[bold red]demo smoke test FAILED[/]"
            )
            return 0 if ok else 1

        def ready() -> None:
            console.print("\nTry a check in another terminal (someone known to three agencies):")
            console.print(
                prepared.examples.three_agencies.command(
                    federation.broker_address, DEMO_CALLER, _tls_files(federation, DEMO_CALLER)
                ),
                soft_wrap=True,
                style="bold",
            )
            console.print("\nThe federation's health at any time:")
            console.print(_status_command(federation), soft_wrap=True, style="bold")
            console.print("\nPeople known to several agencies, found before anyone refers them:")
            console.print(proactive_commands(federation, _files(federation)), soft_wrap=True, style="bold")
            console.print("\nPress Ctrl-C to stop.")

        await _until_interrupted(ready)
        console.print("Stopping...")
        return 0
    finally:
        await federation.stop()
        console.print("Federation stopped.")
