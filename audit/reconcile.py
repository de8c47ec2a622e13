"""Matching the broker's log with each agency's disclosure log by check id: what one side has and the other
does not (`lateral audit reconcile`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from audit.reader import read_events

ANSWERS = {"disclosure", "disclosure-refused"}


@dataclass
class Reconciliation:
    checks: int = 0
    # (agency, check id): asked according to the broker, with no record at the agency (or the reverse).
    missing_at_agency: list[tuple[str, str]] = field(default_factory=list)
    unknown_to_broker: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_at_agency or self.unknown_to_broker)


def reconcile(broker_url: str, agency_urls: Mapping[str, str]) -> Reconciliation:
    asked: dict[str, set[str]] = {agency: set() for agency in agency_urls}
    for event in read_events(broker_url):
        payload = event.payload or {}
        if event.kind == "check-received":
            for agency in payload.get("agencies_asked", []):
                if agency in asked:
                    asked[agency].add(str(payload["check_id"]))
    result = Reconciliation(checks=sum(len(ids) for ids in asked.values()))
    for agency, url in agency_urls.items():
        seen = {
            str((e.payload or {}).get("check_id"))
            for e in read_events(url)
            if e.kind in ANSWERS and (e.payload or {}).get("check_id")
        }
        result.missing_at_agency += sorted((agency, c) for c in asked[agency] - seen)
        result.unknown_to_broker += sorted((agency, c) for c in seen - asked[agency])
    return result
