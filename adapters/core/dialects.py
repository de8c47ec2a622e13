"""PostgreSQL over ODBC for SQLAlchemy, which ships `mysql+pyodbc` and `mssql+pyodbc` but no
`postgresql+pyodbc`: its pyodbc connector combined with its PostgreSQL dialect is enough. Registered as
`postgresql+pyodbc` (pyproject entry point). With Debian's `PostgreSQL Unicode` driver the DSN or
connection string must set `UseServerSidePrepare=0`.
"""

from __future__ import annotations

from sqlalchemy.connectors.pyodbc import PyODBCConnector
from sqlalchemy.dialects.postgresql.base import PGDialect


class PGDialectODBC(PyODBCConnector, PGDialect):
    supports_statement_cache = True
    supports_server_side_cursors = False
