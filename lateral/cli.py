"""The `lateral` command: run the broker and adapters, make checks, dry-run matching, run the demo."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from lateral import __version__
from lateral.audit_cli import audit
from lateral.bulk_cli import bulk_check
from lateral.caller_options import INSECURE_HELP, caller_options, resolve_caller
from lateral.config import ConfigError
from lateral.console import err_console, fail, fail_rpc, load, server_logging
from lateral.dsa_cli import dsa
from lateral.lifecycle import serve
from lateral.linkage_cli import linkage
from lateral.pki_cli import pki
from lateral.review_cli import review
from lateral.rpc import InsecureNotAllowedError
from lateral.status_cli import status
from lateral.synth_cli import synth
from lateral.web_cli import web

if TYPE_CHECKING:
    from broker.config import BrokerConfig

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except (ConfigError, InsecureNotAllowedError) as error:
        fail(str(error), 2)
    except OSError as error:
        fail(str(error), 1)


def _serve_options(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option("--insecure-dev", is_flag=True, help=INSECURE_HELP)(command)
        command = click.option("--listen", help="host:port to listen on (overrides the file).")(command)
        return click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path),
            required=True,
            help=f"{what} TOML file.",
        )(command)

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lateral")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="How much to log (never personal data). Default: info for servers, warning otherwise.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="LATERAL_LOG_FORMAT",
    show_envvar=True,
    help="Log lines for people (text) or for log collectors (json: one object per line).",
)
@click.pass_context
def main(ctx: click.Context, log_level: str | None, log_format: str) -> None:
    """Lateral: ask every partner agency at once whether they know a person, and whom to call.

    \b
    Start here:  lateral demo        (a whole federation with fictional people)
    Then:        lateral check --help
    """
    from lateral.logs import configure, install_excepthooks

    ctx.obj = log_level
    configure(log_level or "warning", log_format)
    install_excepthooks()


main.add_command(synth)
main.add_command(dsa)
main.add_command(pki)
main.add_command(audit)
main.add_command(bulk_check)
main.add_command(web)
main.add_command(status)
main.add_command(linkage)
main.add_command(review)


# --- broker ---------------------------------------------------------------------------------------------


@main.group()
def broker() -> None:
    """Run the hub that fans checks out to the agencies."""


@broker.command("serve")
@_serve_options("Broker")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Broker processes sharing the listening ports (Linux, SO_REUSEPORT), started and watched by this "
    "one; 1 serves in this process.",
)
def broker_serve(config_path: Path, listen: str | None, insecure_dev: bool, workers: int) -> None:
    """Serve LateralCheck until interrupted."""
    import os

    from broker import create_server, load_broker_config
    from lateral.logs import set_worker
    from lateral.workers import reuse_port_from_environment, worker_from_environment

    server_logging()
    config = load(load_broker_config, config_path)
    address = listen or config.broker.listen
    if workers > 1:
        _supervise(config, config_path, address, workers, insecure_dev)
    worker = worker_from_environment(os.environ)
    reuse_port = reuse_port_from_environment(os.environ)
    set_worker(worker)
    _run(
        serve(
            lambda: create_server(config, address, insecure_dev=insecure_dev, reuse_port=reuse_port),
            lambda: load_broker_config(config_path),
            "broker" if worker is None else f"broker worker {worker}",
            address,
            # Only the supervisor says "listening on", once every worker serves.
            serving="listening on" if worker is None else "serving on",
        )
    )


def _supervise(
    config: BrokerConfig, config_path: Path, address: str, workers: int, insecure_dev: bool
) -> None:
    """Runs `workers` brokers on `address` (lateral/workers.py) and exits with the supervisor's status."""
    from lateral.workers import Plan, supervise

    options = click.get_current_context().find_root().params
    try:
        plan = Plan.of(
            config,
            config_path,
            address,
            workers=workers,
            insecure_dev=insecure_dev,
            log_level=options.get("log_level"),
            log_format=options.get("log_format") or "text",
        )
        status = supervise(plan)
    except ConfigError as error:
        fail(str(error), 2)
    except OSError as error:
        fail(str(error), 1)
    sys.exit(status)


# --- adapters -------------------------------------------------------------------------------------------


@main.group()
def adapter() -> None:
    """Run or try out an agency's adapter against the agency's own database."""


