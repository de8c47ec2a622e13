"""The soak's figures (bench/soak.py): what each check, sample and restart left, the figures per interval,
the flatness verdict, the audit logs' account of the checks, and the plot.

A row is *bad* when its agency could not answer (UNAVAILABLE or TIMEOUT). While an adapter restarts, its
rows are expected to be bad: from one deadline before it is stopped (checks already on their way) until
`settle` seconds after it listens again (the broker's channel reconnects with gRPC's backoff). Anything
else that goes wrong is an error: a failed call (partial failure is data, never an RPC error), or a bad row
from an agency that was not restarting.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from audit.keys import AuditSection, read_public_signing_key
from audit.reader import read_events
from audit.verify import verify_log
from bench.load import Call, Footprint, percentile
from protos.lateral.v1 import common_pb2

BAD = ("UNAVAILABLE", "TIMEOUT")
DISCLOSURES = {"disclosure", "disclosure-refused"}


class Row(NamedTuple):
    """An agency's row of an answer: its outcome, status code and reason (CIRCUIT_OPEN: not asked, as it
    kept failing)."""

    agency: str
    outcome: str
    status: str
    reason: str

    @property
    def bad(self) -> bool:
        return self.outcome in BAD


@dataclass(frozen=True)
class Answer:
    """One check, reduced to what the soak needs (keeping 36,000 responses would grow this process)."""

    sent: float  # seconds since the load began
    ms: float
    code: str  # the call's gRPC status code name
    check_id: str
    rows: tuple[Row, ...]

    @classmethod
    def of(cls, call: Call, start: float) -> Answer:
        response = call.response
        rows = tuple(
            Row(
                r.agency_id,
                common_pb2.Outcome.Name(r.finding.outcome).removeprefix("OUTCOME_"),
                r.status.code,
                r.status.reason,
            )
            for r in (response.results if response is not None else ())
        )
        check_id = response.check_id if response is not None else ""
        return cls(call.sent - start, call.ms, call.code.name, check_id, rows)

    @property
    def ended(self) -> float:
        return self.sent + self.ms / 1000

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass
class Restart:
    """One adapter restart, in seconds since the load began."""

    agency: str
    signal: str  # SIGTERM (graceful stop) or SIGKILL
    stopped: float  # told to stop
    ready: float = 0.0  # listening again
    recovered: float | None = None  # sending time of the first check it answered after `ready`

    def covers(self, agency: str, sent: float, deadline: float, settle: float) -> bool:
        """Whether a check sent at `sent` may find `agency` down because of this restart."""
        return agency == self.agency and self.stopped - deadline <= sent <= self.ready + settle


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load began
    broker: Footprint
    adapters: Footprint  # summed over the adapters running then


@dataclass(frozen=True)
class Interval:
    """The checks of a span of time."""

    sent: int
    answered: int
    failed: Counter[str]  # calls by gRPC code
    by_agency: Counter[tuple[str, str]]  # (agency, kind of row): see `rows`; and (agency, "CIRCUIT_OPEN")
    p50: float  # ms, of the answered calls
    p99: float

    @classmethod
    def of(cls, answers: Sequence[Answer]) -> Interval:
        latencies = [a.ms for a in answers if a.ok]
        return cls(
            sent=len(answers),
            answered=len(latencies),
            failed=Counter(a.code for a in answers if not a.ok),
            by_agency=Counter(
                (row.agency, kind)
                for a in answers
                for row in a.rows
                for kind in (
                    row.outcome if row.outcome in (*BAD, "DENIED") else "answered",
                    *(("CIRCUIT_OPEN",) if row.reason == "CIRCUIT_OPEN" else ()),
                )
            ),
            p50=statistics.median(latencies) if latencies else 0.0,
            p99=percentile(latencies, 0.99) if latencies else 0.0,
        )

    @property
    def rows(self) -> Counter[str]:
        """Rows by kind: "answered" (any outcome from the agency), DENIED, UNAVAILABLE, TIMEOUT."""
        kinds: Counter[str] = Counter()
        for (_, kind), n in self.by_agency.items():
            if kind != "CIRCUIT_OPEN":
                kinds[kind] += n
        return kinds

    @property
    def bad_rows(self) -> int:
        return sum(self.rows[b] for b in BAD)

    @property
    def bad_row_percent(self) -> float:
        return 100 * self.bad_rows / max(1, sum(self.rows.values()))

    def line(self) -> str:
        failed = ", ".join(f"{n} {code}" for code, n in sorted(self.failed.items())) or "0"
        bad = ", ".join(
            f"{agency} {n} {kind}" for (agency, kind), n in sorted(self.by_agency.items()) if kind in BAD
        )
        return (
            f"checks {self.sent} answered {self.answered} failed {failed}; rows answered "
            f"{self.rows['answered']}, bad {self.bad_rows}{f' ({bad})' if bad else ''}; "
            f"p50 {self.p50:.1f} ms p99 {self.p99:.1f} ms"
        )


@dataclass
class Timeline:
    """The restarts, and which failures they explain."""

    deadline: float
    settle: float
    restarts: list[Restart] = field(default_factory=list)

    def unexpected(self, answer: Answer) -> bool:
        """A failed call, or a bad row from an agency that was not restarting."""
        if not answer.ok:
            return True
        return any(map(self.unexplained, itertools.repeat(answer), answer.rows))

    def unexplained(self, answer: Answer, row: Row) -> bool:
        """A bad row that no restart of its agency explains."""
        return row.bad and not any(
            r.covers(row.agency, answer.sent, self.deadline, self.settle) for r in self.restarts
        )

    def recover(self, answers: Sequence[Answer]) -> None:
        """Sets each restart's `recovered`: the first check sent after it listened that it answered."""
        for r in self.restarts:
            answered = (
                a.sent
                for a in answers
                if a.sent >= r.ready and any(row.agency == r.agency and not row.bad for row in a.rows)
            )
            r.recovered = min(answered, default=None)


