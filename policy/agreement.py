"""The data-sharing agreement (DSA) as a data protection officer writes it: a TOML file, validated.

Structure (see docs/dsa-example.toml for a complete, commented agreement):
  [agreement]       id, version, dates, retention, time zone, deployment
  [[parties]]       the organisations: identity, lawful basis, contact, signing key, the agencies they hold
  [[purposes]]      why checks may be made, with their lawful basis and subject scope
  [[permissions]]   who (organisation, role) may ask which agencies for which purposes, and what is released
  [[restrictions]]  what is never disclosed, whatever a permission says (forbid overrides permit)
  [[review]]        when a check must go to a multi-agency review
  [linkage]         proactive identification: who publishes encodings, where, and who is a candidate

Validation names the file, the clause (section, position and id) and the problem.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from lateral.config import ConfigError, Frozen, read_toml
from policy.linkage import LinkageTerms, linkage_problems
from policy.purposes import Purpose

# What a permission may release about a subject, besides nothing at all. "identity" (who a proactive review
# candidate is) only under a proactive purpose.
FIELDS = ("outcome", "category", "latest_date", "count", "contact", "identity")
Released = Literal["outcome", "category", "latest_date", "count", "contact", "identity"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PartyKind = Literal["police", "fire-and-rescue", "nhs", "local-authority", "education", "other"]

_ID = r"^[a-z][a-z0-9-]{0,62}$"
_CLAUSE_ID = r"^[A-Za-z][A-Za-z0-9._-]{0,31}$"
# Matched whole (fullmatch): a `$` would let a final line break through.
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_KEY = re.compile(r"ed25519:[A-Za-z0-9+/]{43}=")
_POLICE_BASIS = "DPA 2018 Part 3"


class AgreementHeader(Frozen):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    version: int = Field(ge=1)
    valid_from: dt.date
    valid_until: dt.date
    review_by: dt.date
    # How long audit records of checks made under this agreement are kept.
    retention_days: int = Field(ge=1, le=36_500)
    # Hours in permissions are local times in this zone.
    timezone: str = "Europe/London"
    # A production agreement refuses any plaintext (--insecure-dev) deployment.
    deployment: Literal["production", "development"] = "production"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder of the database
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _dates(self) -> AgreementHeader:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if not self.valid_from <= self.review_by <= self.valid_until:
            raise ValueError("review_by must fall between valid_from and valid_until")
        return self


class PartyContact(Frozen):
    name: str = Field(min_length=1)
    role: str = ""
    phone: str = ""
    email: str = ""


class Party(Frozen):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    kind: PartyKind
    # The URI SAN its certificates carry, e.g. spiffe://northshire/org/northshire-police.
    certificate_identity: str = Field(pattern=r"^spiffe://[a-z0-9.-]+/org/[a-z0-9-]+$")
    lawful_basis: tuple[str, ...] = Field(min_length=1)
    safeguarding_contact: PartyContact
    # The party's Ed25519 public key for signing this agreement ("ed25519:..."), from `lateral dsa keygen`.
    signing_key: str = ""
    # The agencies whose data this party controls (adapter agency ids); empty for a party that only asks.
    agencies: tuple[Annotated[str, Field(pattern=_ID)], ...] = ()

    @field_validator("signing_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value and not _KEY.fullmatch(value):
            raise ValueError("must be 'ed25519:' followed by a base64 public key (lateral dsa keygen)")
        return value

    @model_validator(mode="after")
    def _police_basis(self) -> Party:
        if self.kind == "police" and not any(b.startswith(_POLICE_BASIS) for b in self.lawful_basis):
            raise ValueError(f"a police party processes under {_POLICE_BASIS} (law enforcement): cite it")
        return self


class Hours(Frozen):
    """When checks may be made, in the agreement's time zone: from <= time < to, on the given days."""

    days: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start: str = Field(alias="from", default="00:00")
    end: str = Field(alias="to", default="24:00")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.fullmatch(value):
            raise ValueError("must be a time HH:MM (00:00 to 24:00)")
        return value

    @model_validator(mode="after")
    def _order(self) -> Hours:
        if not self.days:  # hours on no day would compile to an empty condition, which Cedar cannot parse
            raise ValueError("'days' must name at least one day")
        if minutes(self.end) <= minutes(self.start):
            raise ValueError("'to' must be later than 'from'")
        return self

    def windows(self) -> list[tuple[int, int]]:
        """The allowed spans as [start, end) minutes of the week, Monday 00:00 being 0."""
        return [
            (DAYS.index(day) * 1440 + minutes(self.start), DAYS.index(day) * 1440 + minutes(self.end))
            for day in dict.fromkeys(self.days)
        ]


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class Permission(Frozen):
    id: str = Field(pattern=_CLAUSE_ID)
    description: str = Field(min_length=1)
    requesters: tuple[str, ...] = Field(min_length=1)
    roles: tuple[str, ...] = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    agencies: tuple[str, ...] = Field(min_length=1)
    release: tuple[Released, ...] = Field(min_length=1)
    # Activity older than this many days before the check is neither counted nor released.
    lookback_days: int = Field(ge=1, le=36_500)
    hours: Hours | None = None
    # Duties that come with an answer under this permission, recorded with each decision.
    obligations: tuple[str, ...] = ()

    @field_validator("release")
    @classmethod
    def _outcome(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "outcome" not in value:
            raise ValueError("must include 'outcome': nothing else can be released without it")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for role in value:
            if not re.fullmatch(_ID, role):
                raise ValueError(f"role {role!r} must be lower-case letters, digits and hyphens")
        return value


class Restriction(Frozen):
    """Forbids what permissions allow. With categories: activity in them is never disclosed (nor counted).
    Without: the matching checks are refused outright."""

    id: str = Field(pattern=_CLAUSE_ID)
    description: str = Field(min_length=1)
    agencies: tuple[str, ...] = Field(min_length=1)
    categories: tuple[str, ...] = ()
    # Narrow the restriction to some purposes or requesting organisations (all when empty).
    purposes: tuple[str, ...] = ()
    requesters: tuple[str, ...] = ()


class ReviewRule(Frozen):
    """A check needs multi-agency review when activity reaches min_agencies agencies within window_days, or
    when any agency reports one of the categories."""

    id: str = Field(pattern=_CLAUSE_ID)
    description: str = Field(min_length=1)
    min_agencies: int | None = Field(default=None, ge=1)
    window_days: int = Field(default=365, ge=1, le=3650)
    categories: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_kind(self) -> ReviewRule:
        if (self.min_agencies is None) == (not self.categories):
            raise ValueError("give either min_agencies (with window_days) or categories")
        return self


class Agreement(Frozen):
    agreement: AgreementHeader
    parties: tuple[Party, ...] = Field(min_length=2)
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    permissions: tuple[Permission, ...] = Field(min_length=1)
    restrictions: tuple[Restriction, ...] = ()
    review: tuple[ReviewRule, ...] = ()
    linkage: LinkageTerms | None = None

    @property
    def id(self) -> str:
        return self.agreement.id

    @property
    def version(self) -> int:
        return self.agreement.version

    def party(self, party_id: str) -> Party:
        return next(p for p in self.parties if p.id == party_id)

    def controller_of(self, agency: str) -> Party | None:
        """The party whose data the agency's adapter serves."""
        return next((p for p in self.parties if agency in p.agencies), None)

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(a for p in self.parties for a in p.agencies)

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)


