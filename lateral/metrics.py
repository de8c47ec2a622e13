"""Every metric Lateral exports, in one place (names, units, attributes), recorded through a service's
Telemetry. Attributes are ids, agencies, purposes, outcomes and status codes only: bounded sets, and never
anything about the person or address checked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from lateral.telemetry import Attributes, Telemetry

# Histogram buckets in seconds: a check is answered in milliseconds; deadlines are seconds.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


_ERRORS_DESCRIPTION = "Calls that ended in an error, by method and status"


class BrokerMetrics:
    """The broker's: checks and their latency, each agency's latency and outcomes, errors by status."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter
        self._checks = meter.create_histogram(
            "lateral.check.duration",
            unit="s",
            description="Checks answered (or refused), by kind, purpose and gRPC status",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._agency = meter.create_histogram(
            "lateral.agency.duration",
            unit="s",
            description="Calls to each agency's adapter, by agency and outcome",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._outcomes = meter.create_counter(
            "lateral.agency.outcomes", unit="{answer}", description="Answers per agency and outcome"
        )
        self._errors = meter.create_counter(
            "lateral.rpc.errors",
            unit="{call}",
            description="Calls that ended in an error, by method and status",
        )
        self._circuits = meter.create_counter(
            "lateral.agency.circuit",
            unit="{transition}",
            description="Each agency's circuit breaker changing state, by agency and the state it entered",
        )
        self._shed = meter.create_counter(
            "lateral.check.shed", unit="{check}", description="Checks refused at capacity (load shed)"
        )

    def circuit(self, agency: str, state: str) -> None:
        self._circuits.add(1, {"lateral.agency": agency, "lateral.circuit": state})

    def shed(self) -> None:
        self._shed.add(1)

    def check(self, kind: str, purpose: str, code: str, seconds: float) -> None:
        self._checks.record(
            seconds, {"lateral.kind": kind, "lateral.purpose": purpose, "rpc.grpc.status_code": code}
        )

    def agency(self, agency: str, outcome: str, seconds: float) -> None:
        attributes = {"lateral.agency": agency, "lateral.outcome": outcome}
        self._agency.record(seconds, attributes)
        self._outcomes.add(1, attributes)

    def error(self, method: str, code: str) -> None:
        self._errors.add(1, {"rpc.method": method, "rpc.grpc.status_code": code})


class AdapterMetrics:
    """An adapter's: matches and their latency by outcome, errors by status, and its index's size and
    freshness and its source's health (gauges read at each export)."""

    def __init__(self, telemetry: Telemetry, agency: str) -> None:
        self._agency = agency
        meter = telemetry.meter
        self._matches = meter.create_histogram(
            "lateral.match.duration",
            unit="s",
            description="Matches answered, by kind and outcome",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._errors = meter.create_counter(
            "lateral.rpc.errors",
            unit="{call}",
            description="Calls that ended in an error, by method and status",
        )
        self._telemetry = telemetry

    def match(self, kind: str, outcome: str, seconds: float) -> None:
        self._matches.record(
            seconds, {"lateral.agency": self._agency, "lateral.kind": kind, "lateral.outcome": outcome}
        )

    def error(self, method: str, code: str) -> None:
        self._errors.add(
            1, {"lateral.agency": self._agency, "rpc.method": method, "rpc.grpc.status_code": code}
        )

    def observe_index(
        self,
        counts: Callable[[], tuple[int, int, int]],
        refreshed_at: Callable[[], dt.datetime],
        source_ok: Callable[[], bool],
    ) -> None:
        """Gauges: records, people and activities in the index, seconds since its last refresh, and whether
        the agency database can be read (1) or not (0)."""
        agency = {"lateral.agency": self._agency}

        def sizes() -> Iterable[tuple[float, Attributes]]:
            records, people, activities = counts()
            return [
                (records, {**agency, "lateral.index.part": "records"}),
                (people, {**agency, "lateral.index.part": "people"}),
                (activities, {**agency, "lateral.index.part": "activities"}),
            ]

        t = self._telemetry
        t.gauges("lateral.index.size", "{row}", "Rows in the match index", sizes)
        t.gauges(
            "lateral.index.age",
            "s",
            "Seconds since the index was last refreshed from the agency database",
            lambda: [(_age(refreshed_at()), agency)],
        )
        t.gauges(
            "lateral.source.up",
            "1",
            "Whether the agency database could be read at the last refresh",
            lambda: [(1.0 if source_ok() else 0.0, agency)],
        )


def observe_audit(
    telemetry: Telemetry,
    service: str,
    size: Callable[[], int],
    checkpoint_at: Callable[[], dt.datetime | None],
) -> None:
    """Gauges of a service's audit log: events in it, and seconds since its last signed checkpoint."""
    attributes = {"lateral.service": service}
    telemetry.gauges(
        "lateral.audit.size", "{event}", "Events in the audit log", lambda: [(size(), attributes)]
    )

    def age() -> Iterable[tuple[float, Attributes]]:
        at = checkpoint_at()
        return [] if at is None else [(_age(at), attributes)]

    telemetry.gauges("lateral.audit.checkpoint_age", "s", "Seconds since the last signed checkpoint", age)


def _age(at: dt.datetime) -> float:
    return max(0.0, (dt.datetime.now(dt.UTC) - at).total_seconds())
