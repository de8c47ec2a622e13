"""Canonical people with activity, as demo and synthetic data describe them before an agency writes them
into its own schema. They never appear on the wire."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedEvent:
    """One piece of activity: a category from the agency's vocabulary, on a date."""

    date: dt.date
    category: str
    restricted: bool = False


@dataclass(frozen=True)
class SeedPerson:
    """A person as one agency records them, with that agency's activity.

    record_id is the agency's own id for the record: writers must use it, so ground truth can name it.
    """

    record_id: int
    given_names: tuple[str, ...]
    family_name: str
    date_of_birth: dt.date | None
    gender: str  # female | male | other | not_known
    address_line: str
    town: str
    postcode: str
    uprn: str = ""
    nhs_number: str = ""
    other_names: tuple[tuple[str, str], ...] = ()  # (given names, family name)
    events: tuple[SeedEvent, ...] = ()
    restricted: bool = False
