"""Real database servers for tests: a fresh database per test, dropped afterwards.

When no server is reachable the test is skipped with the reason, except in CI (CI=true), where it fails:
CI must never pass by skipping the databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

SERVERS = {
    "postgresql": os.environ.get(
        "LATERAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("LATERAL_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def _unreachable(kind: str, error: Exception) -> None:
    reason = f"no {kind} server reachable at {SERVERS[kind]} ({type(error).__name__})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run the database tests")
    pytest.skip(reason)


def fresh_database(kind: str) -> Iterator[str]:
    """Creates an empty database on the server and yields its URL; drops it afterwards."""
    admin_url = sa.make_url(SERVERS[kind])
    name = f"lateral_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as error:
        engine.dispose()
        _unreachable(kind, error)
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


def set_connections(url: str, allowed: bool) -> None:
    """Lets connections into a PostgreSQL database, or shuts its door and drops everyone inside (as an
    outage would)."""
    name = sa.make_url(url).database
    admin = sa.create_engine(sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'true' if allowed else 'false'}"))
        if not allowed:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
    admin.dispose()
