"""Reading an agency's own database through its mapping into canonical source records.

Rows that cannot be used (no key, no family name, an unreadable date) are skipped and counted; the counts,
never the values, are logged.

Rows are read in batches. A sink that takes whole batches (the index builder, a BatchSink) gets each batch
as columns (columns.py), the fast way; other sinks, and any batch with a row to skip, get a SourcePerson or
SourceEvent per row.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from adapters.core.columns import (
    BATCH,
    EventColumns,
    PeopleColumns,
    converted,
    flags,
    text,
    texts,
    transpose,
)
from adapters.core.config import AdapterConfig, TableMapping
from adapters.core.connect import source_engine
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


class Sink(Protocol):
    """Where source rows go as they are read (the index builder, or a snapshot in tests)."""

    skipped: Counter[str]

    def add_person(self, person: SourcePerson) -> None: ...
    def add_alias(self, alias: SourceAlias) -> None: ...
    def add_event(self, event: SourceEvent) -> None: ...
    def note_watermark(self, value: object, mapping: str) -> None: ...


@runtime_checkable
class BatchSink(Sink, Protocol):
    """A sink that takes a batch of rows at once, as columns (see columns.py); note_watermarks is
    note_watermark for each value in turn."""

    def add_people(self, people: PeopleColumns) -> None: ...
    def add_events(self, events: EventColumns) -> None: ...
    def note_watermarks(self, values: list[object], mapping: str) -> None: ...


@dataclass
class SourceSnapshot:
    """Everything one read of the agency database gives, held in memory (small sources and tests)."""

    people: list[SourcePerson] = field(default_factory=list)
    aliases: list[SourceAlias] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)
    watermark: str = ""
    skipped: Counter[str] = field(default_factory=Counter)

    def add_person(self, person: SourcePerson) -> None:
        self.people.append(person)

    def add_alias(self, alias: SourceAlias) -> None:
        self.aliases.append(alias)

    def add_event(self, event: SourceEvent) -> None:
        self.events.append(event)

    def note_watermark(self, value: object, mapping: str = "people") -> None:
        if value is not None and str(value) > self.watermark:
            self.watermark = str(value)


@dataclass(frozen=True)
class Only:
    """Restricts a mapping's rows: changed since a watermark, or belonging to some record keys."""

    since: object = None
    keys: tuple[str, ...] = ()


def mapping_statement(mapping: TableMapping, only: Only | None = None) -> sa.Executable:
    if mapping.query is not None:
        if only is None:
            return sa.text(mapping.query)
        # The admin's query as a derived table, so the filter works whatever the query does.
        if only.keys:
            return sa.text(f"SELECT * FROM ({mapping.query}) m WHERE m.record_key IN :keys").bindparams(
                sa.bindparam("keys", list(only.keys), expanding=True)
            )
        return sa.text(f"SELECT * FROM ({mapping.query}) m WHERE m.watermark > :since").bindparams(
            since=only.since
        )
    assert mapping.table is not None
    schema, _, name = mapping.table.rpartition(".")
    table = sa.table(name, schema=schema or None)
    columns: list[Any] = [sa.column(source).label(canonical) for canonical, source in mapping.columns.items()]
    select = sa.select(*columns).select_from(table)
    if only is None:
        return select
    m = select.subquery("m")
    if only.keys:
        return sa.select(m).where(m.c.record_key.in_(list(only.keys)))
    return sa.select(m).where(m.c.watermark > only.since)


Column = Callable[[Sequence[object]], object]
Batch = list[Sequence[object]]


def _none(row: Sequence[object]) -> object:
    return None


def _getter(positions: dict[str, int], name: str) -> Column:
    """A row's value of a canonical column; None when the mapping has no such column."""
    return operator.itemgetter(positions[name]) if name in positions else _none


def _rows(
    conn: sa.Connection,
    mapping: TableMapping,
    where: str,
    required: tuple[str, ...],
    only: Only | None = None,
) -> tuple[dict[str, int], Iterator[Batch]]:
    """Runs a mapping and returns the position of each canonical column in its rows, and the rows in batches
    (streamed: never all held at once)."""
    try:
        result = conn.execution_options(yield_per=BATCH).execute(mapping_statement(mapping, only))
    except sa.exc.DataError:
        # A conversion error's message can quote a value from a row: say where, never what.
        raise ConfigError(
            f"{where}: the source database could not convert a value while running the mapping; "
            "run the query in your own SQL client to find the row"
        ) from None
    except sa.exc.DBAPIError as error:
        # Syntax and unknown-column errors quote the mapping's SQL, which is what the admin needs to fix it.
        raise ConfigError(f"{where}: the source database rejected the mapping: {error.orig}") from None
    positions = {name: i for i, name in enumerate(result.keys())}
    missing = [c for c in required if c not in positions]
    if missing:
        result.close()
        raise ConfigError(f"{where}: the result has no column(s) {missing}; name them with AS in the query")

    rows = iter(result)
    return positions, iter(lambda: list(map(tuple, islice(rows, BATCH))), [])