def by_sample(samples: Sequence[Sample], answers: Sequence[Answer]) -> list[Interval]:
    """For each sample, the checks sent since the one before."""
    bounds = [0.0, *(s.at for s in samples)]
    return [
        Interval.of([a for a in answers if low <= a.sent < high]) for low, high in itertools.pairwise(bounds)
    ]


@dataclass(frozen=True)
class Trend:
    """A series in the first and the last fifth of the run."""

    name: str
    unit: str
    first: float
    last: float
    grew: bool

    def value(self, number: float) -> str:
        return f"{number:,.2f}{f' {self.unit}' if self.unit else ''}"

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.value(self.first)} -> {self.value(self.last)} "
            f"({self.last - self.first:+,.2f}): {'GREW' if self.grew else 'flat'}"
        )


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of y against x."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    spread = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / spread if spread else 0.0


def trends(
    samples: Sequence[Sample], answers: Sequence[Answer], timeline: Timeline, seconds: float
) -> tuple[list[Trend], float]:
    """The first fifth of the run against the last: medians of the broker's footprint, latency of the
    answered checks, and the error rate (unexpected failures, as Timeline.unexpected); with the slope of
    the broker's RSS (MB per minute) after the first fifth, once it has warmed up.

    Growth is what exceeds the noise of a shared machine: RSS by more than 5 MB and 5%, descriptors or
    threads by more than 2, a latency percentile by half and 2 ms, the error rate by 0.5 point.
    """
    fifth = seconds / 5
    # A run shorter than five samples has fifths without one: its first and last samples stand in.
    early = [s for s in samples if s.at <= fifth] or list(samples[:1])
    late = [s for s in samples if s.at >= seconds - fifth] or list(samples[-1:])
    result: list[Trend] = []

    def medians(value: Callable[[Sample], float]) -> tuple[float, float]:
        first, last = (statistics.median(map(value, part)) if part else 0.0 for part in (early, late))
        return first, last

    a, b = medians(lambda s: s.broker.rss_mb)
    result.append(Trend("broker RSS", "MB", a, b, b - a > max(5.0, 0.05 * a)))
    a, b = medians(lambda s: s.broker.fds)
    result.append(Trend("broker open fds", "", a, b, b - a > 2))
    a, b = medians(lambda s: s.broker.threads)
    result.append(Trend("broker threads", "", a, b, b - a > 2))
    first = [a for a in answers if a.sent < fifth]
    last = [a for a in answers if a.sent >= seconds - fifth]
    for name, q in (("latency p50", 0.5), ("latency p99", 0.99)):
        a, b = (
            percentile([x.ms for x in part if x.ok], q) if any(x.ok for x in part) else 0.0
            for part in (first, last)
        )
        result.append(Trend(name, "ms", a, b, b > 1.5 * a and b - a > 2))
    a, b = (100 * sum(map(timeline.unexpected, part)) / max(1, len(part)) for part in (first, last))
    result.append(Trend("error rate outside restarts", "%", a, b, b - a > 0.5))
    rss = slope([(s.at / 60, s.broker.rss_mb) for s in samples if s.at >= fifth])
    return result, rss


@dataclass
class Account:
    """The audit logs' account of the run."""

    verified: dict[str, str] = field(default_factory=dict)  # service -> "verified: N events" or the problem
    acknowledged: int = 0  # checks answered OK
    lost: int = 0  # of those, with no check-completed event in the broker's log
    unfinished: int = 0  # check-received events with no check-completed (their calls failed)
    rows_differing: int = 0  # rows whose outcome, status or reason differ from the log's
    disclosures_lost: int = 0  # rows an agency answered with no disclosure event in its own log

    @property
    def ok(self) -> bool:
        return (
            all(v.startswith("verified") for v in self.verified.values())
            and not self.lost
            and not self.rows_differing
            and not self.disclosures_lost
        )


