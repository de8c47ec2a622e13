"""An adapter's configuration: one TOML file per agency (see adapters/<agency>/adapter.toml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audit.keys import AuditSection
from lateral.config import ConfigError, Frozen, load_model
from lateral.telemetry import TelemetrySection
from pki.tls import TlsSection
from policy.trust import PolicySection

PERSON_FIELDS = (
    "record_key",
    "given_names",
    "family_name",
    "date_of_birth",
    "gender",
    "address",
    "postcode",
    "uprn",
    "nhs_number",
    "restricted",
    "watermark",
)
ALIAS_FIELDS = ("record_key", "given_names", "family_name")
EVENT_FIELDS = (
    "record_key",
    "activity_date",
    "category",
    "restricted",
    "contact_name",
    "contact_role",
    "contact_phone",
    "contact_email",
    "watermark",
)
GenderName = Literal["female", "male", "other", "not_known"]
_SLUG = r"^[a-z][a-z0-9-]{0,62}$"


class AgencySection(Frozen):
    id: str = Field(pattern=_SLUG, description="Short id used in DSA clauses and results, e.g. 'police'.")
    name: str = Field(min_length=1, max_length=120, description="The name MASH staff see.")


class ServerSection(Frozen):
    listen: str = "127.0.0.1:50061"
    # On SIGTERM: how long matches in flight may take to finish before they are cancelled.
    shutdown_grace_s: float = Field(default=10.0, ge=0.0, le=300.0)


class SourceSection(Frozen):
    url: str = Field(min_length=1, description="SQLAlchemy URL of the agency's own database.")

    @model_validator(mode="after")
    def _parses(self) -> Self:
        try:
            make_url(self.url)
        except ArgumentError:
            raise ValueError("url is not a valid SQLAlchemy database URL") from None
        return self


class TableMapping(Frozen):
    """Either a SQL query whose result columns carry the canonical names, or a table and a column map."""

    query: str | None = None
    table: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    def _check(self, allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
        if (self.query is None) == (self.table is None):
            raise ValueError("give either 'query' or 'table' (with 'columns'), not both or neither")
        if self.query is not None and self.columns:
            raise ValueError("'columns' goes with 'table'; a query names its columns with AS")
        unknown = sorted(set(self.columns) - set(allowed))
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown}; allowed: {list(allowed)}")
        missing = [c for c in required if self.table is not None and c not in self.columns]
        if missing:
            raise ValueError(f"columns must map {missing}")


class PeopleMapping(TableMapping):
    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(PERSON_FIELDS, ("record_key", "given_names", "family_name"))
        return self


class AliasMapping(TableMapping):
    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(ALIAS_FIELDS, ALIAS_FIELDS)
        return self


class EventMapping(TableMapping):
    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(EVENT_FIELDS, ("record_key", "activity_date", "category"))
        return self


class MappingSection(Frozen):
    people: PeopleMapping
    events: EventMapping
    aliases: AliasMapping | None = None
    # The agency's own gender codes (e.g. "M", "F", "U") to Lateral's.
    gender: dict[str, GenderName] = Field(default_factory=dict)
    # Values of a 'restricted' column that mean restricted (besides true and 1).
    restricted_values: list[str] = Field(default_factory=lambda: ["Y", "YES", "TRUE", "1"])


class MatchingSection(Frozen):
    """When a match is disclosed. A data-sharing agreement may later narrow these bounds."""

    # Posterior probability for KNOWN (disclosure) and for POSSIBLE.
    known_probability: float = Field(default=0.999, ge=0.99, le=0.999999)
    possible_probability: float = Field(default=0.2, ge=0.05, le=0.99)
    # Another person within this many bits of the best makes the answer POSSIBLE.
    ambiguity_bits: float = Field(default=6.0, ge=0, le=20)
    # Weights estimated by `lateral adapter estimate` (relative to this file); the defaults when absent.
    weights_file: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.possible_probability >= self.known_probability:
            raise ValueError("possible_probability must be below known_probability")
        return self


class RefreshSection(Frozen):
    """How the index follows the agency database."""

    # Changes (by the mapping's watermark columns) are applied this often.
    interval_seconds: float = Field(default=60, ge=1, le=86_400)
    # Deletions leave no watermark: the index is rebuilt whole this often.
    full_rebuild_hours: float = Field(default=24, ge=0.1, le=24 * 30)
    # While the agency database cannot be read the adapter answers from its last good index, until that
    # index is this old: then it stops answering (UNAVAILABLE, health NOT_SERVING) rather than answer
    # from stale records, and the MASH calls the agency instead.
    stale_after_seconds: float = Field(default=86_400, ge=1, le=86_400 * 30)


class ContactSection(Frozen):
    name: str = Field(min_length=1)
    role: str = ""
    phone: str = ""
    email: str = ""


class AdapterTls(TlsSection):
    # The identities allowed to ask this adapter for matches: the federation's broker(s).
    brokers: tuple[str, ...] = Field(min_length=1)

    def resolved(self, base: Path) -> AdapterTls:
        files = TlsSection.resolved(self, base)
        return AdapterTls(**files.model_dump(), brokers=self.brokers)


class AdapterLinkage(Frozen):
    """Publishing to the linkage service (proactive identification, docs/proactive.md). The adapter publishes
    only while its agreement's [linkage] names its agency."""

    # host:port of the linkage service (its certificate must carry the identity the agreement names).
    service: str = Field(min_length=1)
    # The key the publishing agencies share, never the hub (lateral linkage keygen), and this agency's own
    # token key (lateral linkage keygen --token); relative to this file.
    key_file: str = Field(min_length=1)
    token_key_file: str = Field(min_length=1)
    # The first publication this many seconds after start (then every publish_every_hours of the agreement).
    first_after_seconds: float = Field(default=5.0, ge=0.0, le=86_400.0)

    def resolved(self, base: Path) -> AdapterLinkage:
        return self.model_copy(
            update={
                "key_file": str((base / self.key_file).resolve()),
                "token_key_file": str((base / self.token_key_file).resolve()),
            }
        )