@adapter.command("serve")
@_serve_options("Adapter")
def adapter_serve(config_path: Path, listen: str | None, insecure_dev: bool) -> None:
    """Build the local index and serve AgencyAdapter until interrupted."""
    from adapters.core import create_server, load_adapter_config

    server_logging()
    config = load(load_adapter_config, config_path)
    address = listen or config.server.listen
    what = f"{config.agency.id} adapter"
    _run(
        serve(
            lambda: create_server(config, address, insecure_dev=insecure_dev),
            lambda: load_adapter_config(config_path),
            what,
            address,
        )
    )


@adapter.command("match")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="Adapter TOML file."
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="CSV: query_id, given_name, family_name, date_of_birth, gender, address, postcode, nhs_number.",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="CSV to write: query_id, outcome, record_key, score.",
)
@click.option("--explain", is_flag=True, help="Add a column saying why each query matched or not.")
def adapter_match(config_path: Path, input_path: Path, output_path: Path, explain: bool) -> None:
    """Dry-run matching locally: no broker, nothing leaves the agency.

    Record keys and scores appear in the output because it stays with the agency admin.
    """
    from adapters.core import build_index, load_adapter_config
    from adapters.core.dryrun import count_rows, dry_run

    config = load(load_adapter_config, config_path)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,}"),
            console=err_console,
            transient=True,
        ) as building:
            stages = {
                "people": building.add_task("Indexing people", total=None),
                "activity": building.add_task("Indexing activity", total=None),
            }
            index = build_index(config, lambda stage, n: building.advance(stages[stage], n))
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("Matching", total=count_rows(input_path))
            outcomes = dry_run(
                config,
                input_path,
                output_path,
                explain=explain,
                index=index,
                advance=lambda: progress.advance(task),
            )
    except ConfigError as error:
        fail(str(error), 2)
    summary = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
    err_console.print(f"{sum(outcomes.values())} queries matched ({summary or 'none'}); wrote {output_path}")


@adapter.command("init")
@click.option(
    "--agency",
    required=True,
    help="police, fire, nhs, socialcare (their preset schemas) or any other id, e.g. generic or education.",
)
@click.option("--url", required=True, help="The agency database's SQLAlchemy URL (read only).")
@click.option("--name", default="", help="The agency's name as MASH staff see it.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File to write (default: stdout).",
)
def adapter_init(agency: str, url: str, name: str, output: Path | None) -> None:
    """Write a starter configuration inferred from the database's tables, with TODOs for what it could not.

    \b
      lateral adapter init --agency generic --url sqlite:///schools.db --output schools.toml
      lateral adapter match --config schools.toml --input queries.csv --output results.csv
    """
    import re

    from adapters.core.starter import starter_config

    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", agency):
        fail(f"--agency {agency!r}: use lower-case letters, digits and hyphens", 2)
    try:
        text = starter_config(url, agency, name)
    except ConfigError as error:
        fail(str(error), 2)
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists():
        fail(f"{output}: already exists; refusing to overwrite an admin's configuration", 2)
    output.write_text(text)
    todos = text.count("TODO")
    err_console.print(
        f"Wrote {output} ({todos} TODO(s) to check); then: lateral adapter doctor --config {output}"
    )


@adapter.command("doctor")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="Adapter TOML file."
)
def adapter_doctor(config_path: Path) -> None:
    """Check an adapter before it goes live: database, privileges, mappings, agreement, certificates, audit.

    Exit status 1 when anything must be fixed; warnings alone exit 0.
    """
    from adapters.core import load_adapter_config
    from adapters.core.doctor import diagnose

    config = load(load_adapter_config, config_path)
    with err_console.status("Checking..."):
        findings = diagnose(config)
    marks = {"ok": "[green]ok[/]     ", "warning": "[yellow]warning[/]", "problem": "[bold red]PROBLEM[/]"}
    for f in findings:
        err_console.print(f"{marks[f.level]} {f.topic}: {escape(f.message)}", highlight=False)
    problems = sum(f.level == "problem" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    err_console.print(f"{config.agency.id}: {problems} problem(s), {warnings} warning(s)")
    sys.exit(1 if problems else 0)


@adapter.group("index")
def adapter_index() -> None:
    """Build the match index from the agency database, or ask a running adapter about its index."""


@adapter_index.command("build")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="Adapter TOML file."
)
def adapter_index_build(config_path: Path) -> None:
    """Build the index as the adapter would (nothing is written), with progress, and report it."""
    import time

    from adapters.core import build_index, load_adapter_config

    config = load(load_adapter_config, config_path)
    started = time.perf_counter()
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,}"),
            console=err_console,
        ) as building:
            stages = {
                "people": building.add_task("People", total=None),
                "activity": building.add_task("Activity", total=None),
            }
            index = build_index(config, lambda stage, n: building.advance(stages[stage], n))
    except ConfigError as error:
        fail(str(error), 2)
    seconds = time.perf_counter() - started
    rate = index.record_count / max(seconds, 1e-9)
    click.echo(
        f"{config.agency.id}: {index.record_count:,} records ({index.person_count:,} people), "
        f"{index.activity_count:,} activities in {seconds:.1f} s ({rate:,.0f} records/s); "
        f"watermark {index.watermark or '(none)'}"
    )
    for reason, count in index.skipped.items():
        click.echo(f"  skipped {count:,} row(s): {reason}")


