"""A council's social-care case system: children's and adults' persons, with referrals, assessments,
plans (child in need, child protection, looked after), s42 enquiries and the allocated worker."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from adapters.core.preset import Batches, Codes, Progress
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
    ("Sam Okafor", "Children's Assessment Team", "01632 960411"),
    ("Hannah Price", "Children's Assessment Team", "01632 960413"),
    ("Tomasz Nowicki", "Child Protection Team", "01632 960414"),
    ("Grace Mensah", "Child Protection Team", "01632 960415"),
    ("Daniel Hughes", "Children in Care Team", "01632 960416"),
    ("Aisha Rahman", "Family Support Team", "01632 960417"),
    ("Priya Raman", "Adults' Safeguarding Team", "01632 960412"),
    ("Gareth Lloyd", "Adults' Safeguarding Team", "01632 960418"),
    ("Fiona Campbell", "Community Adults Team", "01632 960419"),
)
_ADULT_CATEGORIES = frozenset({"s42-enquiry"})


def _email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@northshire.gov.example"


def write(conn: sa.Connection, people: Sequence[SeedPerson], codes: Codes, progress: Progress) -> None:
    """Writes persons, previous names, episodes and an allocated worker for each person with episodes."""
    batches = Batches(conn, metadata, progress)
    for worker_id, (name, team, phone) in enumerate(_WORKERS, start=1):
        batches.add(worker, worker_id=worker_id, name=name, team=team, phone=phone, email=_email(name))
    children_teams = [i for i, w in enumerate(_WORKERS, start=1) if "Adults" not in w[1]]
    adult_teams = [i for i, w in enumerate(_WORKERS, start=1) if "Adults" in w[1]]
    episode_id = 0
    for someone in people:
        adult = any(e.category in _ADULT_CATEGORIES for e in someone.events)
        batches.add(
            person,
            person_id=someone.record_id,
            first_names=" ".join(someone.given_names),
            surname=someone.family_name,
            date_of_birth=someone.date_of_birth,
            gender=codes.gender(someone.gender),
            address=someone.address_line,
            postcode=someone.postcode or None,
            uprn=someone.uprn or None,
            nhs_number=someone.nhs_number or None,
            service="ASC" if adult else "CSC",
        )
        for given, family in someone.other_names:
            batches.add(previous_name, person_id=someone.record_id, first_names=given, surname=family)
        for event in someone.events:
            episode_id += 1
            batches.add(
                episode,
                episode_id=episode_id,
                person_id=someone.record_id,
                episode_type=codes.category(event.category),
                start_date=event.date,
                end_date=None,
            )
        if someone.events:
            teams = adult_teams if adult else children_teams
            batches.add(
                allocation,
                person_id=someone.record_id,
                worker_id=teams[someone.record_id % len(teams)],
                start_date=min(e.date for e in someone.events),
            )
        batches.person_done()
    batches.close()