def _cross_references(agreement: Agreement) -> list[str]:
    """Problems no single clause shows: unknown ids, repeated ids, an agency held by two parties."""
    problems: list[str] = []
    parties = {p.id for p in agreement.parties}
    purposes = {p.id for p in agreement.purposes}
    agencies: dict[str, str] = {}
    for section in ("parties", "purposes", "permissions", "restrictions", "review"):
        ids = [c.id for c in getattr(agreement, section)]
        for repeated in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"{section}: id {repeated!r} is used more than once")
    clause_ids = [c.id for s in ("permissions", "restrictions", "review") for c in getattr(agreement, s)]
    for repeated in sorted({i for i in clause_ids if clause_ids.count(i) > 1}):
        problems.append(f"clause id {repeated!r} is used in more than one section; clause ids must be unique")
    for i, party in enumerate(agreement.parties):
        for agency in party.agencies:
            if agency in agencies:
                problems.append(
                    f"parties[{i}] ({party.id}): agencies: {agency!r} is already held by {agencies[agency]}"
                )
            agencies[agency] = party.id

    def unknown(where: str, field: str, values: tuple[str, ...], known: set[str] | dict[str, str]) -> None:
        kind = {"requesters": "parties", "agencies": "agencies (a party's agencies)"}.get(field, field)
        for value in values:
            if value not in known:
                problems.append(f"{where}: {field}: {value!r} is not one of the agreement's {kind}")

    checks = {p.id: p.checks for p in agreement.purposes}
    for i, clause in enumerate(agreement.permissions):
        where = f"permissions[{i}] ({clause.id})"
        unknown(where, "requesters", clause.requesters, parties)
        unknown(where, "purposes", clause.purposes, purposes)
        unknown(where, "agencies", clause.agencies, agencies)
        if "identity" in clause.release and any(checks.get(p) != "proactive" for p in clause.purposes):
            problems.append(
                f"{where}: release: 'identity' is released only for proactive purposes "
                '(checks = "proactive")'
            )
    if agreement.linkage is not None:
        problems += linkage_problems(agreement.linkage, checks, set(agencies), parties)
    for i, restriction in enumerate(agreement.restrictions):
        where = f"restrictions[{i}] ({restriction.id})"
        unknown(where, "agencies", restriction.agencies, agencies)
        unknown(where, "purposes", restriction.purposes, purposes)
        unknown(where, "requesters", restriction.requesters, parties)
    return problems


def _printable(text: str) -> str:
    """Text as written when it prints on one line, else quoted with escapes (a problem is one line)."""
    return text if text.isprintable() else repr(text)


def _clause(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """A validation location as a DPO would find it: "permissions[2] (P3): release"."""
    parts: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f" ({_printable(node['id'])})"
        else:
            parts.append(_printable(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ": ".join(parts) or "(top level)"


def parse_agreement(data: dict[str, Any], source: Path | str) -> Agreement:
    """Validates an agreement's data.

    Raises:
        ConfigError: one line per problem, each naming the file, the clause and what is wrong.
    """
    try:
        agreement = Agreement.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{source}: {_clause(data, e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_input=False)
        ]
        raise ConfigError("\n".join(problems)) from None
    problems = _cross_references(agreement)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return agreement


def load_agreement(path: Path) -> tuple[Agreement, dict[str, Any]]:
    """Reads and validates a DSA file; returns the agreement and the data it was read from (for signing)."""
    data = read_toml(path)
    return parse_agreement(data, path), data