@adapter_index.command("status")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="Adapter TOML file."
)
@click.option("--address", default="", help="The running adapter's host:port (default: the file's listen).")
@click.option("--insecure-dev", is_flag=True, help=INSECURE_HELP)
def adapter_index_status(config_path: Path, address: str, insecure_dev: bool) -> None:
    """Ask a running adapter how fresh its index is and whether its database can be read."""
    from adapters.core import load_adapter_config
    from lateral.rpc import insecure_channel, secure_channel
    from pki.tls import Tls
    from protos.lateral.v1 import adapter_pb2, adapter_pb2_grpc

    config = load(load_adapter_config, config_path)
    target = address or config.server.listen
    if not insecure_dev and config.tls is None:
        fail("the configuration has no [tls]; pass --insecure-dev for a plaintext development adapter", 2)

    async def describe() -> adapter_pb2.DescribeResponse:
        channel = (
            insecure_channel(target)
            if insecure_dev
            else secure_channel(target, load(lambda _: Tls(config.tls), config_path).channel_credentials())  # type: ignore[arg-type]
        )
        async with channel:
            return await adapter_pb2_grpc.AgencyAdapterStub(channel).Describe(
                adapter_pb2.DescribeRequest(), timeout=5
            )

    try:
        info = asyncio.run(describe())
    except grpc.aio.AioRpcError as error:
        fail(f"cannot ask the adapter at {target}: {error.code().name}", 3)
    click.echo(
        f"{info.agency_id}: {info.record_count:,} records, {info.activity_count:,} activities; built "
        f"{info.index_built_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC, refreshed "
        f"{info.index_refreshed_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC; source {info.source_status}"
        + (f": {info.source_detail}" if info.source_detail else "")
    )


@adapter.command("estimate")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="Adapter TOML file."
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Weights TOML to write; name it in the configuration's [matching] weights_file.",
)
@click.option(
    "--pairs",
    type=click.IntRange(1000, 10_000_000),
    default=200_000,
    show_default=True,
    help="Random record pairs for the non-match probabilities.",
)
def adapter_estimate(config_path: Path, output_path: Path, pairs: int) -> None:
    """Estimate the matching weights from the agency's own records (no labelled data needed).

    Writes m and u for every comparison level. Use them by adding to the configuration:

    \b
      [matching]
      weights_file = "weights.toml"
    """
    from adapters.core import build_index, load_adapter_config
    from adapters.core.estimate import estimate, write_weights

    config = load(load_adapter_config, config_path)
    with err_console.status("Reading the agency database and building the index...") as status:
        index = build_index(config)
        result = estimate(
            index, random_pairs=pairs, progress=lambda stage: status.update(f"Estimating: {stage}...")
        )
    write_weights(result, output_path)
    learned = "m and u" if result.m_estimated else "u (too few duplicate records to learn m; defaults kept)"
    err_console.print(
        f"Estimated {learned} from {result.random_pairs:,} random and {result.blocked_pairs:,} blocked pairs "
        f"(about {result.matches:,.0f} duplicate pairs); wrote {output_path}"
    )


# --- checks ---------------------------------------------------------------------------------------------


