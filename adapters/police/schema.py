"""A police records system as forces keep it: nominals (people) linked to occurrences with a role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from adapters.core.preset import Batches, Codes, Progress
from adapters.core.records import SeedPerson

metadata = sa.MetaData()

nominal = sa.Table(
    "nominal",
    metadata,
    sa.Column("nominal_id", sa.Integer, primary_key=True),
    sa.Column("pnc_id", sa.String(20)),
    sa.Column("forenames", sa.String(100), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("sex", sa.String(1)),
    sa.Column("home_address", sa.String(200)),
    sa.Column("home_postcode", sa.String(10)),
    sa.Column("sensitivity_marker", sa.String(1), nullable=False, server_default="N"),
    sa.Column("last_updated", sa.DateTime, nullable=False),
)

nominal_alias = sa.Table(
    "nominal_alias",
    metadata,
    sa.Column("alias_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("nominal_id", sa.Integer, sa.ForeignKey("nominal.nominal_id"), nullable=False),
    sa.Column("forenames", sa.String(100), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
)

occurrence = sa.Table(
    "occurrence",
    metadata,
    sa.Column("occurrence_id", sa.Integer, primary_key=True),
    sa.Column("occurrence_ref", sa.String(30), nullable=False, unique=True),
    sa.Column("occurrence_type", sa.String(10), nullable=False),
    sa.Column("reported_at", sa.DateTime, nullable=False),
    # An active investigation: the force discloses nothing but its safeguarding contact.
    sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_updated", sa.DateTime, nullable=False),
)

occurrence_nominal = sa.Table(
    "occurrence_nominal",
    metadata,
    sa.Column("occurrence_id", sa.Integer, sa.ForeignKey("occurrence.occurrence_id"), primary_key=True),
    sa.Column("nominal_id", sa.Integer, sa.ForeignKey("nominal.nominal_id"), primary_key=True),
    sa.Column("involvement", sa.String(10), nullable=False),  # VICTIM, SUSPECT, WITNESS, SUBJECT, MISSING
)


def write(conn: sa.Connection, people: Sequence[SeedPerson], codes: Codes, progress: Progress) -> None:
    """Writes people and their occurrences."""
    batches = Batches(conn, metadata, progress)
    stamp = dt.datetime(2026, 1, 1, 9, 0)
    occurrence_id = 0
    for person in people:
        nominal_id = person.record_id
        batches.add(
            nominal,
            nominal_id=nominal_id,
            pnc_id=None,
            forenames=" ".join(person.given_names),
            surname=person.family_name,
            date_of_birth=person.date_of_birth,
            sex=codes.gender(person.gender),
            home_address=person.address_line,
            home_postcode=person.postcode or None,
            sensitivity_marker="Y" if person.restricted else "N",
            last_updated=stamp,
        )
        for given, family in person.other_names:
            batches.add(nominal_alias, nominal_id=nominal_id, forenames=given, surname=family)
        for event in person.events:
            occurrence_id += 1
            reported = dt.datetime.combine(event.date, dt.time(14, 30))
            batches.add(
                occurrence,
                occurrence_id=occurrence_id,
                occurrence_ref=f"OCC-{event.date.year}-{occurrence_id:07d}",
                occurrence_type=codes.category(event.category),
                reported_at=reported,
                restricted=event.restricted,
                last_updated=reported,
            )
            involvement = "MISSING" if event.category == "missing-person" else "VICTIM"
            batches.add(
                occurrence_nominal,
                occurrence_id=occurrence_id,
                nominal_id=nominal_id,
                involvement=involvement,
            )
        batches.person_done()
    batches.close()
