"""Showcase checks picked from the synthetic ground truth: someone known to three agencies, a restricted
record, a weak match, and someone no agency knows. Each says what every agency should answer."""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from lateral.client import build_request
from lateral.demo.agreement import DEMO_CALLER, EXAMPLE_AGREEMENT
from lateral.identity import Caller
from pki.tls import TlsSection
from policy.agreement import load_agreement
from policy.engine import PolicyEngine
from protos.lateral.v1 import broker_pb2, common_pb2
from synth import AGENCIES, Person, SyntheticData

K, N, P, W = (
    common_pb2.OUTCOME_KNOWN,
    common_pb2.OUTCOME_NOT_KNOWN,
    common_pb2.OUTCOME_POSSIBLE,
    common_pb2.OUTCOME_WITHHELD,
)
_CHILD = {"purpose": "child-safeguarding", "justification": "Referral from school", "case-ref": "MASH-0142"}
_ADULT = {
    "purpose": "adult-safeguarding",
    "justification": "Concern raised by a neighbour",
    "case-ref": "ASC-0917",
}


@dataclass(frozen=True)
class Example:
    title: str
    args: dict[str, str]
    # The outcome each named agency must give (agencies not named may answer anything).
    expected: dict[str, common_pb2.Outcome.ValueType]
    # Where the person lives, for a household check of their home.
    home: common_pb2.Address = field(default_factory=common_pb2.Address)

    def request(self) -> broker_pb2.CheckRequest:
        a = self.args
        return build_request(
            given_names=a["given-name"].split(),
            family_name=a["family-name"],
            date_of_birth=a.get("dob", ""),
            postcode=a.get("postcode", ""),
            purpose=a["purpose"],
            justification=a["justification"],
            case_ref=a["case-ref"],
        )

    def command(self, broker: str, caller: Caller, tls: TlsSection | None) -> str:
        """The `lateral check` command line for this example, as caller (from its case system's
        certificate with tls, else in plaintext development)."""
        options = " ".join(f"--{k} {shlex.quote(v)}" for k, v in self.args.items())
        if tls is None:
            who = f"--organisation {caller.organisation} --role {caller.role} --insecure-dev"
        else:
            who = f"--role {caller.role} --user {caller.user} --ca {tls.ca} --cert {tls.cert} --key {tls.key}"
        return f"lateral check {options} {who} --broker {broker}"


@dataclass(frozen=True)
class Examples:
    three_agencies: Example
    withheld: Example
    possible: Example
    unknown: Example

    def all(self) -> list[Example]:
        return [self.three_agencies, self.withheld, self.possible, self.unknown]


def _args(person: Person, today: dt.date, postcode: bool = True) -> dict[str, str]:
    args = {
        "given-name": person.given_names[0],
        "family-name": person.family_name,
        "dob": person.date_of_birth.isoformat(),
    }
    if postcode:
        args["postcode"] = person.address.postcode
    return {**args, **(_CHILD if person.age_on(today) < 18 else _ADULT)}


class _Truth:
    """The ground truth as the demo caller may see it under the demo agreement: activity within the caller's
    shortest look-back, outside the categories a restriction hides."""

    def __init__(self, data: SyntheticData) -> None:
        agreement, _ = load_agreement(EXAMPLE_AGREEMENT)
        engine = PolicyEngine(agreement)
        lookback = min(
            p.lookback_days
            for p in agreement.permissions
            if DEMO_CALLER.organisation in p.requesters and DEMO_CALLER.role in p.roles
        )
        since = data.population.reference_date - dt.timedelta(days=lookback)
        self.people = list(data.population.people())
        self.errors: dict[tuple[str, int], list[tuple[str, ...]]] = {}
        self.restricted: set[int] = set()
        self.latest: dict[tuple[str, int], dt.date] = {}
        for agency, records in data.records.items():
            hidden = engine.restricted_categories(agency)
            for row, seed in zip(records.truth, records.people, strict=True):
                self.errors.setdefault((agency, row.person_id), []).append(row.errors)
                visible = [e for e in seed.events if e.date >= since and e.category not in hidden]
                latest = max((e.date for e in visible), default=dt.date.min)
                self.latest[(agency, row.person_id)] = max(
                    latest, self.latest.get((agency, row.person_id), latest)
                )
                if agency == "police" and any(e.restricted for e in visible):
                    self.restricted.add(row.person_id)
        # Name and date of birth shared by two people: no showcase for those.
        seen: dict[tuple[str, str, object], int] = {}
        for p in self.people:
            key = (p.given_names[0], p.family_name, p.date_of_birth)
            seen[key] = seen.get(key, 0) + 1
        self.unique = {
            p.person_id for p in self.people if seen[(p.given_names[0], p.family_name, p.date_of_birth)] == 1
        }

    def known(self, person: Person) -> set[str]:
        return {a for a in AGENCIES if (a, person.person_id) in self.errors}

    def clean(self, person: Person, agency: str) -> bool:
        records = self.errors.get((agency, person.person_id), [])
        return len(records) == 1 and not records[0]

    def first(self, test: Callable[[Person], bool]) -> Person:
        for person in self.people:
            if person.person_id in self.unique and test(person):
                return person
        raise LookupError("no such person in the synthetic population; generate a larger one")


def pick_examples(data: SyntheticData) -> Examples:
    """Picks the showcase people from the ground truth (deterministic for the same data)."""
    truth = _Truth(data)
    today = data.population.reference_date
    recent = today - dt.timedelta(days=365)

    def three(p: Person) -> bool:
        known = truth.known(p)
        return (
            p.age_on(today) < 18
            and len(known) == 3
            and "fire" not in known
            and all(truth.clean(p, a) and truth.latest[(a, p.person_id)] >= recent for a in known)
        )

    def withheld(p: Person) -> bool:
        return p.person_id in truth.restricted and truth.clean(p, "police")

    def possible(p: Person) -> bool:
        return truth.known(p) == {"fire"} and truth.errors[("fire", p.person_id)] == [
            ("missing_date_of_birth",)
        ]

    jayden = truth.first(three)
    restricted = truth.first(withheld)
    weak = truth.first(possible)
    nobody = truth.first(lambda p: not truth.known(p))
    return Examples(
        Example(
            "Known to three agencies",
            _args(jayden, today),
            {a: K if a in truth.known(jayden) else N for a in AGENCIES},
            common_pb2.Address(lines=[jayden.address.line], postcode=jayden.address.postcode),
        ),
        Example(
            "A police record restricted by an active investigation", _args(restricted, today), {"police": W}
        ),
        Example(
            "A fire record without a date of birth: a possible match",
            _args(weak, today, postcode=False),
            {"fire": P, "police": N, "nhs": N, "socialcare": N},
        ),
        Example("Not known to any agency", _args(nobody, today), dict.fromkeys(AGENCIES, N)),
    )
