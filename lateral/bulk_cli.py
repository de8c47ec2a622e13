"""`lateral bulk-check`: a caseload through the federation, resumable, with a summary."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lateral.caller_options import caller_options, resolve_caller
from lateral.config import ConfigError
from lateral.console import err_console, fail


@click.command("bulk-check")
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="CSV: an id column, a case reference column, given_name, family_name, date_of_birth, gender, "
    "address, postcode, nhs_number (any subject column may be empty).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="CSV of results, appended as they come: run again with the same file to resume.",
)
@click.option("--purpose", required=True, help="Purpose from the data-sharing agreement.")
@click.option("--justification", required=True, help="Why these checks are needed (recorded with each).")
@click.option("--case-ref-column", required=True, help="The input column holding each row's case reference.")
@click.option("--id-column", default="query_id", show_default=True, help="The input column identifying rows.")
@caller_options
def bulk_check(
    input_path: Path,
    output_path: Path,
    purpose: str,
    justification: str,
    case_ref_column: str,
    id_column: str,
    broker_address: str,
    organisation: str,
    ca: str,
    cert: str,
    key: str,
    role: str,
    user: str,
    insecure_dev: bool,
) -> None:
    """Check every row of a caseload against every agency the agreement lets you ask.

    Each row is a check of its own, audited as such; the broker runs several at once. Interrupted (Ctrl-C, a
    lost connection), run the same command again: rows already answered are not checked again.

    \b
      lateral bulk-check --input open-cin-cases.csv --output cin-checks.csv --purpose child-safeguarding \\
        --justification "Quarterly review of open child-in-need cases" --case-ref-column case_id \\
        --role mash-manager --user j.smith --ca ca.crt --cert case-system.crt --key case-system.key
    """
    from lateral.bulk import count_rows, run_bulk

    caller, tls = resolve_caller(
        organisation=organisation,
        ca=ca,
        cert=cert,
        key=key,
        role=role,
        user=user,
        insecure_dev=insecure_dev,
        system="lateral-bulk",
    )
    with Progress(
        TextColumn("Checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("checks", total=count_rows(input_path), rate="")

        def advance() -> None:
            progress.advance(task)
            elapsed = progress.tasks[task].elapsed or 0
            if elapsed:
                progress.update(task, rate=f"{progress.tasks[task].completed / elapsed:,.1f}/s")

        try:
            summary = asyncio.run(
                run_bulk(
                    broker_address,
                    caller,
                    tls,
                    input_path=input_path,
                    output_path=output_path,
                    purpose=purpose,
                    justification=justification,
                    case_ref_column=case_ref_column,
                    id_column=id_column,
                    advance=advance,
                )
            )
        except ConfigError as error:
            fail(str(error), 2)
        except grpc.aio.AioRpcError as error:
            fail(f"the broker answered {error.code().name}: {error.details()} (run again to resume)", 3)
        except KeyboardInterrupt:
            fail(f"interrupted: {output_path} holds every answer so far; run again to resume", 130)
    known = ", ".join(f"{agency} {n}" for agency, n in sorted(summary.known.items())) or "none"
    click.echo(
        f"{summary.answered} answered ({summary.answered_now} in this run), {summary.failed} not answered; "
        f"known to: {known}; to two or more agencies: {summary.known_to_two_or_more}; "
        f"review required: {summary.review_required}. Results in {output_path}"
    )
    sys.exit(1 if summary.failed else 0)
