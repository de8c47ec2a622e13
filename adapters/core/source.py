"""Reading an agency's own database through its mapping into canonical source records.

Rows that cannot be used (no key, no family name, an unreadable date) are skipped and counted; the counts,
never the values, are logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from adapters.core.config import AdapterConfig, TableMapping
from lateral.config import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    role: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class SourcePerson:
    record_key: str
    given_names: tuple[str, ...]
    family_name: str
    date_of_birth: dt.date | None = None
    gender: str | None = None
    address: str = ""
    postcode: str = ""
    uprn: str = ""
    nhs_number: str = ""
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class SourceAlias:
    record_key: str
    given_names: tuple[str, ...]
    family_name: str


@dataclass(frozen=True, slots=True)
class SourceEvent:
    record_key: str
    activity_date: dt.date
    category: str
    restricted: bool = False
    contact: Contact | None = None


@dataclass
class SourceSnapshot:
    """Everything the index needs from one read of the agency database."""

    people: list[SourcePerson] = field(default_factory=list)
    aliases: list[SourceAlias] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)
    watermark: str = ""
    skipped: Counter[str] = field(default_factory=Counter)


def _statement(mapping: TableMapping) -> sa.Executable:
    if mapping.query is not None:
        return sa.text(mapping.query)
    assert mapping.table is not None
    schema, _, name = mapping.table.rpartition(".")
    table = sa.table(name, schema=schema or None)
    return sa.select(
        *(sa.column(source).label(canonical) for canonical, source in mapping.columns.items())
    ).select_from(table)


def _rows(
    conn: sa.Connection, mapping: TableMapping, where: str, required: tuple[str, ...]
) -> Iterator[sa.RowMapping]:
    try:
        result = conn.execute(_statement(mapping))
    except sa.exc.DataError:
        # A conversion error's message can quote a value from a row: say where, never what.
        raise ConfigError(
            f"{where}: the source database could not convert a value while running the mapping; "
            "run the query in your own SQL client to find the row"
        ) from None
    except sa.exc.DBAPIError as error:
        # Syntax and unknown-column errors quote the mapping's SQL, which is what the admin needs to fix it.
        raise ConfigError(f"{where}: the source database rejected the mapping: {error.orig}") from None
    columns = set(result.keys())
    missing = [c for c in required if c not in columns]
    if missing:
        raise ConfigError(f"{where}: the result has no column(s) {missing}; name them with AS in the query")
    yield from result.mappings()


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def parse_date(value: object) -> dt.date | None:
    """A date from a DATE/DATETIME column or ISO text; None when empty or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


class _Reader:
    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.snapshot = SourceSnapshot()
        self._restricted_values = {v.upper() for v in config.mapping.restricted_values}

    def _flag(self, value: object) -> bool:
        if isinstance(value, bool | int):
            return bool(value)
        return _text(value).upper() in self._restricted_values

    def _watermark(self, row: sa.RowMapping) -> None:
        mark = row.get("watermark")
        if mark is not None and str(mark) > self.snapshot.watermark:
            self.snapshot.watermark = str(mark)

    def read_people(self, conn: sa.Connection) -> None:
        genders = self.config.mapping.gender
        for row in _rows(
            conn,
            self.config.mapping.people,
            f"{self.config.origin}: mapping.people",
            ("record_key", "given_names", "family_name"),
        ):
            key, family = _text(row["record_key"]), _text(row["family_name"])
            if not key or not family:
                self.snapshot.skipped["person without key or family name"] += 1
                continue
            raw_dob = row.get("date_of_birth")
            dob = parse_date(raw_dob)
            if raw_dob not in (None, "") and dob is None:
                self.snapshot.skipped["unreadable date of birth (kept without it)"] += 1
            self.snapshot.people.append(
                SourcePerson(
                    record_key=key,
                    given_names=tuple(_text(row["given_names"]).split()),
                    family_name=family,
                    date_of_birth=dob,
                    gender=genders.get(_text(row.get("gender")), None),
                    address=_text(row.get("address")),
                    postcode=_text(row.get("postcode")),
                    uprn=_text(row.get("uprn")),
                    nhs_number=_text(row.get("nhs_number")),
                    restricted=self._flag(row.get("restricted")),
                )
            )
            self._watermark(row)

    def read_aliases(self, conn: sa.Connection) -> None:
        mapping = self.config.mapping.aliases
        if mapping is None:
            return
        for row in _rows(
            conn,
            mapping,
            f"{self.config.origin}: mapping.aliases",
            ("record_key", "given_names", "family_name"),
        ):
            key, family = _text(row["record_key"]), _text(row["family_name"])
            if key and family:
                self.snapshot.aliases.append(
                    SourceAlias(key, tuple(_text(row["given_names"]).split()), family)
                )

    def read_events(self, conn: sa.Connection) -> None:
        vocabulary = self.config.vocabulary
        for row in _rows(
            conn,
            self.config.mapping.events,
            f"{self.config.origin}: mapping.events",
            ("record_key", "activity_date", "category"),
        ):
            key, when = _text(row["record_key"]), parse_date(row["activity_date"])
            if not key or when is None:
                self.snapshot.skipped["activity without key or readable date"] += 1
                continue
            code = _text(row["category"])
            category = vocabulary.get(code)
            if category is None:
                self.snapshot.skipped[
                    "activity with a code outside the vocabulary (reported as 'other')"
                ] += 1
                category = "other"
            contact = None
            if _text(row.get("contact_name")):
                contact = Contact(
                    name=_text(row.get("contact_name")),
                    role=_text(row.get("contact_role")),
                    phone=_text(row.get("contact_phone")),
                    email=_text(row.get("contact_email")),
                )
            self.snapshot.events.append(
                SourceEvent(
                    key, when, category, restricted=self._flag(row.get("restricted")), contact=contact
                )
            )
            self._watermark(row)


def read_source(config: AdapterConfig) -> SourceSnapshot:
    """Reads people, aliases and activity from the agency database in one connection.

    Raises:
        ConfigError: when the database cannot be reached or the mapping does not fit it.
    """
    try:
        engine = sa.create_engine(config.source.url)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise ConfigError(f"{config.origin}: source.url: cannot open the database: {error}") from None
    reader = _Reader(config)
    try:
        with engine.connect() as conn:
            reader.read_people(conn)
            reader.read_aliases(conn)
            reader.read_events(conn)
    except sa.exc.OperationalError as error:
        raise ConfigError(f"{config.origin}: source.url: cannot read the database: {error.orig}") from None
    finally:
        engine.dispose()
    for reason, count in reader.snapshot.skipped.items():
        log.warning("%s: %d row(s): %s", config.agency.id, count, reason)
    return reader.snapshot
