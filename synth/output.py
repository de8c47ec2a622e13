"""Writing synthetic data: agency databases through each agency's own schema, and, apart from them, the
people and the ground truth."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.presets import PRESETS
from synth.config import SynthConfig
from synth.coverage import Coverage, decide_coverage
from synth.population import Population, generate_population
from synth.records import AgencyRecords, build_records

PEOPLE_COLUMNS = (
    "person_id",
    "household_id",
    "origin",
    "given_names",
    "family_name",
    "birth_family_name",
    "date_of_birth",
    "gender",
    "address_line",
    "town",
    "postcode",
    "uprn",
    "nhs_number",
    "twin_of",
    "namesake_of",
    "agencies",
)
TRUTH_COLUMNS = ("agency", "record_id", "person_id", "errors")


@dataclass
class SyntheticData:
    population: Population
    coverage: Coverage
    records: dict[str, AgencyRecords]


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Generation allocates millions of long-lived objects and no garbage cycles; the cyclic collector would
    rescan them over and over (a third of the run time at 300k people)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate(config: SynthConfig, reference_date: dt.date | None = None) -> SyntheticData:
    """People, who knows them, and every agency's records of them. Deterministic for config and date."""
    with _no_cyclic_gc():
        population = generate_population(config, reference_date)
        coverage = decide_coverage(population)
        return SyntheticData(population, coverage, build_records(population, coverage))


def write_truth(data: SyntheticData, folder: Path) -> None:
    """Writes people.csv, truth.csv (agency record -> person) and manifest.json into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "people.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(PEOPLE_COLUMNS)
        for p in data.population.people():
            out.writerow(
                (
                    p.person_id,
                    p.household_id,
                    p.origin,
                    " ".join(p.given_names),
                    p.family_name,
                    p.birth_family_name,
                    p.date_of_birth.isoformat(),
                    p.gender,
                    p.address.line,
                    p.address.town,
                    p.address.postcode,
                    p.address.uprn,
                    p.nhs_number,
                    p.twin_of or "",
                    p.namesake_of or "",
                    ";".join(sorted(data.coverage.agencies_of(p.person_id))),
                )
            )
    with (folder / "truth.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(TRUTH_COLUMNS)
        for records in data.records.values():
            for row in records.truth:
                out.writerow((row.agency, row.record_id, row.person_id, ";".join(row.errors)))
    manifest = {
        "generator": "lateral synth",
        "reference_date": data.population.reference_date.isoformat(),
        "config": data.population.config.model_dump(mode="json"),
        "people": len(data.population),
        "households": len(data.population.households),
        "records": {agency: len(r.people) for agency, r in data.records.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def write_databases(
    data: SyntheticData, urls: dict[str, str], progress: Callable[[str, int], None] = lambda agency, n: None
) -> None:
    """Writes each agency's records into its own schema at its URL (the schema is created afresh)."""
    for agency, url in urls.items():
        PRESETS[agency].create_database(url, data.records[agency].people, functools.partial(progress, agency))


def write_adapter_configs(folder: Path, urls: dict[str, str], listen: str = "127.0.0.1:0") -> dict[str, Path]:
    """Writes an adapter configuration for each agency database; returns their paths by agency."""
    paths = {}
    for agency, url in urls.items():
        paths[agency] = folder / f"{agency}.toml"
        PRESETS[agency].write_config(paths[agency], url=url, listen=listen)
    return paths


def sqlite_urls(folder: Path) -> dict[str, str]:
    """One SQLite file per agency in folder."""
    return {agency: f"sqlite:///{(folder / f'{agency}.db').resolve()}" for agency in PRESETS}
