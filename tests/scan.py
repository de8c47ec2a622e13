"""Reading a database's rows as text, to scan for personal data that must not be there."""

from __future__ import annotations

import re

import sqlalchemy as sa

# Sealed subjects, signatures and digests are long base64/hex runs in which a short name turns up by chance
# now and then (case-insensitively): they are not text.
ENCODED = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
# Tokens, digests, ids: runs of hex digits, where a date written YYYYMMDD turns up by chance.
_RUNS = re.compile(rb"[0-9a-f]{32,}|[A-Za-z0-9+/=_-]{40,}")


def scrubbed(blob: bytes) -> bytes:
    """Bytes with their hex and base64 runs blanked: what is left is what could be text."""
    return _RUNS.sub(b" ", blob)


def rows_text(url: str, skip_columns: set[str] | None = None) -> list[tuple[str, str]]:
    """(table, row text without its encoded runs) for every row of every table of the database, leaving
    out the columns named (binary ones, whose random bytes hold short words by chance)."""
    engine = sa.create_engine(url)
    out = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                    values = [v for k, v in row._mapping.items() if k not in (skip_columns or set())]
                    out.append((table, ENCODED.sub(" ", " ".join(str(v) for v in values))))
    finally:
        engine.dispose()
    return out