def parse_date(value: object) -> dt.date | None:
    """A date from a DATE/DATETIME column or ISO text; None when empty or unreadable."""
    if type(value) is str:  # the common case first: ISO text
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    if value is None:
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
    def __init__(self, config: AdapterConfig, sink: Sink) -> None:
        self.config = config
        self.sink = sink
        self._restricted_values = {v.upper() for v in config.mapping.restricted_values}

    def _flag(self, value: object) -> bool:
        if isinstance(value, bool | int):
            return bool(value)
        return text(value).upper() in self._restricted_values

    def read_people(self, conn: sa.Connection, only: Only | None = None) -> None:
        positions, batches = _rows(
            conn,
            self.config.mapping.people,
            f"{self.config.origin}: mapping.people",
            ("record_key", "given_names", "family_name"),
            only,
        )
        by_row = self._people_by_row(positions)
        by_column = self._people_by_column(positions, self.sink) if isinstance(self.sink, BatchSink) else None
        for batch in batches:
            if by_column is None or not by_column(batch):
                by_row(batch)

    def _people_by_row(self, positions: dict[str, int]) -> Callable[[Iterable[Sequence[object]]], None]:
        genders = self.config.mapping.gender
        key_of, given_of, family_of, dob_of = (
            _getter(positions, "record_key"),
            _getter(positions, "given_names"),
            _getter(positions, "family_name"),
            _getter(positions, "date_of_birth"),
        )
        gender_of, address_of, postcode_of, uprn_of = (
            _getter(positions, "gender"),
            _getter(positions, "address"),
            _getter(positions, "postcode"),
            _getter(positions, "uprn"),
        )
        nhs_of, restricted_of, mark_of = (
            _getter(positions, "nhs_number"),
            _getter(positions, "restricted"),
            _getter(positions, "watermark"),
        )
        sink, skipped = self.sink, self.sink.skipped

        def by_row(rows: Iterable[Sequence[object]]) -> None:
            for row in rows:
                key, family = text(key_of(row)), text(family_of(row))
                if not key or not family:
                    skipped["person without key or family name"] += 1
                    continue
                raw_dob = dob_of(row)
                dob = parse_date(raw_dob)
                if dob is None and raw_dob not in (None, ""):
                    skipped["unreadable date of birth (kept without it)"] += 1
                sink.add_person(
                    SourcePerson(
                        record_key=key,
                        given_names=tuple(text(given_of(row)).split()),
                        family_name=family,
                        date_of_birth=dob,
                        gender=genders.get(text(gender_of(row))),
                        address=text(address_of(row)),
                        postcode=text(postcode_of(row)),
                        uprn=text(uprn_of(row)),
                        nhs_number=text(nhs_of(row)),
                        restricted=self._flag(restricted_of(row)),
                    )
                )
                sink.note_watermark(mark_of(row), "people")

        return by_row

    def _people_by_column(self, positions: dict[str, int], sink: BatchSink) -> Callable[[Batch], bool]:
        """Hands a batch to the sink as columns and returns True, or returns False (having done nothing)
        when a row of it is to be skipped or counted."""
        genders = self.config.mapping.gender

        def gender(value: object) -> str | None:
            return genders.get(text(value))

        dates: dict[object, dt.date | None] = {}
        gender_memo: dict[object, str | None] = {}
        flag_memo: dict[object, bool] = {}
        width = len(positions)

        def by_column(batch: Batch) -> bool:
            n, columns = len(batch), transpose(batch, width)

            def column(name: str) -> Sequence[object] | None:
                return columns[positions[name]] if name in positions else None

            def astext(name: str) -> list[str]:
                values = column(name)
                return [""] * n if values is None else texts(values)

            keys, families = astext("record_key"), astext("family_name")
            if not all(keys) or not all(families):
                return False
            raw_dob, raw_gender, raw_restricted = (
                column("date_of_birth"),
                column("gender"),
                column("restricted"),
            )
            if raw_dob is None:
                dob: list[dt.date | None] = [None] * n
            else:
                dob = converted(raw_dob, parse_date, dates)
                # Every empty value reads as None; any other None is an unreadable date, to be counted.
                if dob.count(None) != raw_dob.count(None) + raw_dob.count(""):
                    return False
            sink.add_people(
                PeopleColumns(
                    keys,
                    astext("given_names"),
                    families,
                    dob,
                    [gender(None)] * n if raw_gender is None else converted(raw_gender, gender, gender_memo),
                    astext("address"),
                    astext("postcode"),
                    astext("uprn"),
                    astext("nhs_number"),
                    [self._flag(None)] * n
                    if raw_restricted is None
                    else flags(raw_restricted, self._flag, flag_memo),
                )
            )
            marks = column("watermark")
            if marks is not None:
                sink.note_watermarks(list(marks), "people")
            return True

        return by_column

    def read_aliases(self, conn: sa.Connection, only: Only | None = None) -> None:
        mapping = self.config.mapping.aliases
        if mapping is None:
            return
        positions, batches = _rows(
            conn,
            mapping,
            f"{self.config.origin}: mapping.aliases",
            ("record_key", "given_names", "family_name"),
            only,
        )
        key_of, given_of, family_of = (
            _getter(positions, "record_key"),
            _getter(positions, "given_names"),
            _getter(positions, "family_name"),
        )
        for batch in batches:
            for row in batch:
                key, family = text(key_of(row)), text(family_of(row))
                if key and family:
                    self.sink.add_alias(SourceAlias(key, tuple(text(given_of(row)).split()), family))

    def read_events(self, conn: sa.Connection, only: Only | None = None) -> None:
        positions, batches = _rows(
            conn,
            self.config.mapping.events,
            f"{self.config.origin}: mapping.events",
            ("record_key", "activity_date", "category"),
            only,
        )
        by_row = self._events_by_row(positions)
        by_column = self._events_by_column(positions, self.sink) if isinstance(self.sink, BatchSink) else None
        for batch in batches:
            if by_column is None or not by_column(batch):
                by_row(batch)

    def _events_by_row(self, positions: dict[str, int]) -> Callable[[Iterable[Sequence[object]]], None]:
        vocabulary = self.config.vocabulary
        key_of, date_of, category_of, restricted_of = (
            _getter(positions, "record_key"),
            _getter(positions, "activity_date"),
            _getter(positions, "category"),
            _getter(positions, "restricted"),
        )
        name_of, role_of, phone_of, email_of = (
            _getter(positions, "contact_name"),
            _getter(positions, "contact_role"),
            _getter(positions, "contact_phone"),
            _getter(positions, "contact_email"),
        )
        mark_of = _getter(positions, "watermark")
        sink, skipped = self.sink, self.sink.skipped
        contacts: dict[tuple[str, str, str, str], Contact] = {}

        def by_row(rows: Iterable[Sequence[object]]) -> None:
            for row in rows:
                key, when = text(key_of(row)), parse_date(date_of(row))
                if not key or when is None:
                    skipped["activity without key or readable date"] += 1
                    continue
                code = text(category_of(row))
                category = vocabulary.get(code)
                if category is None:
                    skipped["activity with a code outside the vocabulary (reported as 'other')"] += 1
                    category = "other"
                contact = None
                name = text(name_of(row))
                if name:
                    details = (name, text(role_of(row)), text(phone_of(row)), text(email_of(row)))
                    contact = contacts.get(details) or contacts.setdefault(details, Contact(*details))
                sink.add_event(
                    SourceEvent(
                        key, when, category, restricted=self._flag(restricted_of(row)), contact=contact
                    )
                )
                sink.note_watermark(mark_of(row), "events")

        return by_row

    def _events_by_column(self, positions: dict[str, int], sink: BatchSink) -> Callable[[Batch], bool]:
        """As _people_by_column, for activity rows."""
        vocabulary = self.config.vocabulary

        def category_of(value: object) -> str | None:
            return vocabulary.get(text(value))

        dates: dict[object, dt.date | None] = {}
        category_memo: dict[object, str | None] = {}
        flag_memo: dict[object, bool] = {}
        known: dict[tuple[str, str, str, str], Contact] = {}
        width = len(positions)

        def by_column(batch: Batch) -> bool:
            n, columns = len(batch), transpose(batch, width)

            def column(name: str) -> Sequence[object] | None:
                return columns[positions[name]] if name in positions else None

            def astext(name: str) -> list[str]:
                values = column(name)
                return [""] * n if values is None else texts(values)

            keys = astext("record_key")
            when = converted(columns[positions["activity_date"]], parse_date, dates)
            if not all(keys) or None in when:
                return False
            categories = converted(columns[positions["category"]], category_of, category_memo)
            if None in categories:
                return False
            raw_restricted = column("restricted")
            names = astext("contact_name")
            contacts: list[Contact | None] = [None] * n
            if any(names):
                contacts = [
                    (known.get(details) or known.setdefault(details, Contact(*details)))
                    if details[0]
                    else None
                    for details in zip(
                        names,
                        astext("contact_role"),
                        astext("contact_phone"),
                        astext("contact_email"),
                        strict=True,
                    )
                ]
            sink.add_events(
                EventColumns(
                    keys,
                    when,  # type: ignore[arg-type]  # no None: checked above
                    categories,  # type: ignore[arg-type]
                    [self._flag(None)] * n
                    if raw_restricted is None
                    else flags(raw_restricted, self._flag, flag_memo),
                    contacts,
                )
            )
            marks = column("watermark")
            if marks is not None:
                sink.note_watermarks(list(marks), "events")
            return True

        return by_column


