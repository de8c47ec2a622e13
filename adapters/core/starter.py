"""`lateral adapter init`: a starter configuration inferred from the agency database's own tables.

With a known agency (police, fire, nhs, socialcare) whose preset schema is there, the preset's mapping is
used as it stands. Otherwise the person table is the one whose columns look most like given and family
names (under common spellings), its primary key is the record key, and an events table is one that refers
to it (by foreign key or by the key's column name) and has a date and a code column. What cannot be
inferred is marked TODO; activity codes found in the data are listed (codes, never personal values) with
a provisional category each, so the configuration runs at once with `lateral adapter match`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import tomlkit
from tomlkit.items import Table

from adapters.core.connect import source_engine
from lateral.config import ConfigError

# Canonical person field -> column names agencies use for it (compared without case, spaces or underscores).
PERSON_NAMES = {
    "given_names": (
        "forenames",
        "forename",
        "firstname",
        "firstnames",
        "givenname",
        "givennames",
        "christianname",
        "legalforename",
    ),
    "family_name": ("surname", "lastname", "familyname", "legalsurname"),
    "date_of_birth": ("dob", "dateofbirth", "birthdate", "birthday"),
    "gender": ("gender", "sex"),
    "address": ("address", "homeaddress", "address1", "addressline1", "addr1", "street"),
    "postcode": ("postcode", "homepostcode", "postalcode", "zip", "zipcode"),
    "uprn": ("uprn",),
    "nhs_number": ("nhsnumber", "nhsno", "nhs"),
    "watermark": ("lastupdated", "updatedat", "modifiedat", "lastmodified", "modified", "updated"),
}
DATE_WORDS = ("date", "at", "on", "time", "when")
CODE_WORDS = ("code", "type", "category", "kind", "reason")
MAX_CODES = 40


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class Inferred:
    table: str
    key: str | None
    columns: dict[str, str] = field(default_factory=dict)


def _person_table(inspector: Any, tables: list[str]) -> Inferred | None:
    best: tuple[int, Inferred] | None = None
    for table in tables:
        names = {_plain(c["name"]): c["name"] for c in inspector.get_columns(table)}
        columns = {
            canonical: names[spelling]
            for canonical, spellings in PERSON_NAMES.items()
            for spelling in spellings
            if spelling in names
        }
        if "given_names" not in columns or "family_name" not in columns:
            continue
        key = inspector.get_pk_constraint(table).get("constrained_columns") or []
        found = Inferred(table, key[0] if len(key) == 1 else None, columns)
        if best is None or len(columns) > best[0]:
            best = (len(columns), found)
    return best[1] if best else None


def _events_table(inspector: Any, tables: list[str], person: Inferred) -> tuple[Inferred, str] | None:
    """An events table referring to the person table, with its date and code columns."""
    for table in tables:
        if table == person.table:
            continue
        columns = list(inspector.get_columns(table))
        link = None
        for fk in inspector.get_foreign_keys(table):
            if fk.get("referred_table") == person.table and len(fk["constrained_columns"]) == 1:
                link = fk["constrained_columns"][0]
        if link is None and person.key and person.key in {c["name"] for c in columns}:
            link = person.key
        if link is None:
            continue
        dates = [
            c["name"]
            for c in columns
            if isinstance(c["type"], sa.Date | sa.DateTime) or any(w in _plain(c["name"]) for w in ("date",))
        ]
        codes = [c["name"] for c in columns if any(_plain(c["name"]).endswith(w) for w in CODE_WORDS)]
        if dates and codes:
            event = Inferred(
                table, link, {"record_key": link, "activity_date": dates[0], "category": codes[0]}
            )
            return event, codes[0]
    return None


def _slug(code: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", code.lower()).strip("-")
    return slug or "other"


def starter_config(url: str, agency: str, agency_name: str = "") -> str:
    """The starter configuration (TOML text) for the database at url.

    Raises:
        ConfigError: the database cannot be read, or has no table that looks like people.
    """
    from adapters.presets import PRESETS

    try:
        engine = source_engine(url)
        inspector = sa.inspect(engine)
        tables = inspector.get_table_names()
    except (sa.exc.SQLAlchemyError, ImportError) as error:
        raise ConfigError(f"cannot inspect the database: {type(error).__name__}") from None
    try:
        preset = PRESETS.get(agency)
        if preset is not None and set(preset.metadata.tables) <= set(tables):
            return _from_preset(preset, url)
        person = _person_table(inspector, tables)
        if person is None:
            raise ConfigError(
                "no table has columns that look like given and family names "
                f"(tables: {', '.join(sorted(tables))}); write the mapping by hand, as in "
                "adapters/police/adapter.toml"
            )
        events = _events_table(inspector, tables, person)
        genders = (
            _distinct(engine, person.table, person.columns["gender"]) if "gender" in person.columns else []
        )
        codes: list[str] = []
        if events is not None:
            codes = _distinct(engine, events[0].table, events[1])
    finally:
        engine.dispose()
    return _document(url, agency, agency_name, person, events[0] if events else None, codes, genders)


def _distinct(engine: sa.Engine, table: str, column: str) -> list[str]:
    """The distinct values of a code column (codes, not personal values), at most MAX_CODES."""
    clause: sa.ColumnClause[Any] = sa.column(column)
    with engine.connect() as conn:
        found = conn.execute(sa.select(clause).select_from(sa.table(table)).distinct().limit(MAX_CODES))
        return sorted(str(c) for c in found.scalars() if c is not None)


def _gender(code: str) -> str:
    first = code.strip().lower()[:1]
    return {"f": "female", "m": "male", "o": "other"}.get(first, "not_known")


def _from_preset(preset: Any, url: str) -> str:
    data = dict(preset.config_data)
    data["source"] = {**data["source"], "url": url}
    document = tomlkit.document()
    document.add(
        tomlkit.comment(f"Written by lateral adapter init on {dt.date.today()}: the {preset.agency_id} ")
    )
    document.add(
        tomlkit.comment("preset's tables are all in this database, so its mapping is used as it stands.")
    )
    document.update(data)
    return tomlkit.dumps(document)


def _document(
    url: str,
    agency: str,
    agency_name: str,
    person: Inferred,
    events: Inferred | None,
    codes: list[str],
    genders: list[str],
) -> str:
    doc = tomlkit.document()
    doc.add(
        tomlkit.comment(
            f"Written by lateral adapter init on {dt.date.today()} from the database's own tables."
        )
    )
    doc.add(tomlkit.comment("Check every line marked TODO, then: lateral adapter doctor --config THIS_FILE"))
    doc.add(tomlkit.nl())
    doc["agency"] = {"id": agency, "name": agency_name or f"{agency.title()} (TODO: the name MASH staff see)"}
    doc["server"] = {"listen": "0.0.0.0:50061"}
    doc["source"] = {"url": url}
    policy = tomlkit.table()
    policy.add(
        tomlkit.comment("TODO: the signed data-sharing agreement (lateral dsa) this agency answers under")
    )
    policy["agreement"] = "dsa.toml"
    doc["policy"] = policy
    mapping = tomlkit.table(is_super_table=True)
    people = tomlkit.table()
    people["table"] = person.table
    columns = {"record_key": person.key or "TODO_primary_key_column", **person.columns}
    if person.key is None:
        people.add(
            tomlkit.comment("TODO: the table has no single-column primary key: name the record key column")
        )
    people["columns"] = columns
    for canonical in PERSON_NAMES:
        if canonical not in person.columns and canonical not in ("uprn", "nhs_number"):
            people.add(tomlkit.comment(f"TODO (optional): no column looks like {canonical}"))
    mapping["people"] = people
    event_table: Table = tomlkit.table()
    if events is not None:
        event_table["table"] = events.table
        event_table["columns"] = events.columns
    else:
        event_table.add(
            tomlkit.comment("TODO: no table refers to the people with a date and a code: write a query")
        )
        event_table["query"] = (
            f"SELECT {columns['record_key']} AS record_key, NULL AS activity_date, NULL AS category "
            f"FROM {person.table} WHERE 1 = 0"
        )
    mapping["events"] = event_table
    if genders:
        gender = tomlkit.table()
        gender.add(
            tomlkit.comment(
                "TODO: check: the gender codes found in the data, guessed from their first letter"
            )
        )
        for code in genders:
            gender[code] = _gender(code)
        mapping["gender"] = gender
    doc["mapping"] = mapping
    vocabulary = tomlkit.table()
    vocabulary.add(
        tomlkit.comment("TODO: each code found in the data, with a provisional category: rename them")
    )
    for code in codes or ["TODO"]:
        vocabulary[code] = _slug(code)
    doc["vocabulary"] = vocabulary
    contact = tomlkit.table()
    contact.add(tomlkit.comment("TODO: the safeguarding contact given when no activity names one"))
    contact["name"] = "Safeguarding Team"
    contact["phone"] = ""
    contact["email"] = ""
    doc["contact"] = contact
    return tomlkit.dumps(doc)
