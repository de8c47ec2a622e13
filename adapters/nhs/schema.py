"""An NHS trust's patient administration system: patients with NHS numbers and their encounters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from adapters.core.preset import Batches, Codes, Progress
from adapters.core.records import SeedPerson

metadata = sa.MetaData()

patient = sa.Table(
    "patient",
    metadata,
    sa.Column("patient_id", sa.Integer, primary_key=True),
    sa.Column("nhs_number", sa.String(10)),
    sa.Column("given_name", sa.String(100), nullable=False),
    sa.Column("family_name", sa.String(100), nullable=False),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("sex", sa.String(1)),  # NHS Data Dictionary person stated gender: 1, 2, 9, X
    sa.Column("address_line_1", sa.String(200)),
    sa.Column("postcode", sa.String(10)),
    sa.Column("gp_practice_code", sa.String(6)),
)

encounter = sa.Table(
    "encounter",
    metadata,
    sa.Column("encounter_id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.Integer, sa.ForeignKey("patient.patient_id"), nullable=False),
    sa.Column("encounter_type", sa.String(10), nullable=False),  # AE, MAT, MHCRISIS, SGCONC, GUM
    sa.Column("arrived_at", sa.DateTime, nullable=False),
    sa.Column("department", sa.String(60)),
    sa.Column("confidential", sa.Boolean, nullable=False, server_default=sa.false()),
)

_DEPARTMENTS = {"emergency-department-attendance": "Emergency Department", "maternity": "Maternity"}


def write(conn: sa.Connection, people: Sequence[SeedPerson], codes: Codes, progress: Progress) -> None:
    """Writes patients and their encounters."""
    batches = Batches(conn, metadata, progress)
    encounter_id = 0
    for person in people:
        batches.add(
            patient,
            patient_id=person.record_id,
            nhs_number=person.nhs_number or None,
            given_name=" ".join(person.given_names),
            family_name=person.family_name,
            date_of_birth=person.date_of_birth,
            sex=codes.gender(person.gender),
            address_line_1=person.address_line,
            postcode=person.postcode or None,
            gp_practice_code=None,
        )
        for event in person.events:
            encounter_id += 1
            batches.add(
                encounter,
                encounter_id=encounter_id,
                patient_id=person.record_id,
                encounter_type=codes.category(event.category),
                arrived_at=dt.datetime.combine(event.date, dt.time(22, 15)),
                department=_DEPARTMENTS.get(event.category, "Mental Health Liaison"),
                confidential=event.restricted,
            )
        batches.person_done()
    batches.close()