class _Keys:
    """A sink that only collects the record keys (and watermarks) of changed rows."""

    def __init__(self) -> None:
        self.keys: dict[str, None] = {}
        self.skipped: Counter[str] = Counter()
        self.marks: dict[str, object] = {}

    def add_person(self, person: SourcePerson) -> None:
        self.keys[person.record_key] = None

    def add_alias(self, alias: SourceAlias) -> None:
        self.keys[alias.record_key] = None

    def add_event(self, event: SourceEvent) -> None:
        self.keys[event.record_key] = None

    def note_watermark(self, value: object, mapping: str) -> None:
        if value is not None and (mapping not in self.marks or _newer(value, self.marks[mapping])):
            self.marks[mapping] = value


def _newer(value: object, than: object) -> bool:
    try:
        return bool(value > than)  # type: ignore[operator]
    except TypeError:
        return str(value) > str(than)


def _unreadable(config: AdapterConfig, error: sa.exc.DBAPIError) -> ConfigError:
    """The database went away or refused the connection. Connection errors name hosts and accounts, which
    an admin needs; any other driver error is named by type only (its text could quote a row)."""
    if isinstance(error, sa.exc.OperationalError):
        detail = str(error.orig)
    else:  # ODBC errors lead with a SQLSTATE ('08001', 'IM002'), which says what went wrong without data
        args = getattr(error.orig, "args", None) or ("",)
        state = args[0] if isinstance(args[0], str) and len(args[0]) == 5 else ""
        detail = f"{type(error.orig).__name__} {state}".strip()
    return ConfigError(f"{config.origin}: source.url: cannot read the database: {detail}")


