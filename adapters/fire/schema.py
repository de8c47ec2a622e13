"""A fire and rescue service's records: properties, the occupants recorded there, incidents attended and
home fire-safety visits. Activity belongs to the property, so every recorded occupant shares it."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from adapters.core.preset import Batches, Codes, Progress
from adapters.core.records import SeedPerson

metadata = sa.MetaData()

property_ = sa.Table(
    "property",
    metadata,
    sa.Column("property_id", sa.Integer, primary_key=True),
    sa.Column("uprn", sa.String(12)),
    sa.Column("address_line_1", sa.String(200), nullable=False),
    sa.Column("town", sa.String(100)),
    sa.Column("postcode", sa.String(10)),
)

occupant = sa.Table(
    "occupant",
    metadata,
    sa.Column("occupant_id", sa.Integer, primary_key=True),
    sa.Column("property_id", sa.Integer, sa.ForeignKey("property.property_id"), nullable=False),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    # Often unknown: crews record what occupants tell them.
    sa.Column("date_of_birth", sa.Date),
    sa.Column("vulnerable", sa.Boolean, nullable=False, server_default=sa.false()),
)

incident = sa.Table(
    "incident",
    metadata,
    sa.Column("incident_id", sa.Integer, primary_key=True),
    sa.Column("incident_number", sa.String(20), nullable=False, unique=True),
    sa.Column("property_id", sa.Integer, sa.ForeignKey("property.property_id"), nullable=False),
    sa.Column("incident_date", sa.Date, nullable=False),
    sa.Column("incident_type", sa.String(10), nullable=False),  # DWF, DELIB, RTC, ...
)

home_fire_safety_visit = sa.Table(
    "home_fire_safety_visit",
    metadata,
    sa.Column("visit_id", sa.Integer, primary_key=True),
    sa.Column("property_id", sa.Integer, sa.ForeignKey("property.property_id"), nullable=False),
    sa.Column("visit_date", sa.Date, nullable=False),
    sa.Column("hoarding", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("risk_score", sa.Integer),
)

_VISITS = {"home-fire-safety-visit": False, "hoarding": True}


def write(conn: sa.Connection, people: Sequence[SeedPerson], codes: Codes, progress: Progress) -> None:
    """Writes properties (one per address), occupants, and incidents and visits (each once per property)."""
    batches = Batches(conn, metadata, progress)
    properties: dict[tuple[str, str], int] = {}
    seen: set[tuple[int, str, object]] = set()
    incident_id = visit_id = 0
    for person in people:
        where = (person.address_line.casefold(), person.postcode.replace(" ", "").upper())
        if where not in properties:
            properties[where] = len(properties) + 1
            batches.add(
                property_,
                property_id=properties[where],
                uprn=person.uprn or None,
                address_line_1=person.address_line,
                town=person.town,
                postcode=person.postcode or None,
            )
        property_id = properties[where]
        batches.add(
            occupant,
            occupant_id=person.record_id,
            property_id=property_id,
            first_name=" ".join(person.given_names),
            last_name=person.family_name,
            date_of_birth=person.date_of_birth,
            vulnerable=False,
        )
        for event in person.events:
            if (property_id, event.category, event.date) in seen:
                continue
            seen.add((property_id, event.category, event.date))
            if event.category in _VISITS:
                visit_id += 1
                batches.add(
                    home_fire_safety_visit,
                    visit_id=visit_id,
                    property_id=property_id,
                    visit_date=event.date,
                    hoarding=_VISITS[event.category],
                    risk_score=None,
                )
            else:
                incident_id += 1
                batches.add(
                    incident,
                    incident_id=incident_id,
                    incident_number=f"INC{event.date:%y}{incident_id:07d}",
                    property_id=property_id,
                    incident_date=event.date,
                    incident_type=codes.category(event.category),
                )
        batches.person_done()
    batches.close()
