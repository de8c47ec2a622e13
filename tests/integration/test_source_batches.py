"""The index builder's fast way in (whole batches as columns) builds exactly the index that row by row does,
skipped rows and all, whichever batches hold the rows to skip, on every kind of database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from adapters.core import build_index, load_adapter_config
from adapters.core import source as source_module
from adapters.core.config import AdapterConfig
from adapters.core.index import MatchIndex
from adapters.core.source import SourceSnapshot, read_source
from adapters.police import schema
from synth import AGENCIES, SynthConfig, generate, write_adapter_configs, write_databases
from tests.databases import fresh_database

# Rows the reader must skip or count, in the middle of the police data.
ODD_NOMINALS = [
    {"nominal_id": 900_001, "forenames": "Ann", "surname": "", "date_of_birth": "1990-01-02"},
    {"nominal_id": 900_002, "forenames": "Bo", "surname": "Lee", "date_of_birth": "1990-13-40"},
    {"nominal_id": 900_003, "forenames": "  Dr  Cy ", "surname": " Lord ", "date_of_birth": ""},
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def configs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AdapterConfig]]:
    """Every agency's database on SQLite (text dates, odd rows added) and on the servers (whose drivers
    return dates, timestamps and booleans)."""
    folder = tmp_path_factory.mktemp("batches")
    data = generate(SynthConfig(people=8000, seed=11), dt.date(2026, 11, 21))
    if request.param == "sqlite":
        urls = {agency: f"sqlite:///{folder / f'{agency}.db'}" for agency in AGENCIES}
        write_databases(data, urls)
        _add_odd_rows(urls["police"])
        yield _configs(folder, urls)
        return
    for url in fresh_database(request.param):
        urls = dict.fromkeys(AGENCIES, url)
        write_databases(data, urls)
        yield _configs(folder, urls)


def _configs(folder: Path, urls: dict[str, str]) -> dict[str, AdapterConfig]:
    paths = write_adapter_configs(folder, urls)
    return {agency: load_adapter_config(path) for agency, path in paths.items()}


def _add_odd_rows(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # Raw text, as a legacy system might hold it (the schema's Date type would refuse a bad date).
        for row in ODD_NOMINALS:
            conn.execute(
                sa.text(
                    "INSERT INTO nominal (nominal_id, forenames, surname, date_of_birth, sex, "
                    "sensitivity_marker, last_updated) "
                    "VALUES (:nominal_id, :forenames, :surname, :date_of_birth, 'U', 'N', '2020-01-01')"
                ),
                row,
            )
        conn.execute(
            schema.occurrence_nominal.insert().values(
                occurrence_id=1, nominal_id=999_999_999, involvement="SUBJECT"
            )
        )
    engine.dispose()


def fields(index: MatchIndex) -> dict[str, Any]:
    """Everything an index holds but its build times and watermarks (a snapshot keeps only the newest, as
    text)."""
    out = {
        f.name: getattr(index, f.name)
        for f in dataclasses.fields(index)
        if f.name not in ("built_at", "refreshed_at", "watermarks", "events", "blocks")
    }
    out.update({f"events.{f.name}": getattr(index.events, f.name) for f in dataclasses.fields(index.events)})
    for kind, (hashes, rows) in index.blocks.items():
        out[f"blocks.{kind}"] = (hashes, rows)
    return out


def same(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and a and isinstance(a[0], np.ndarray):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("batch", [37, 10_000])
@pytest.mark.parametrize("agency", AGENCIES)
def test_batches_build_the_index_row_by_row_does(
    configs: dict[str, AdapterConfig], agency: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_module, "BATCH", batch)
    config = configs[agency]
    snapshot = SourceSnapshot()  # takes rows one by one
    read_source(config, snapshot)
    by_row = MatchIndex.build(snapshot)
    by_batch = build_index(config)
    assert by_batch.record_count > 150
    expected, actual = fields(by_row), fields(by_batch)
    assert expected.keys() == actual.keys()
    differ = [name for name in expected if not same(expected[name], actual[name])]
    assert not differ
    if agency == "police" and config.source.url.startswith("sqlite"):
        assert by_batch.skipped == {
            "person without key or family name": 1,
            "unreadable date of birth (kept without it)": 1,
            "activity of an unknown record key": 1,
        }


def test_watermarks_are_the_newest_of_each_mapping(configs: dict[str, AdapterConfig]) -> None:
    index = build_index(configs["police"])
    engine = sa.create_engine(configs["police"].source.url)
    with engine.connect() as conn:
        people = conn.execute(sa.text("SELECT max(last_updated) FROM nominal")).scalar()
        events = conn.execute(
            sa.text(
                "SELECT max(o.last_updated) FROM occurrence o "
                "JOIN occurrence_nominal l ON l.occurrence_id = o.occurrence_id"
            )
        ).scalar()
    engine.dispose()
    assert index.watermarks == {"people": people, "events": events}
