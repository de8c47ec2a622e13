"""The generator's outputs: agency databases (SQLite, PostgreSQL, MariaDB) in each agency's own schema,
truth kept apart, and the CLI from generation through queries to an admin's dry run."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.core import build_index, load_adapter_config
from adapters.presets import PRESETS
from synth import AGENCIES, SynthConfig, generate, write_adapter_configs, write_databases
from tests.databases import fresh_database
from tests.integration.conftest import LATERAL

TRUTH_WORDS = ("household", "origin", "truth", "twin", "namesake", "birth_family", "synthetic")
# Each agency's table of people, and its own id column (which the truth maps to a person).
RECORD_TABLES = {
    "police": ("nominal", "nominal_id"),
    "fire": ("occupant", "occupant_id"),
    "nhs": ("patient", "patient_id"),
    "socialcare": ("person", "person_id"),
}


def lateral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LATERAL, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    result = lateral("synth", "generate", "--people", "3000", "--seed", "9", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


def test_generate_writes_databases_configs_and_truth_apart(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == [
        "fire.db",
        "fire.toml",
        "nhs.db",
        "nhs.toml",
        "police.db",
        "police.toml",
        "socialcare.db",
        "socialcare.toml",
        "truth",
    ]
    manifest = json.loads((generated / "truth" / "manifest.json").read_text())
    assert (manifest["people"], manifest["config"]["seed"]) == (3000, 9)
    with (generated / "truth" / "truth.csv").open() as handle:
        truth = list(csv.DictReader(handle))
    assert len(truth) == sum(manifest["records"].values())
    with (generated / "truth" / "people.csv").open() as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == 3000


def test_agency_databases_hold_no_ground_truth(generated: Path) -> None:
    with (generated / "truth" / "truth.csv").open() as handle:
        truth = {(row["agency"], row["record_id"]): row["person_id"] for row in csv.DictReader(handle)}
    for agency in AGENCIES:
        engine = sa.create_engine(f"sqlite:///{generated / f'{agency}.db'}")
        inspector = sa.inspect(engine)
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                assert not any(word in column["name"] for word in TRUTH_WORDS), (
                    agency,
                    table,
                    column["name"],
                )
        # No column carries the true person id, whatever its name.
        table, key = RECORD_TABLES[agency]
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
        assert rows
        for name in rows[0]:
            same = sum(str(row[name]) == truth[(agency, str(row[key]))] for row in rows)
            assert same <= 0.01 * len(rows) + 3, (agency, name)
        engine.dispose()


def test_the_written_databases_are_what_adapters_read(generated: Path) -> None:
    manifest = json.loads((generated / "truth" / "manifest.json").read_text())
    for agency in AGENCIES:
        index = build_index(load_adapter_config(generated / f"{agency}.toml"))
        assert index.person_count == manifest["records"][agency], agency


def test_queries_then_an_admins_dry_run(generated: Path) -> None:
    result = lateral("synth", "queries", "--from", str(generated), "--agency", "socialcare", "--count", "100")
    assert result.returncode == 0, result.stderr
    summary = re.search(r"100 queries \((\d+) known, (\d+) unknown, (\d+) hard negatives\)", result.stderr)
    assert summary is not None, result.stderr
    known, unknown, hard = map(int, summary.groups())
    assert (known, unknown + hard) == (50, 50)
    assert hard >= 1
    too_many = lateral(
        "synth", "queries", "--from", str(generated), "--agency", "socialcare", "--count", "1000"
    )
    assert "socialcare knows too few of these 3,000 people for 1,000 queries" in too_many.stderr
    queries, truth = generated / "queries-socialcare.csv", generated / "truth" / "queries-socialcare.csv"
    output = generated / "results.csv"
    result = lateral(
        "adapter",
        "match",
        "--config",
        str(generated / "socialcare.toml"),
        "--input",
        str(queries),
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    with truth.open() as t, output.open() as o:
        expected = {row["query_id"]: row for row in csv.DictReader(t)}
        answers = {row["query_id"]: row for row in csv.DictReader(o)}
    assert set(answers) == set(expected)
    # The walking skeleton's exact matcher finds the clean records it should.
    clean = [q for q, row in expected.items() if row["tag"] == "clean"]
    assert clean
    for query_id in clean:
        assert answers[query_id]["outcome"] == "KNOWN", query_id
        assert answers[query_id]["record_key"] == expected[query_id]["record_ids"]
    # Outside the hard negatives (which the matching engine must learn to refuse) it never finds the wrong
    # person. The hard negatives are there to make such mistakes visible.
    for query_id, row in expected.items():
        if answers[query_id]["outcome"] == "KNOWN" and not row["tag"].startswith("hard_negative"):
            assert set(answers[query_id]["record_key"].split(";")) <= set(row["record_ids"].split(";")), (
                query_id
            )


def test_queries_need_a_generated_folder(tmp_path: Path) -> None:
    result = lateral("synth", "queries", "--from", str(tmp_path), "--agency", "police")
    assert result.returncode == 2
    assert f"{tmp_path} has no truth/manifest.json" in result.stderr


def test_bad_generator_settings_name_the_file_and_key(tmp_path: Path) -> None:
    settings = tmp_path / "synth.toml"
    settings.write_text("[coverage]\npolice_given_csc_child = 1.5\n")
    result = lateral("synth", "generate", "--out", str(tmp_path / "out"), "--config", str(settings))
    assert result.returncode == 2
    assert (
        f"{settings}: coverage.police_given_csc_child: Input should be less than or equal to 1"
        in result.stderr
    )


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_database(request.param)


def test_writes_to_database_servers(server_url: str, tmp_path: Path) -> None:
    data = generate(SynthConfig(people=2000, seed=4), dt.date(2026, 11, 21))
    urls = dict.fromkeys(AGENCIES, server_url)
    write_databases(data, urls)
    configs = write_adapter_configs(tmp_path, urls)
    engine = sa.create_engine(server_url)
    with engine.connect() as conn:
        police = conn.execute(sa.text("SELECT COUNT(*) FROM nominal")).scalar_one()
        patients = conn.execute(sa.text("SELECT COUNT(*) FROM patient")).scalar_one()
    engine.dispose()
    assert (police, patients) == (len(data.records["police"].people), len(data.records["nhs"].people))
    for agency in AGENCIES:
        index = build_index(load_adapter_config(configs[agency]))
        assert index.person_count == len(data.records[agency].people), agency
        events = sum(len(r.events) for r in data.records[agency].people)
        if agency != "fire":  # fire's activity belongs to properties and is shared by occupants
            assert index.activity_count == events, agency
    assert set(PRESETS) == set(AGENCIES)
