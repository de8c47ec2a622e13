"""Opening an agency's database: read-only by construction where the database can enforce it.

Every session the adapter opens is switched to read-only before the first query: PostgreSQL and
MySQL/MariaDB refuse any write in it, SQLite answers nothing but queries. SQL Server and Oracle have no
session-wide switch: there, the account's grants are the guarantee (docs/agency-databases.md gives the
minimal grants for each). `lateral adapter doctor` warns when the account could write.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

READ_ONLY = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
    "sqlite": "PRAGMA query_only = ON",
}


def source_engine(url: str) -> sa.Engine:
    """An engine whose every connection is read-only where the database supports it (pre-pinged, so a
    database that went away and came back is reconnected to)."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    statement = READ_ONLY.get(engine.dialect.name)
    if statement is not None:

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            if engine.dialect.name != "sqlite":
                dbapi_connection.commit()  # a session setting outlives the transaction that made it

    return engine


def is_read_only(engine: sa.Engine) -> bool:
    """Whether this engine's sessions are read-only by the database's own rule."""
    return engine.dialect.name in READ_ONLY
