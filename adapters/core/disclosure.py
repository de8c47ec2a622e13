"""What an agency releases for a match: the minimal finding, never a record key, score or demographic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from adapters.core.index import MatchIndex
from adapters.core.matching import MatchResult
from adapters.core.source import Contact
from protos.lateral.v1 import common_pb2


def _contact(contact: Contact) -> common_pb2.Contact:
    return common_pb2.Contact(name=contact.name, role=contact.role, phone=contact.phone, email=contact.email)


@dataclass(frozen=True)
class Scope:
    """Which activity the agreement lets count: none before `since`, none in a hidden category."""

    since: dt.date = dt.date.min
    hidden: frozenset[str] = frozenset()


def finding_for(
    result: MatchResult, index: MatchIndex, default_contact: Contact, scope: Scope = Scope()
) -> common_pb2.Finding:
    """Builds the finding for a match result, from the activity in scope (as if the rest were not recorded).

    KNOWN releases the categories (most recent first), latest date, count and the most specific contact.
    A restricted person or activity turns the whole answer into WITHHELD with only the agency's contact.
    POSSIBLE releases only the attributes that would resolve it. Anything but KNOWN gives the agency's
    safeguarding contact, never a named worker (that would say there is a case).
    """
    if result.outcome != common_pb2.OUTCOME_KNOWN:
        return common_pb2.Finding(
            outcome=result.outcome,
            contact=_contact(default_contact),
            resolving_attributes=result.resolving_attributes,
        )
    events = index.events
    since = scope.since.toordinal()
    positions = sorted(
        (
            i
            for row in result.rows
            for i in events.of(row)
            if int(events.dates[i]) >= since
            and events.category_names[events.categories[i]] not in scope.hidden
        ),
        key=lambda i: int(events.dates[i]),
        reverse=True,
    )
    if any(index.restricted[row] for row in result.rows) or any(events.restricted[i] for i in positions):
        return common_pb2.Finding(outcome=common_pb2.OUTCOME_WITHHELD, contact=_contact(default_contact))
    categories = list(dict.fromkeys(events.category_names[events.categories[i]] for i in positions))
    contact = next(
        (events.contact_table[events.contacts[i]] for i in positions if events.contacts[i] >= 0),
        default_contact,
    )
    latest = dt.date.fromordinal(int(events.dates[positions[0]])).isoformat() if positions else ""
    return common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN,
        categories=categories,
        latest_activity_date=latest,
        activity_count=len(positions),
        contact=_contact(contact),
    )