def read_changes(
    config: AdapterConfig, since: dict[str, object], sink: Sink
) -> tuple[list[str], dict[str, object]]:
    """Reads, into sink, every person (with aliases and all activity) whose person row or any activity row has
    changed since the given watermarks ("people", "events").

    Returns:
        The changed record keys and the new watermarks.
    """
    engine = source_engine(config.source.url)
    changed = _Keys()
    try:
        with engine.connect() as conn:
            reader = _Reader(config, changed)
            if "people" in since:
                reader.read_people(conn, Only(since=since["people"]))
            if "events" in since:
                reader.read_events(conn, Only(since=since["events"]))
            keys = list(changed.keys)
            full = _Reader(config, sink)
            for start in range(0, len(keys), 500):
                chunk = Only(keys=tuple(keys[start : start + 500]))
                full.read_people(conn, chunk)
                full.read_aliases(conn, chunk)
                full.read_events(conn, chunk)
    except sa.exc.DBAPIError as error:
        raise _unreadable(config, error) from None
    finally:
        engine.dispose()
    return keys, {**since, **changed.marks}


def read_records(config: AdapterConfig, keys: Sequence[str]) -> SourceSnapshot:
    """The people with these record keys, and their aliases, as the agency database holds them now (a
    proactive review's identity, docs/proactive.md).

    Raises:
        ConfigError: when the database cannot be read.
    """
    snapshot = SourceSnapshot()
    engine = source_engine(config.source.url)
    try:
        with engine.connect() as conn:
            reader = _Reader(config, snapshot)
            only = Only(keys=tuple(keys))
            reader.read_people(conn, only)
            reader.read_aliases(conn, only)
    except sa.exc.DBAPIError as error:
        raise _unreadable(config, error) from None
    finally:
        engine.dispose()
    return snapshot


def read_source(config: AdapterConfig, sink: Sink | None = None) -> Sink:
    """Reads people, aliases and activity from the agency database in one connection into sink (a new
    SourceSnapshot when none is given), streaming: rows are never all held at once.

    Raises:
        ConfigError: when the database cannot be reached or the mapping does not fit it.
    """
    try:
        engine = source_engine(config.source.url)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise ConfigError(f"{config.origin}: source.url: cannot open the database: {error}") from None
    reader = _Reader(config, sink if sink is not None else SourceSnapshot())
    try:
        with engine.connect() as conn:
            reader.read_people(conn)
            reader.read_aliases(conn)
            reader.read_events(conn)
    except sa.exc.DBAPIError as error:
        raise _unreadable(config, error) from None
    finally:
        engine.dispose()
    for reason, count in reader.sink.skipped.items():
        log.warning("%s: %d row(s): %s", config.agency.id, count, reason)
    return reader.sink
