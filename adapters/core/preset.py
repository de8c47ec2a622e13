"""What an agency package provides: its source schema, how people are written into it, and its example
configuration (whose mapping and vocabulary are the agency's defaults)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tomli_w

from adapters.core.records import SeedPerson
from lateral.config import read_toml


@dataclass(frozen=True)
class Codes:
    """The agency's own codes for canonical categories and genders, for writing seed data."""

    categories: dict[str, str]
    genders: dict[str, str]

    def category(self, category: str) -> str:
        return self.categories[category]

    def gender(self, gender: str) -> str:
        return self.genders.get(gender, self.genders.get("not_known", ""))


Progress = Callable[[int], None]
Writer = Callable[[sa.Connection, Sequence[SeedPerson], Codes, Progress], None]


class Batches:
    """Rows waiting to be inserted, flushed in bulk and in foreign-key order (parents first), with progress
    counted in people written."""

    def __init__(
        self, conn: sa.Connection, metadata: sa.MetaData, progress: Progress, size: int = 20_000
    ) -> None:
        self._conn = conn
        self._order = metadata.sorted_tables
        self._rows: dict[sa.Table, list[dict[str, Any]]] = {t: [] for t in self._order}
        self._size = size
        self._pending = 0
        self._progress = progress
        self._people = 0

    def person_done(self) -> None:
        """Counts one person written (reported every 10,000)."""
        self._people += 1
        if self._people % 10_000 == 0:
            self._progress(10_000)

    def close(self) -> None:
        """Flushes what is left and reports the last people."""
        self.flush()
        self._progress(self._people % 10_000)

    def add(self, table: sa.Table, **row: Any) -> None:
        self._rows[table].append(row)
        self._pending += 1
        if self._pending >= self._size:
            self.flush()

    def flush(self) -> None:
        for table in self._order:
            if self._rows[table]:
                self._conn.execute(table.insert(), self._rows[table])
                self._rows[table] = []
        self._pending = 0


@dataclass(frozen=True)
class AgencyPreset:
    agency_id: str
    metadata: sa.MetaData
    writer: Writer
    config_path: Path

    @cached_property
    def config_data(self) -> dict[str, Any]:
        """The example configuration as parsed TOML."""
        return read_toml(self.config_path)

    @cached_property
    def codes(self) -> Codes:
        """The agency's own codes (the first listed) for each category and gender of its mapping."""
        categories: dict[str, str] = {}
        for code, category in self.config_data["vocabulary"].items():
            categories.setdefault(category, code)
        genders: dict[str, str] = {}
        for code, gender in self.config_data["mapping"].get("gender", {}).items():
            genders.setdefault(gender, code)
        return Codes(categories, genders)

    def create_database(
        self, url: str, people: Sequence[SeedPerson], progress: Progress = lambda n: None
    ) -> None:
        """Creates the agency schema at url (dropping what is there) and writes the people into it.

        progress is called with the number of people written since its last call.
        """
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                self.metadata.drop_all(conn)
                self.metadata.create_all(conn)
                self.writer(conn, people, self.codes, progress)
        finally:
            engine.dispose()

    def write_config(self, path: Path, *, url: str, listen: str) -> None:
        """Writes a copy of the example configuration pointing at url and listening on listen."""
        data = dict(self.config_data)
        data["source"] = {**data["source"], "url": url}
        data["server"] = {**data.get("server", {}), "listen": listen}
        path.write_text(
            f"# Written by Lateral on {dt.date.today().isoformat()} from {self.config_path.name}.\n"
            + tomli_w.dumps(data, multiline_strings=True)
        )