def account(audit: Mapping[str, AuditSection], answers: Sequence[Answer]) -> Account:
    """Verifies every service's log (leaves, signatures, checkpoints) and matches the acknowledged checks,
    by check id, with the broker's events and, row by row, with each agency's disclosures."""
    result = Account()
    for service, section in audit.items():
        key = read_public_signing_key(Path(section.signing_key).with_suffix(".pub"))
        v = verify_log(section.url, key)
        result.verified[service] = (
            f"verified: {v.size:,} events, {v.checkpoints} checkpoints"
            if v.ok
            else f"NOT VERIFIED: {'; '.join(map(str, v.problems[:3]))}"
        )
    received: set[str] = set()
    completed: dict[str, dict[str, tuple[str, str, str]]] = {}
    for event in read_events(audit["broker"].url):
        payload = event.payload or {}
        if event.kind == "check-received":
            received.add(str(payload["check_id"]))
        elif event.kind == "check-completed":
            completed[str(payload["check_id"])] = {
                agency: (row["outcome"], row["status"], row["reason"])
                for agency, row in payload["results"].items()
            }
    disclosed = {
        agency: {
            str((e.payload or {}).get("check_id")) for e in read_events(section.url) if e.kind in DISCLOSURES
        }
        for agency, section in audit.items()
        if agency != "broker"
    }
    acknowledged = [a for a in answers if a.ok]
    result.acknowledged = len(acknowledged)
    result.unfinished = len(received - set(completed))
    for a in acknowledged:
        logged = completed.get(a.check_id)
        if logged is None:
            result.lost += 1
            continue
        for row in a.rows:
            if logged.get(row.agency) != (row.outcome, row.status, row.reason):
                result.rows_differing += 1
            if row.status == "OK" and a.check_id not in disclosed.get(row.agency, set()):
                result.disclosures_lost += 1
    return result


def plot(
    samples: Sequence[Sample], intervals: Sequence[Interval], restarts: Sequence[Restart], path: Path
) -> None:
    """Three panels against minutes: the broker's RSS and open descriptors; latency p50 and p99; bad rows
    and failed calls; a vertical line at each restart (solid: SIGKILL, dashed: SIGTERM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.at / 60 for s in samples]
    with plt.rc_context({"font.size": 9}):
        figure, (memory, latency, errors) = plt.subplots(3, 1, sharex=True, figsize=(8, 7.5))
        memory.plot(minutes, [s.broker.rss_mb for s in samples], color="tab:blue", label="broker RSS")
        memory.set_ylabel("broker RSS (MB)", color="tab:blue")
        memory.set_ylim(bottom=0, top=max([s.broker.rss_mb for s in samples] + [1.0]) * 1.3)
        fds = memory.twinx()
        fds.plot(minutes, [s.broker.fds for s in samples], color="tab:orange", label="open fds")
        fds.plot(minutes, [s.broker.threads for s in samples], color="tab:green", label="threads")
        fds.set_ylabel("broker fds, threads")
        fds.set_ylim(bottom=0, top=max([s.broker.fds for s in samples] + [1]) * 1.3)
        fds.legend(loc="lower right")
        memory.legend(loc="lower left")
        memory.set_title("Soak: the broker's footprint, latency and errors while adapters restart")
        latency.plot(minutes, [i.p50 for i in intervals], marker=".", label="p50")
        latency.plot(minutes, [i.p99 for i in intervals], marker=".", label="p99")
        latency.set_ylabel("check latency (ms)")
        latency.set_ylim(bottom=0)
        latency.legend(loc="upper left")
        errors.plot(
            minutes, [i.bad_row_percent for i in intervals], marker=".", label="UNAVAILABLE/TIMEOUT rows"
        )
        errors.plot(
            minutes,
            [100 * sum(i.failed.values()) / max(1, i.sent) for i in intervals],
            marker=".",
            label="failed calls",
        )
        errors.set_ylabel("% of rows / calls")
        errors.set_xlabel("minutes (vertical lines: adapter restarts; solid SIGKILL, dashed SIGTERM)")
        errors.set_ylim(bottom=0)
        errors.legend(loc="upper left")
        for axes in (memory, latency, errors):
            axes.grid(True, alpha=0.3)
            for r in restarts:
                axes.axvline(
                    r.stopped / 60,
                    color="grey",
                    linewidth=0.8,
                    linestyle="-" if r.signal == "SIGKILL" else "--",
                )
        for r in restarts:
            memory.annotate(
                r.agency, (r.stopped / 60, 0), xytext=(2, 2), textcoords="offset points", fontsize=7
            )
        figure.tight_layout()
        figure.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(figure)
