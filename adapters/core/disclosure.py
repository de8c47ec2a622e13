"""What an agency releases for a match: the minimal finding, never a record key, score or demographic."""

from __future__ import annotations

from adapters.core.index import MatchIndex
from adapters.core.matching import MatchResult
from adapters.core.source import Contact
from protos.lateral.v1 import common_pb2


def _contact(contact: Contact) -> common_pb2.Contact:
    return common_pb2.Contact(name=contact.name, role=contact.role, phone=contact.phone, email=contact.email)


def finding_for(result: MatchResult, index: MatchIndex, default_contact: Contact) -> common_pb2.Finding:
    """Builds the finding for a match result.

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
    events = sorted(
        (e for key in result.record_keys for e in index.events.get(key, [])),
        key=lambda e: e.activity_date,
        reverse=True,
    )
    if any(index.people[k].restricted for k in result.record_keys) or any(e.restricted for e in events):
        return common_pb2.Finding(outcome=common_pb2.OUTCOME_WITHHELD, contact=_contact(default_contact))
    categories = list(dict.fromkeys(e.category for e in events))
    contact = next((e.contact for e in events if e.contact is not None), default_contact)
    return common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN,
        categories=categories,
        latest_activity_date=events[0].activity_date.isoformat() if events else "",
        activity_count=len(events),
        contact=_contact(contact),
    )
