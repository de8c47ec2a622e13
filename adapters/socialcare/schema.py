"""A council's social-care case system: children's and adults' persons, with referrals, assessments,
plans (child in need, child protection, looked after), s42 enquiries and the allocated worker."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from adapters.core.preset import Codes
from adapters.core.records import SeedPerson

metadata = sa.MetaData()

person = sa.Table(
    "person",
    metadata,
    sa.Column("person_id", sa.Integer, primary_key=True),
    sa.Column("first_names", sa.String(100), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("gender", sa.String(10)),
    sa.Column("address", sa.String(200)),
    sa.Column("postcode", sa.String(10)),
    sa.Column("uprn", sa.String(12)),
    sa.Column("nhs_number", sa.String(10)),
    sa.Column("service", sa.String(3), nullable=False),  # CSC children's, ASC adults'
)

previous_name = sa.Table(
    "previous_name",
    metadata,
    sa.Column("previous_name_id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("person.person_id"), nullable=False),
    sa.Column("first_names", sa.String(100), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
)

worker = sa.Table(
    "worker",
    metadata,
    sa.Column("worker_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("team", sa.String(100), nullable=False),
    sa.Column("phone", sa.String(20)),
    sa.Column("email", sa.String(100)),
)

allocation = sa.Table(
    "allocation",
    metadata,
    sa.Column("person_id", sa.Integer, sa.ForeignKey("person.person_id"), primary_key=True),
    sa.Column("worker_id", sa.Integer, sa.ForeignKey("worker.worker_id"), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
)

# Every episode of work with a person, whatever its kind: referral, assessment, plan, s42 enquiry.
episode = sa.Table(
    "episode",
    metadata,
    sa.Column("episode_id", sa.Integer, primary_key=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("person.person_id"), nullable=False),
    sa.Column("episode_type", sa.String(10), nullable=False),  # REF, ASMT, CIN, CP, CLA, S42
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date),
)

_WORKERS = (
    ("Sam Okafor", "Children's Assessment Team", "01632 960411", "sam.okafor@northshire.gov.example"),
    ("Priya Raman", "Adults' Safeguarding Team", "01632 960412", "priya.raman@northshire.gov.example"),
)


def write(conn: sa.Connection, people: Sequence[SeedPerson], codes: Codes) -> None:
    """Writes persons, their previous names, episodes and an allocated worker for open cases."""
    for worker_id, (name, team, phone, email) in enumerate(_WORKERS, start=1):
        conn.execute(
            worker.insert().values(worker_id=worker_id, name=name, team=team, phone=phone, email=email)
        )
    episode_id = 0
    for person_id, someone in enumerate(people, start=1):
        adult = someone.date_of_birth is not None and any(e.category == "s42-enquiry" for e in someone.events)
        conn.execute(
            person.insert().values(
                person_id=person_id,
                first_names=" ".join(someone.given_names),
                surname=someone.family_name,
                date_of_birth=someone.date_of_birth,
                gender=codes.gender(someone.gender),
                address=someone.address_line,
                postcode=someone.postcode,
                uprn=someone.uprn or None,
                nhs_number=someone.nhs_number or None,
                service="ASC" if adult else "CSC",
            )
        )
        for given, family in someone.other_names:
            conn.execute(
                previous_name.insert().values(person_id=person_id, first_names=given, surname=family)
            )
        for event in someone.events:
            episode_id += 1
            conn.execute(
                episode.insert().values(
                    episode_id=episode_id,
                    person_id=person_id,
                    episode_type=codes.category(event.category),
                    start_date=event.date,
                )
            )
        if someone.events:
            first = min(e.date for e in someone.events)
            conn.execute(
                allocation.insert().values(person_id=person_id, worker_id=2 if adult else 1, start_date=first)
            )
