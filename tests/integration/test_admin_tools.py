"""An agency admin's tools against real databases: `adapter init` infers a configuration that runs at once,
`adapter doctor` reports what must be fixed, `adapter index build` builds with progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from adapters.core import build_index, load_adapter_config
from adapters.core.doctor import diagnose
from lateral.cli import main
from lateral.demo import Prepared
from tests.databases import fresh_database

metadata = sa.MetaData()
client = sa.Table(
    "client",
    metadata,
    sa.Column("client_id", sa.Integer, primary_key=True),
    sa.Column("First_Name", sa.String(60)),
    sa.Column("Last_Name", sa.String(60)),
    sa.Column("DOB", sa.Date),
    sa.Column("Sex", sa.String(1)),
    sa.Column("Post_Code", sa.String(8)),
)
contact = sa.Table(
    "contact",
    metadata,
    sa.Column("contact_id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("client.client_id")),
    sa.Column("contact_date", sa.Date),
    sa.Column("contact_type", sa.String(8)),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def ordinary_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A housing department's ordinary person and contact tables."""
    urls = (
        [f"sqlite:///{tmp_path / 'housing.db'}"]
        if request.param == "sqlite"
        else fresh_database("postgresql")
    )
    for url in urls:
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                client.insert(),
                [
                    {
                        "client_id": 1,
                        "First_Name": "Ann",
                        "Last_Name": "Lee",
                        "DOB": dt.date(1980, 1, 2),
                        "Sex": "F",
                        "Post_Code": "NT1 1AA",
                    },
                    {
                        "client_id": 2,
                        "First_Name": "Ben",
                        "Last_Name": "Ray",
                        "DOB": dt.date(1975, 5, 6),
                        "Sex": "M",
                        "Post_Code": "NT2 2BB",
                    },
                ],
            )
            conn.execute(
                contact.insert(),
                [
                    {
                        "contact_id": 1,
                        "client_id": 1,
                        "contact_date": dt.date(2026, 1, 3),
                        "contact_type": "ASB",
                    },
                    {
                        "contact_id": 2,
                        "client_id": 1,
                        "contact_date": dt.date(2026, 2, 4),
                        "contact_type": "ARREARS",
                    },
                ],
            )
        engine.dispose()
        yield url


def test_init_infers_a_configuration_that_runs_at_once(ordinary_database: str, tmp_path: Path) -> None:
    out = tmp_path / "housing.toml"
    result = CliRunner().invoke(
        main, ["adapter", "init", "--agency", "housing", "--url", ordinary_database, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert 'table = "client"' in text
    assert 'table = "contact"' in text
    config = load_adapter_config(out)
    assert config.mapping.people.columns == {
        "record_key": "client_id",
        "given_names": "First_Name",
        "family_name": "Last_Name",
        "date_of_birth": "DOB",
        "gender": "Sex",
        "postcode": "Post_Code",
    }
    assert config.mapping.events.columns == {
        "record_key": "client_id",
        "activity_date": "contact_date",
        "category": "contact_type",
    }
    assert config.vocabulary == {"ARREARS": "arrears", "ASB": "asb"}
    assert config.mapping.gender == {"F": "female", "M": "male"}
    index = build_index(config)
    assert (index.record_count, index.activity_count) == (2, 2)
    again = CliRunner().invoke(
        main, ["adapter", "init", "--agency", "housing", "--url", ordinary_database, "--output", str(out)]
    )
    assert again.exit_code == 2
    assert "already exists; refusing to overwrite" in again.output


def test_init_on_a_preset_schema_uses_the_preset(prepared: Prepared) -> None:
    police = load_adapter_config(prepared.configs["police"]).source.url
    result = CliRunner().invoke(main, ["adapter", "init", "--agency", "police", "--url", police])
    assert result.exit_code == 0
    assert "preset's tables are all in this database" in result.output
    assert "nominal_alias" in result.output


def test_init_says_when_nothing_looks_like_people(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE widget (id INTEGER PRIMARY KEY, colour TEXT)"))
    engine.dispose()
    result = CliRunner().invoke(main, ["adapter", "init", "--agency", "generic", "--url", url])
    assert result.exit_code == 2
    assert "no table has columns that look like given and family names (tables: widget)" in result.output


def test_doctor_passes_a_good_adapter_and_names_what_is_wrong_with_a_bad_one(
    prepared: Prepared, tmp_path: Path
) -> None:
    config = load_adapter_config(prepared.configs["socialcare"])
    findings = diagnose(config)
    assert [f for f in findings if f.level == "problem"] == []
    assert {f.topic for f in findings} >= {
        "source",
        "mapping.people",
        "mapping.events",
        "policy",
        "tls",
        "audit",
    }
    broken = config.model_copy(
        update={
            "mapping": config.mapping.model_copy(
                update={
                    "events": config.mapping.events.model_copy(
                        update={"query": "SELECT nothing FROM nowhere"}
                    )
                }
            )
        }
    )
    problems = [(f.topic, f.message) for f in diagnose(broken) if f.level == "problem"]
    assert [t for t, _ in problems] == ["mapping.events"]
    assert problems[0][1].startswith("the database rejected the mapping: ")


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from fresh_database("postgresql")


def test_doctor_warns_when_the_account_could_write(postgres: str, prepared: Prepared) -> None:
    from synth import SynthConfig, generate
    from synth.output import write_databases

    write_databases(generate(SynthConfig(people=500, seed=2), dt.date(2026, 11, 21)), {"fire": postgres})
    config = load_adapter_config(prepared.configs["fire"])
    config = config.model_copy(update={"source": config.source.model_copy(update={"url": postgres})})
    warnings = [f.message for f in diagnose(config) if f.topic == "source" and f.level == "warning"]
    assert warnings == [
        "the account is a PostgreSQL superuser: grant it SELECT only (docs/agency-databases.md); "
        "the adapter's sessions are read-only all the same"
    ]


def test_index_build_reports_what_it_built(prepared: Prepared) -> None:
    result = CliRunner().invoke(
        main, ["adapter", "index", "build", "--config", str(prepared.configs["fire"])]
    )
    assert result.exit_code == 0, result.output
    index = build_index(load_adapter_config(prepared.configs["fire"]))
    assert f"fire: {index.record_count:,} records ({index.person_count:,} people)" in result.output
