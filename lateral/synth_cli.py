"""`lateral synth`: generate a synthetic population with agency databases and ground truth, and query sets."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lateral.config import parse_model, read_toml
from lateral.console import err_console, fail, load

if TYPE_CHECKING:
    from synth import SyntheticData

TRUTH_FOLDER = "truth"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _parse_urls(values: tuple[str, ...]) -> dict[str, str]:
    from synth import AGENCIES

    urls = {}
    for value in values:
        agency, sep, url = value.partition("=")
        if not sep or agency not in AGENCIES:
            fail(f"--url must be AGENCY=URL with AGENCY one of {', '.join(AGENCIES)}", 2)
        urls[agency] = url
    return urls


@click.group()
def synth() -> None:
    """Make synthetic people and agency records (with ground truth) for demos, tests and benchmarks.

    Every name, date, address and NHS number is invented; NHS numbers come from a block never issued.
    """


@synth.command("generate")
@click.option("--people", type=click.IntRange(10, 20_000_000), default=None, help="Population size [20000].")
@click.option("--seed", type=int, default=None, help="Same seed, same data [1].")
@click.option(
    "--out",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the SQLite databases, adapter configurations and (in truth/) the ground truth.",
)
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="AGENCY=URL",
    help="Write an agency's records to this SQLAlchemy URL instead of a SQLite file (repeatable).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML file of generator settings (overlaps, error rates); see docs/synthetic-data.md.",
)
@click.option(
    "--reference-date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The 'today' activity dates count back from [today].",
)
def generate_command(
    people: int | None,
    seed: int | None,
    folder: Path,
    urls: tuple[str, ...],
    config_path: Path | None,
    reference_date: dt.datetime | None,
) -> None:
    """Generate a population, write each agency's records into its own schema, and the truth beside them.

    \b
    Example:
      lateral synth generate --people 100000 --seed 7 --out synthetic/
      lateral synth generate --out synthetic/ --url police=postgresql+psycopg://localhost/police
    """
    from synth import SynthConfig, generate, sqlite_urls, write_adapter_configs, write_databases, write_truth

    config = (
        load(lambda p: parse_model(SynthConfig, read_toml(p), p), config_path)
        if config_path
        else SynthConfig()
    )
    config = config.model_copy(
        update={k: v for k, v in (("people", people), ("seed", seed)) if v is not None}
    )
    targets = {**sqlite_urls(folder), **_parse_urls(urls)}
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with err_console.status(f"Generating {config.people:,} people and their agency records..."):
        data = generate(config, reference_date.date() if reference_date else None)
    generated = time.perf_counter() - started
    with _progress() as progress:
        tasks = {
            agency: progress.add_task(f"Writing {agency}", total=len(data.records[agency].people))
            for agency in targets
        }
        write_databases(data, targets, lambda agency, n: progress.advance(tasks[agency], n))
    with err_console.status("Writing the ground truth..."):
        write_truth(data, folder / TRUTH_FOLDER)
        write_adapter_configs(folder, targets)
    _summary(data, folder, generated, time.perf_counter() - started)


def _summary(data: SyntheticData, folder: Path, generated: float, total: float) -> None:
    from synth.measure import overlaps

    table = Table(title=f"Synthetic data in {folder}")
    table.add_column("Agency")
    table.add_column("Records", justify="right")
    table.add_column("Activity", justify="right")
    for agency, records in data.records.items():
        table.add_row(agency, f"{len(records.people):,}", f"{sum(len(p.events) for p in records.people):,}")
    console = Console()
    console.print(table)
    measured = overlaps(data)
    console.print(
        f"{len(data.population):,} people in {len(data.population.households):,} households; "
        f"generated in {generated:.1f} s, written in {total:.1f} s.\n"
        f"Children's social care also known to police: {measured['police_given_csc_child']:.0%}; "
        f"adult social care: {measured['police_given_asc_adult']:.0%}; "
        f"known to four agencies: {measured['known_to_four']:,} people.\n"
        f"Adapter configurations: {folder}/<agency>.toml. Ground truth (never give it to an adapter): "
        f"{folder / TRUTH_FOLDER}/"
    )


@synth.command("queries")
@click.option(
    "--from",
    "folder",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="A folder made by `lateral synth generate`.",
)
@click.option("--agency", type=click.Choice(["police", "fire", "nhs", "socialcare"]), required=True)
@click.option("--count", type=click.IntRange(10, 10_000_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the query sample.")
@click.option(
    "--out",
    "queries_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Queries CSV [FOLDER/queries-AGENCY.csv].",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Truth CSV [FOLDER/truth/queries-AGENCY.csv].",
)
def queries_command(
    folder: Path, agency: str, count: int, seed: int, queries_path: Path | None, truth_path: Path | None
) -> None:
    """Write a query set for one agency (the `lateral adapter match` input) and its truth.

    About half are people the agency knows, 40% people it does not, and 10% hard negatives (twins, siblings,
    a parent and son with the same names, the same name and date of birth in the other town). Each query is
    tagged with the recording errors on the agency's records of that person.
    """
    from synth import SynthConfig, generate, make_queries, write_queries

    manifest_path = folder / TRUTH_FOLDER / "manifest.json"
    if not manifest_path.exists():
        fail(
            f"{folder} has no {TRUTH_FOLDER}/manifest.json: "
            f"make it with `lateral synth generate --out {folder}`",
            2,
        )
    manifest = json.loads(manifest_path.read_text())
    config = SynthConfig.model_validate(manifest["config"])
    with err_console.status(f"Regenerating the population of {config.people:,} (same seed, same people)..."):
        data = generate(config, dt.date.fromisoformat(manifest["reference_date"]))
    queries = make_queries(data, agency, count, seed)
    queries_path = queries_path or folder / f"queries-{agency}.csv"
    truth_path = truth_path or folder / TRUTH_FOLDER / f"queries-{agency}.csv"
    write_queries(queries, queries_path, truth_path)
    if len(queries) < count:
        err_console.print(
            f"[yellow]warning:[/] {agency} knows too few of these {config.people:,} people for "
            f"{count:,} queries; wrote {len(queries):,} (generate a larger population for more)."
        )
    kinds = Counter("KNOWN" if q.expected == "KNOWN" else q.tag.split(":")[0] for q in queries)
    err_console.print(
        f"{len(queries):,} queries ({kinds['KNOWN']:,} known, {kinds['unknown']:,} unknown, "
        f"{kinds['hard_negative']:,} hard negatives) -> {queries_path}; truth -> {truth_path}"
    )
