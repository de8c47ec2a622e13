"""Agency databases through ODBC, as agencies on SQL Server reach theirs: pyodbc over unixODBC with Debian's
PostgreSQL and MariaDB drivers, configured by DSN. The index built through ODBC is the one built through
the native drivers, and the adapter's ODBC sessions cannot write."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomli_w

from adapters.core import build_index, load_adapter_config
from adapters.core.connect import source_engine
from synth import SynthConfig, generate, write_adapter_configs, write_databases
from tests.databases import fresh_database
from tests.integration.test_source_batches import fields, same

DRIVERS = {"postgresql": "PostgreSQL Unicode", "mariadb": "MariaDB Unicode"}
ODBC_URL = {"postgresql": "postgresql+pyodbc://@{dsn}", "mariadb": "mysql+pyodbc://@{dsn}"}


def _drivers_or_skip() -> None:
    try:
        import pyodbc

        installed = set(pyodbc.drivers())
    except ImportError as error:  # unixODBC itself missing: libodbc.so cannot load
        installed, why = set(), f"pyodbc cannot load ({error})"
    else:
        missing = sorted(set(DRIVERS.values()) - installed)
        why = f"ODBC drivers {missing} are not installed (Debian: unixodbc, odbc-postgresql, odbc-mariadb)"
    if not set(DRIVERS.values()) <= installed:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}: CI must run the ODBC tests")
        pytest.skip(why)


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    """(kind, native URL, ODBC URL) of one fresh database per kind for this module. unixODBC caches what it
    reads from odbc.ini, so the DSN file is written once per database and not rewritten."""
    _drivers_or_skip()
    for url in fresh_database(request.param):
        folder = tmp_path_factory.mktemp(f"odbc-{request.param}")
        saved = os.environ.get("ODBCINI")
        odbc = _register_dsn(folder, request.param, url)
        try:
            yield request.param, url, odbc
        finally:
            if saved is None:
                os.environ.pop("ODBCINI", None)
            else:
                os.environ["ODBCINI"] = saved


def _register_dsn(folder: Path, kind: str, url: str) -> str:
    """Writes a DSN for the database, as an agency admin registers one, and points unixODBC at it."""
    parsed = sa.make_url(url)
    dsn = f"lateral_{kind[:5]}_{str(parsed.database)[-12:]}"  # unixODBC allows 32 characters
    if kind == "postgresql":
        body = (
            f"Driver = {DRIVERS[kind]}\nServername = {parsed.host}\nPort = {parsed.port}\n"
            f"Database = {parsed.database}\nUsername = {parsed.username}\nUseServerSidePrepare = 0\n"
        )
    else:
        body = (
            f"Driver = {DRIVERS[kind]}\nServer = {parsed.host}\nPort = {parsed.port}\n"
            f"Database = {parsed.database}\nUser = {parsed.username}\n"
        )
    ini = folder / "odbc.ini"
    ini.write_text(f"[{dsn}]\n{body}")
    os.environ["ODBCINI"] = str(ini)
    return ODBC_URL[kind].format(dsn=dsn)


def test_an_index_built_through_odbc_is_the_native_one(
    database: tuple[str, str, str], tmp_path: Path
) -> None:
    _, url, odbc = database
    write_databases(
        generate(SynthConfig(people=1500, seed=6), dt.date(2026, 11, 21)), {"police": url, "nhs": url}
    )
    for folder in ("native", "odbc"):
        (tmp_path / folder).mkdir()
    for agency in ("police", "nhs"):
        native = load_adapter_config(write_adapter_configs(tmp_path / "native", {agency: url})[agency])
        through_odbc = load_adapter_config(write_adapter_configs(tmp_path / "odbc", {agency: odbc})[agency])
        expected, actual = fields(build_index(native)), fields(build_index(through_odbc))
        assert expected["keys"], agency
        differ = [name for name in expected if not same(expected[name], actual[name])]
        assert not differ, (agency, differ)


def test_odbc_sessions_cannot_write(database: tuple[str, str, str]) -> None:
    _, url, odbc = database
    setup = sa.create_engine(url)
    with setup.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    setup.dispose()
    engine = source_engine(odbc)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM t")).scalar() == 0
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()


@pytest.fixture
def mixed_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(PostgreSQL URL, MariaDB URL, the MariaDB database's ODBC URL), all fresh."""
    _drivers_or_skip()
    for postgres in fresh_database("postgresql"):
        for mariadb in fresh_database("mariadb"):
            saved = os.environ.get("ODBCINI")
            try:
                yield postgres, mariadb, _register_dsn(tmp_path_factory.mktemp("mixed"), "mariadb", mariadb)
            finally:
                if saved is None:
                    os.environ.pop("ODBCINI", None)
                else:
                    os.environ["ODBCINI"] = saved


async def test_a_federation_on_mixed_databases(mixed_sources: tuple[str, str, str], tmp_path: Path) -> None:
    """Police on PostgreSQL, social care on MariaDB over ODBC, NHS and fire on SQLite: the showcase check
    answers as the ground truth says."""
    from lateral.config import read_toml
    from lateral.demo import prepare, start_federation
    from lateral.demo.agreement import DEMO_CALLER
    from protos.lateral.v1 import broker_pb2_grpc

    postgres, mariadb, odbc = mixed_sources
    prepared = prepare(tmp_path, people=20_000, seed=1, sources={"police": postgres, "socialcare": mariadb})
    socialcare = read_toml(prepared.configs["socialcare"])
    socialcare["source"]["url"] = odbc  # written natively, read over ODBC as the agency would
    prepared.configs["socialcare"].write_text(tomli_w.dumps(socialcare))
    federation = await start_federation(prepared)
    try:
        example = prepared.examples.three_agencies
        async with federation.channel(DEMO_CALLER) as channel:
            response = await broker_pb2_grpc.LateralCheckStub(channel).Check(example.request(), timeout=10)
        assert {r.agency_id: r.finding.outcome for r in response.results} == example.expected
        assert response.review_required
    finally:
        await federation.stop()