class AdapterConfig(Frozen):
    agency: AgencySection
    server: ServerSection = ServerSection()
    # Mutual TLS (lateral pki issue --role adapter) and the broker identities this adapter answers.
    tls: AdapterTls | None = None
    # The agency's own disclosure log (required outside --insecure-dev).
    audit: AuditSection | None = None
    source: SourceSection
    policy: PolicySection
    mapping: MappingSection
    # The agency's own activity codes to the categories it reports, e.g. "DA" = "domestic-abuse".
    vocabulary: dict[str, str] = Field(min_length=1)
    # The safeguarding contact given when no activity names a more specific one.
    contact: ContactSection
    matching: MatchingSection = MatchingSection()
    refresh: RefreshSection = RefreshSection()
    # Traces and metrics over OTLP (off when absent).
    telemetry: TelemetrySection | None = None
    # Proactive identification: publishing encodings to the linkage service (off when absent).
    linkage: AdapterLinkage | None = None

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary_slugs(cls, vocabulary: dict[str, str]) -> dict[str, str]:
        bad = sorted(code for code, category in vocabulary.items() if not re.match(_SLUG, category))
        if bad:
            raise ValueError(f"categories must be lower-case slugs like 'missing-person' (codes {bad})")
        return vocabulary

    # The file this configuration came from, so later errors (reading the source) can name it too.
    _origin: str = PrivateAttr(default="adapter configuration")

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def categories(self) -> list[str]:
        """The distinct categories this agency reports, sorted."""
        return sorted(set(self.vocabulary.values()))


def _resolve_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path in a config file means relative to that file, not to the current directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    if parsed.database.startswith("file:") or Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str((base / parsed.database).resolve())).render_as_string(hide_password=False)


def load_adapter_config(path: Path) -> AdapterConfig:
    """Loads and validates an adapter configuration file.

    Raises:
        ConfigError: naming the file, the key and the problem.
    """
    config = load_model(AdapterConfig, path)
    url = _resolve_sqlite(config.source.url, path.parent)
    matching = config.matching
    if matching.weights_file and not Path(matching.weights_file).is_absolute():
        matching = matching.model_copy(
            update={"weights_file": str((path.parent / matching.weights_file).resolve())}
        )
    policy = config.policy.resolved(path.parent)
    tls = config.tls.resolved(path.parent) if config.tls is not None else None
    audit = config.audit.resolved(path.parent) if config.audit is not None else None
    telemetry = config.telemetry.resolved(path.parent) if config.telemetry is not None else None
    resolved = config.model_copy(
        update={
            "source": SourceSection(url=url),
            "matching": matching,
            "policy": policy,
            "tls": tls,
            "audit": audit,
            "telemetry": telemetry,
            "linkage": config.linkage.resolved(path.parent) if config.linkage is not None else None,
        }
    )
    resolved._origin = str(path)
    return resolved


__all__ = ["AdapterConfig", "ConfigError", "load_adapter_config"]