@main.command("check")
@click.option(
    "--given-name", "given_names", multiple=True, required=True, help="Given name; repeat for several."
)
@click.option("--family-name", required=True, help="Family name (surname).")
@click.option("--dob", default="", help="Date of birth, YYYY-MM-DD.")
@click.option("--gender", type=click.Choice(["female", "male", "other", "not-known"]), default=None)
@click.option("--postcode", default="", help="Full UK postcode, e.g. 'NT1 4QT'.")
@click.option("--address", default="", help="First line of the address.")
@click.option("--nhs-number", default="", help="NHS number (10 digits).")
@click.option(
    "--purpose", required=True, help="Purpose from the data-sharing agreement, e.g. child-safeguarding."
)
@click.option("--justification", default="", help="Why this check is needed (required by most purposes).")
@click.option("--case-ref", default="", help="Your case or referral reference.")
@click.option(
    "--timeout", type=click.FloatRange(0.1, 60), default=5.0, show_default=True, help="Seconds to wait."
)
@caller_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON instead of a table.")
def check_command(
    given_names: tuple[str, ...],
    family_name: str,
    dob: str,
    gender: str | None,
    postcode: str,
    address: str,
    nhs_number: str,
    purpose: str,
    justification: str,
    case_ref: str,
    broker_address: str,
    timeout: float,
    organisation: str,
    ca: str,
    cert: str,
    key: str,
    role: str,
    user: str,
    as_json: bool,
    insecure_dev: bool,
) -> None:
    """Ask every partner agency whether they know a person.

    \b
    Example:
      lateral check --given-name Jayden --family-name Clarke --dob 2012-03-14 \\
        --purpose child-safeguarding --justification "School referral" --case-ref MASH-0142 \\
        --role mash-social-worker --user j.smith --ca ca.crt --cert case-system.crt --key case-system.key

    Your organisation and system are those of the case system's certificate (mutual TLS); your user and
    role go with each check in an assertion signed with its key. The agreement decides which agencies you
    may ask for the purpose, and what they may tell you; the rest come back Denied, with the clause that
    refused them. With --insecure-dev (a developer's machine only), give --organisation instead.

    Each agency answers Known (with its latest activity and whom to call), Not known, Possible match (add the
    details it names), Withheld (call the agency), or Unavailable / No answer in time.
    """
    from lateral.client import build_request, check
    from lateral.render import render_check

    caller, tls = resolve_caller(
        organisation=organisation,
        ca=ca,
        cert=cert,
        key=key,
        role=role,
        user=user,
        insecure_dev=insecure_dev,
        system="lateral-cli",
    )
    request = build_request(
        given_names=list(given_names),
        family_name=family_name,
        date_of_birth=dob,
        gender=gender or "",
        postcode=postcode,
        address=address,
        nhs_number=nhs_number,
        purpose=purpose,
        justification=justification,
        case_ref=case_ref,
    )
    try:
        response = asyncio.run(check(broker_address, request, caller=caller, timeout=timeout, tls=tls))
    except ConfigError as error:
        fail(str(error), 2)
    except grpc.aio.AioRpcError as error:
        fail_rpc(error, "check", broker_address)
    if as_json:
        click.echo(
            json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), indent=2)
        )
    else:
        render_check(response, Console())


# --- demo -----------------------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("lateral-demo"),
    show_default=True,
    help="Folder for the demo's databases and configuration files.",
)
@click.option(
    "--broker-port",
    type=click.IntRange(0, 65535),
    default=50051,
    show_default=True,
    help="Port for the broker (0 picks a free one).",
)
@click.option(
    "--people",
    type=click.IntRange(1000, 2_000_000),
    default=20_000,
    show_default=True,
    help="How many synthetic people live in the demo's town.",
)
@click.option(
    "--smoke", is_flag=True, help="Run a few checks, print them and exit (0 when all is as expected)."
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="AGENCY=URL: keep that agency's records in an empty database of your own, e.g. "
    "police=postgresql+psycopg://postgres@127.0.0.1/demo_police (default: SQLite files in --workdir).",
)
def demo(workdir: Path, broker_port: int, people: int, smoke: bool, sources: tuple[str, ...]) -> None:
    """Start a whole federation on this machine with fictional people, and show a check.

    Generates a synthetic town (lateral synth), writes each agency's records into its own SQLite database in
    --workdir, starts the police, fire, NHS and social care adapters and the broker on 127.0.0.1 (plaintext,
    development only), and runs until Ctrl-C.
    """
    from lateral.demo import run_demo

    urls = {}
    for item in sources:
        agency, _, url = item.partition("=")
        if agency not in ("police", "fire", "nhs", "socialcare") or not url:
            fail(f"--source {item!r}: give AGENCY=URL with AGENCY one of police, fire, nhs, socialcare", 2)
        urls[agency] = url
    sys.exit(
        _run(
            run_demo(
                workdir, smoke=smoke, broker_port=broker_port, people=people, console=Console(), sources=urls
            )
        )
    )
